// tx and msg: the hooks' view of the Transaction (read-only fields, tx:add_header) and of the message
// (msg:header, msg:headers, msg:body, msg.size). The rules of stdlib.cpp apply to every C function here.
#include <algorithm>
#include <cstring>

#include "gateway/core/transaction.hpp"
#include "lua/bindings.hpp"

namespace gw::lua {
namespace {

// ---------------------------------------------------------------------------------------------
// tx and msg: userdata valid only during their own hook call

// The tx and msg metatables, found by a light userdata key: luaL_checkudata/luaL_setmetatable look
// them up by name, and interning that name on every access was a tenth of a typical policy's cost.
const char kTxKey = 0;
const char kMsgKey = 0;

Transaction& check_tx(lua_State* L, int idx, const char* meta) {
  State* st = state_of(L);
  const void* want = meta == kTxMeta ? st->tx_mt : st->msg_mt;
  auto* b = static_cast<Box*>(lua_touserdata(L, idx));
  bool ok = false;
  if (b && lua_getmetatable(L, idx)) {
    ok = lua_topointer(L, -1) == want;
    lua_pop(L, 1);
  }
  if (!ok) luaL_typeerror(L, idx, meta);
  Call* c = st->find_call(b->serial);
  if (!c || !c->tx) luaL_error(L, "%s used outside the hook call it was given to", meta[3] == 't' ? "tx" : "msg");
  return *c->tx;
}

void set_str(lua_State* L, const char* k, std::string_view v) {
  lua_pushlstring(L, v.data(), v.size());
  lua_setfield(L, -2, k);
}

bool field_name_ok(const char* s, std::size_t len) {
  if (len == 0 || len > 200) return false;
  for (std::size_t i = 0; i < len; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 33 || c > 126 || c == ':') return false;
  }
  return true;
}

int tx_add_header(lua_State* L) {
  Transaction& tx = check_tx(L, 1, kTxMeta);
  std::size_t nlen = 0, vlen = 0;
  const char* name = luaL_checklstring(L, 2, &nlen);
  const char* value = luaL_checklstring(L, 3, &vlen);
  if (!field_name_ok(name, nlen))
    return luaL_argerror(L, 2, "not a header field name (printable ASCII without ':' or space)");
  for (std::size_t i = 0; i < vlen; ++i)
    if (value[i] == '\r' || value[i] == '\n' || value[i] == '\0')
      return luaL_argerror(L, 3, "a header value may not hold CR, LF or NUL");
  if (nlen + 2 + vlen > 998) return luaL_argerror(L, 3, "header line longer than 998 characters");
  bool oom = false;
  try {
    tx.add_header(std::string(name, nlen), std::string(value, vlen));
  } catch (...) {
    oom = true;
  }
  if (oom) return luaL_error(L, "not enough memory");
  return 0;
}

// tx:remove_header(name): marks every field of the received message with that name (case-insensitive)
// removed; headers added by tx:add_header are not in the message and stay. Returns how many went.
int tx_remove_header(lua_State* L) {
  Transaction& tx = check_tx(L, 1, kTxMeta);
  std::size_t nlen = 0;
  const char* name = luaL_checklstring(L, 2, &nlen);
  if (!field_name_ok(name, nlen))
    return luaL_argerror(L, 2, "not a header field name (printable ASCII without ':' or space)");
  lua_Integer n = 0;
  bool oom = false;
  try {
    const auto& fields = tx.message.fields();
    for (std::size_t i = 0; i < fields.size(); ++i) {
      if (fields[i].removed || !iequals(tx.message.field_name(fields[i]), std::string_view(name, nlen))) continue;
      tx.message.remove_field(i);
      ++n;
    }
  } catch (...) {
    oom = true;
  }
  if (oom) return luaL_error(L, "not enough memory");
  lua_pushinteger(L, n);
  return 1;
}

void push_opt(lua_State* L, const std::optional<std::string>& s) {
  if (s) lua_pushlstring(L, s->data(), s->size());
  else lua_pushnil(L);
}

int tx_index(lua_State* L) {
  Transaction& tx = check_tx(L, 1, kTxMeta);
  if (lua_type(L, 2) != LUA_TSTRING) return 0;
  std::size_t klen = 0;
  const char* k = lua_tolstring(L, 2, &klen);
  std::string_view key(k, klen);
  const Connection& c = tx.conn;
  if (key == "client") {
    lua_createtable(L, 0, 3);
    set_str(L, "ip", c.client.ip);
    lua_pushinteger(L, c.client.port);
    lua_setfield(L, -2, "port");
    if (c.client.rdns) set_str(L, "rdns", *c.client.rdns);
  } else if (key == "listener") {
    lua_createtable(L, 0, 2);
    set_str(L, "role", c.role == config::Role::submission ? "submission" : "inbound");
    set_str(L, "address", c.listener);
  } else if (key == "tls") {
    lua_pushboolean(L, c.tls);
  } else if (key == "trusted") {
    lua_pushboolean(L, c.trusted);
  } else if (key == "helo") {
    if (c.helo.empty()) lua_pushnil(L);
    else lua_pushlstring(L, c.helo.data(), c.helo.size());
  } else if (key == "auth_user") {
    push_opt(L, c.auth_user);
  } else if (key == "sender") {
    if (tx.has_sender) lua_pushlstring(L, tx.sender.data(), tx.sender.size());
    else lua_pushnil(L);
  } else if (key == "recipients") {
    lua_createtable(L, static_cast<int>(tx.recipients.size()), 0);
    for (std::size_t i = 0; i < tx.recipients.size(); ++i) {
      lua_pushlstring(L, tx.recipients[i].data(), tx.recipients[i].size());
      lua_rawseti(L, -2, static_cast<lua_Integer>(i + 1));
    }
  } else if (key == "spf") {
    lua_createtable(L, 0, 3);
    if (tx.spf) {
      set_str(L, "result", tx.spf->result);
      set_str(L, "domain", tx.spf->domain);
      set_str(L, "identity", tx.spf->identity);
    }
  } else if (key == "dkim") {
    lua_createtable(L, static_cast<int>(tx.dkim.size()), 0);
    for (std::size_t i = 0; i < tx.dkim.size(); ++i) {
      lua_createtable(L, 0, 3);
      set_str(L, "domain", tx.dkim[i].domain);
      set_str(L, "selector", tx.dkim[i].selector);
      set_str(L, "result", tx.dkim[i].result);
      lua_rawseti(L, -2, static_cast<lua_Integer>(i + 1));
    }
  } else if (key == "id") {
    lua_pushlstring(L, tx.id.data(), tx.id.size());
  } else if (key == "session") {
    lua_pushlstring(L, c.id.data(), c.id.size());
  } else if (key == "add_header") {
    lua_pushcfunction(L, tx_add_header);
  } else if (key == "remove_header") {
    lua_pushcfunction(L, tx_remove_header);
  } else if (key == "session_data" || key == "data") {
    Call* call = state_of(L)->find_call(static_cast<Box*>(lua_touserdata(L, 1))->serial);
    SessionTables* t = call ? call->session : nullptr;
    if (!t) return 0;
    int& ref = key == "data" ? t->data_ref : t->session_ref;
    if (ref == LUA_NOREF) {  // created on first use
      lua_newtable(L);
      lua_pushvalue(L, -1);
      ref = luaL_ref(L, LUA_REGISTRYINDEX);
    } else {
      lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
    }
  } else if (key == "dmarc") {
    if (!tx.dmarc) return 0;
    lua_createtable(L, 0, 4);
    set_str(L, "result", tx.dmarc->result);
    set_str(L, "domain", tx.dmarc->domain);
    set_str(L, "policy", tx.dmarc->policy);
    set_str(L, "disposition", tx.dmarc->disposition);
  } else if (key == "dnsbl") {
    if (!tx.dnsbl) return 0;
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, tx.dnsbl->score);
    lua_setfield(L, -2, "score");
    lua_createtable(L, static_cast<int>(tx.dnsbl->hits.size()), 0);
    for (std::size_t i = 0; i < tx.dnsbl->hits.size(); ++i) {
      const DnsblHit& h = tx.dnsbl->hits[i];
      lua_createtable(L, 0, 3);
      set_str(L, "zone", h.zone);
      lua_pushinteger(L, h.weight);
      lua_setfield(L, -2, "weight");
      set_str(L, "code", h.code);
      lua_rawseti(L, -2, static_cast<lua_Integer>(i + 1));
    }
    lua_setfield(L, -2, "hits");
  } else if (key == "rspamd") {
    if (!tx.rspamd) return 0;
    lua_createtable(L, 0, 4);
    set_str(L, "action", tx.rspamd->action);
    lua_pushnumber(L, tx.rspamd->score);
    lua_setfield(L, -2, "score");
    lua_pushnumber(L, tx.rspamd->required_score);
    lua_setfield(L, -2, "required_score");
    lua_createtable(L, 0, static_cast<int>(tx.rspamd->symbols.size()));
    for (const auto& [name, score] : tx.rspamd->symbols) {
      lua_pushnumber(L, score);
      lua_setfield(L, -2, name.c_str());
    }
    lua_setfield(L, -2, "symbols");
  } else {
    return 0;
  }
  return 1;
}

// Pushes the unfolded value of one field: CRLF removed, leading and trailing whitespace trimmed.
void push_field_value(lua_State* L, const Message& m, const HeaderField& f) {
  std::string_view raw = m.field_raw(f).substr(f.name_length + 1);
  std::size_t b = 0, e = raw.size();
  auto ws = [](char ch) { return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n'; };
  while (b < e && ws(raw[b])) ++b;
  while (e > b && ws(raw[e - 1])) --e;
  luaL_Buffer buf;
  luaL_buffinit(L, &buf);
  for (std::size_t i = b; i < e; ++i) {
    if (raw[i] == '\r' && i + 1 < e && raw[i + 1] == '\n') {
      ++i;
      continue;
    }
    luaL_addchar(&buf, raw[i]);
  }
  luaL_pushresult(&buf);
}

const std::vector<HeaderField>* fields_of(const Message& m) {
  try {
    return &m.fields();
  } catch (...) {
    return nullptr;
  }
}

int msg_header(lua_State* L) {
  Transaction& tx = check_tx(L, 1, kMsgMeta);
  std::size_t nlen = 0;
  const char* name = luaL_checklstring(L, 2, &nlen);
  const auto* fields = fields_of(tx.message);
  if (!fields) return luaL_error(L, "not enough memory");
  for (const auto& f : *fields) {
    if (!f.removed && iequals(tx.message.field_name(f), std::string_view(name, nlen))) {
      push_field_value(L, tx.message, f);
      return 1;
    }
  }
  lua_pushnil(L);
  return 1;
}

int msg_headers(lua_State* L) {
  Transaction& tx = check_tx(L, 1, kMsgMeta);
  std::size_t nlen = 0;
  const char* name = luaL_optlstring(L, 2, nullptr, &nlen);
  const auto* fields = fields_of(tx.message);
  if (!fields) return luaL_error(L, "not enough memory");
  lua_newtable(L);
  lua_Integer i = 0;
  for (const auto& f : *fields) {
    if (f.removed) continue;
    if (name) {
      if (!iequals(tx.message.field_name(f), std::string_view(name, nlen))) continue;
      push_field_value(L, tx.message, f);
    } else {  // msg:headers() without a name: every field as {name, value}
      lua_createtable(L, 2, 0);
      auto fname = tx.message.field_name(f);
      lua_pushlstring(L, fname.data(), fname.size());
      lua_rawseti(L, -2, 1);
      push_field_value(L, tx.message, f);
      lua_rawseti(L, -2, 2);
    }
    lua_rawseti(L, -2, ++i);
  }
  return 1;
}

int msg_body(lua_State* L) {
  Transaction& tx = check_tx(L, 1, kMsgMeta);
  std::string_view body;
  try {
    body = tx.message.body();
  } catch (...) {
    return luaL_error(L, "not enough memory");
  }
  std::size_t max = static_cast<std::size_t>(state_of(L)->prog->options.max_body_bytes);
  lua_pushlstring(L, body.data(), std::min(body.size(), max));
  return 1;
}

int msg_index(lua_State* L) {
  Transaction& tx = check_tx(L, 1, kMsgMeta);
  const char* k = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "";
  if (std::strcmp(k, "size") == 0) lua_pushinteger(L, static_cast<lua_Integer>(tx.message.size()));
  else if (std::strcmp(k, "header") == 0) lua_pushcfunction(L, msg_header);
  else if (std::strcmp(k, "headers") == 0) lua_pushcfunction(L, msg_headers);
  else if (std::strcmp(k, "body") == 0) lua_pushcfunction(L, msg_body);
  else return 0;
  return 1;
}

int readonly_newindex(lua_State* L) {
  return luaL_error(L, "tx and msg are read-only (use tx:add_header, or keep values in tx.data / tx.session_data)");
}

const void* new_locked_meta(lua_State* L, const char* name, const char* key, lua_CFunction index) {
  luaL_newmetatable(L, name);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, key);
  const void* mt = lua_topointer(L, -1);
  if (index) {
    lua_pushcfunction(L, index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, readonly_newindex);
    lua_setfield(L, -2, "__newindex");
  }
  lua_pushliteral(L, "locked");
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 1);
  return mt;
}

void push_box(lua_State* L, std::uint64_t serial, const char* key) {
  auto* b = static_cast<Box*>(lua_newuserdatauv(L, sizeof(Box), 0));
  b->serial = serial;
  lua_rawgetp(L, LUA_REGISTRYINDEX, key);
  lua_setmetatable(L, -2);
}

}  // namespace

void open_tx(lua_State* L) {
  State* st = state_of(L);
  st->tx_mt = new_locked_meta(L, kTxMeta, &kTxKey, tx_index);
  st->msg_mt = new_locked_meta(L, kMsgMeta, &kMsgKey, msg_index);
}

void push_tx(lua_State* L, std::uint64_t serial) { push_box(L, serial, &kTxKey); }

void push_msg(lua_State* L, std::uint64_t serial) { push_box(L, serial, &kMsgKey); }

}  // namespace gw::lua
