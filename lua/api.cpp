// The `gateway` table: verdicts, gateway.log, gateway.counter, gateway.read_lines and gateway.store.*
// (which yields to the C++ driver in host.cpp). The rules of stdlib.cpp apply to every C function here.
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "gateway/config/units.hpp"
#include "gateway/core/transaction.hpp"
#include "gateway/observe/metrics.hpp"
#include "lua/bindings.hpp"

namespace gw::lua {

namespace {

constexpr std::size_t kMaxCounterNames = 256;
constexpr std::size_t kMaxStoreKey = 512;
constexpr std::size_t kMaxStoreValue = 1 << 20;

const char* script_of(lua_State* L) {
  State* st = state_of(L);
  Call* c = st->current;
  if (!c || c->script >= st->prog->scripts.size()) return "";
  return st->prog->scripts[c->script].path.c_str();
}

const char* session_of(lua_State* L) {
  Call* c = current_call(L);
  return c && c->tx ? c->tx->conn.id.c_str() : "";
}

}  // namespace

void write_log(log::Level level, lua_State* L, const char* text, std::size_t len) {
  if (!log::enabled(level)) return;
  len = std::min<std::size_t>(len, 2000);  // one log line, not a dump
  try {
    log::write(level, "lua", {{"script", script_of(L)}, {"session", session_of(L)},
                              {"message", std::string_view(text, len)}});
  } catch (...) {
  }
}

namespace {
// ---------------------------------------------------------------------------------------------
// gateway.*

bool valid_enhanced(const char* e, std::size_t len, int cls) {
  // class "." subject(1-3 digits) "." detail(1-3 digits)
  if (len < 5 || len > 11 || e[0] - '0' != cls || e[1] != '.') return false;
  std::size_t i = 2, digits = 0;
  while (i < len && e[i] >= '0' && e[i] <= '9') ++i, ++digits;
  if (digits < 1 || digits > 3 || i >= len || e[i] != '.') return false;
  ++i;
  digits = 0;
  while (i < len && e[i] >= '0' && e[i] <= '9') ++i, ++digits;
  return digits >= 1 && digits <= 3 && i == len;
}

int make_verdict(lua_State* L, Verdict::Kind kind) {
  int cls = kind == Verdict::Kind::reject ? 5 : 4;
  const char* fname = cls == 5 ? "reject" : "tempfail";
  lua_Integer code = luaL_optinteger(L, 1, cls == 5 ? 550 : 451);
  if (code < cls * 100 || code > cls * 100 + 99)
    return luaL_argerror(L, 1, lua_pushfstring(L, "gateway.%s needs a %dxx code, got %I", fname, cls, code));
  std::size_t elen = 0, tlen = 0;
  const char* enh = luaL_optlstring(L, 2, cls == 5 ? "5.7.1" : "4.7.1", &elen);
  if (!valid_enhanced(enh, elen, cls))
    return luaL_argerror(L, 2, lua_pushfstring(L, "gateway.%s needs an enhanced code %d.X.Y, got '%s'", fname, cls, enh));
  const char* text = luaL_optlstring(L, 3, cls == 5 ? "Rejected by policy" : "Try again later", &tlen);
  if (tlen > kMaxReplyText) return luaL_argerror(L, 3, "reply text longer than 400 characters");
  for (std::size_t i = 0; i < tlen; ++i) {
    unsigned char ch = static_cast<unsigned char>(text[i]);
    if (ch < 0x20 || ch == 0x7f) return luaL_argerror(L, 3, "reply text holds a control character (CR, LF, NUL...)");
  }
  auto* v = static_cast<VerdictUd*>(lua_newuserdatauv(L, sizeof(VerdictUd), 0));
  v->kind = static_cast<int>(kind);
  v->code = static_cast<int>(code);
  std::memcpy(v->enhanced, enh, elen);
  v->enhanced[elen] = 0;
  std::memcpy(v->text, text, tlen);
  v->text[tlen] = 0;
  luaL_setmetatable(L, kVerdictMeta);
  return 1;
}

int l_accept(lua_State* L) {
  auto* v = static_cast<VerdictUd*>(lua_newuserdatauv(L, sizeof(VerdictUd), 0));
  v->kind = static_cast<int>(Verdict::Kind::accept);
  v->code = 0;
  v->enhanced[0] = 0;
  v->text[0] = 0;
  luaL_setmetatable(L, kVerdictMeta);
  return 1;
}
int l_reject(lua_State* L) { return make_verdict(L, Verdict::Kind::reject); }
int l_tempfail(lua_State* L) { return make_verdict(L, Verdict::Kind::tempfail); }

int verdict_tostring(lua_State* L) {
  auto* v = static_cast<VerdictUd*>(luaL_checkudata(L, 1, kVerdictMeta));
  static const char* names[] = {"continue", "accept", "reject", "tempfail"};
  if (v->code) lua_pushfstring(L, "%s %d %s %s", names[v->kind], v->code, v->enhanced, v->text);
  else lua_pushstring(L, names[v->kind]);
  return 1;
}

int l_log(lua_State* L) {
  static const char* const levels[] = {"debug", "info", "warn", "error", nullptr};
  int lvl = luaL_checkoption(L, 1, nullptr, levels);
  std::size_t len = 0;
  const char* text = luaL_tolstring(L, 2, &len);
  write_log(static_cast<log::Level>(lvl), L, text, len);
  return 0;
}

bool counter_name_ok(const char* s, std::size_t len) {
  if (len == 0 || len > 64) return false;
  for (std::size_t i = 0; i < len; ++i) {
    char c = s[i];
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' || c == ':')) return false;
  }
  return true;
}

int l_counter(lua_State* L) {
  std::size_t len = 0;
  const char* name = luaL_checklstring(L, 1, &len);
  if (!counter_name_ok(name, len)) return luaL_argerror(L, 1, "counter names are 1-64 of A-Z a-z 0-9 _ - . :");
  lua_Integer n = luaL_optinteger(L, 2, 1);
  if (n < 0) return luaL_argerror(L, 2, "a counter only grows (n >= 0)");
  State* st = state_of(L);
  int err = 0;
  try {
    std::string key(name, len);
    auto it = st->counters.find(key);
    if (it == st->counters.end()) {
      if (st->counters.size() >= kMaxCounterNames) {
        err = 1;
      } else {
        auto& c = observe::Metrics::instance().counter("smtpgw_lua_counter_total", "gateway.counter() from Lua policies",
                                                        "name=\"" + key + "\"");
        it = st->counters.emplace(std::move(key), &c).first;
      }
    }
    if (!err) it->second->inc(static_cast<std::uint64_t>(n));
  } catch (...) {
    err = 2;
  }
  if (err == 1) return luaL_error(L, "gateway.counter: more than %d distinct counter names", static_cast<int>(kMaxCounterNames));
  if (err == 2) return luaL_error(L, "not enough memory");
  return 0;
}

// gateway.read_lines(path): the lines of a file, only while a script's main chunk runs.
int l_read_lines(lua_State* L) {
  const char* path = luaL_checkstring(L, 1);
  Call* c = current_call(L);
  if (!c || !c->loading) return luaL_error(L, "gateway.read_lines is only available while a script loads");
  char err[512] = {0};
  int status = LUA_OK;
  {
    std::string data;
    try {
      std::ifstream in(path, std::ios::binary);
      if (!in) {
        std::snprintf(err, sizeof err, "gateway.read_lines: cannot open %s: %s", path, std::strerror(errno));
      } else {
        std::ostringstream ss;
        ss << in.rdbuf();
        data = ss.str();
        if (data.size() > state_of(L)->limit) std::snprintf(err, sizeof err, "gateway.read_lines: %s is too big", path);
      }
    } catch (...) {
      std::snprintf(err, sizeof err, "gateway.read_lines: cannot read %s", path);
    }
    if (!err[0]) {
      auto push = [&data](lua_State* L) -> int {
        lua_newtable(L);
        lua_Integer i = 0;
        std::size_t pos = 0;
        while (pos < data.size()) {
          std::size_t eol = data.find('\n', pos);
          std::size_t end = eol == std::string::npos ? data.size() : eol;
          std::size_t e = end;
          if (e > pos && data[e - 1] == '\r') --e;
          lua_pushlstring(L, data.data() + pos, e - pos);
          lua_rawseti(L, -2, ++i);
          pos = eol == std::string::npos ? data.size() : eol + 1;
        }
        return 1;
      };
      status = pcall_push(L, push, 1);
    }
  }
  if (err[0]) return luaL_error(L, "%s", err);
  if (status != LUA_OK) return lua_error(L);
  return 1;
}

// ---- gateway.store.* : yield to the C++ driver, which co_awaits the store and resumes.

int store_continue(lua_State* L, int status, lua_KContext kctx) {
  Call* c = current_call(L);
  if (!c || reinterpret_cast<std::uintptr_t>(c) != static_cast<std::uintptr_t>(kctx) || c->token == 0)
    return luaL_error(L, "gateway.store: coroutine resumed by a script");
  c->token = 0;
  StoreReply& r = c->reply;
  if (!r.ok) return luaL_error(L, "gateway.store: %s", r.error.c_str());
  if (r.integer) {
    lua_pushinteger(L, r.i);
    return 1;
  }
  if (!r.has_value) {
    lua_pushnil(L);
    return 1;
  }
  // A value that reads back as the canonical text of a number is returned as that number.
  lua_pushlstring(L, r.s.data(), r.s.size());
  if (!r.s.empty() && r.s.size() < 40 && std::strlen(r.s.c_str()) == r.s.size() && lua_stringtonumber(L, lua_tostring(L, -1)) != 0) {
    lua_pushvalue(L, -1);
    const char* canon = lua_tostring(L, -1);  // converts the copy in place
    if (std::strcmp(canon, lua_tostring(L, -3)) == 0) {
      lua_pop(L, 1);
      lua_remove(L, -2);
      return 1;
    }
    lua_pop(L, 2);
  }
  return 1;
}

std::int64_t check_ttl(lua_State* L, int idx) {
  switch (lua_type(L, idx)) {
    case LUA_TNONE:
    case LUA_TNIL: return 0;
    case LUA_TNUMBER: {
      lua_Number s = lua_tonumber(L, idx);
      if (!(s >= 0) || s > 1e9) luaL_argerror(L, idx, "ttl in seconds must be between 0 and 1e9");
      return static_cast<std::int64_t>(std::llround(s * 1000));
    }
    case LUA_TSTRING: {
      auto d = config::parse_duration(lua_tostring(L, idx));
      if (!d) luaL_argerror(L, idx, "ttl is a duration like \"30s\", \"5m\", \"1h\", \"7d\" or a number of seconds");
      return d->count();
    }
    default: luaL_argerror(L, idx, "ttl is a duration string or a number of seconds");
  }
  return 0;
}

int store_op(lua_State* L, StoreRequest::Op op) {
  State* st = state_of(L);
  Call* c = st->current;
  if (!st->prog->options.store) return luaL_error(L, "gateway.store: store not configured");
  if (!c || c->loading) return luaL_error(L, "gateway.store is not available while a script loads");
  if (c->thread != L) return luaL_error(L, "gateway.store cannot be called inside a coroutine the script created");
  if (!lua_isyieldable(L)) return luaL_error(L, "gateway.store cannot be called here (a C function in between)");
  std::size_t klen = 0;
  const char* key = luaL_checklstring(L, 1, &klen);
  if (klen == 0 || klen > kMaxStoreKey) return luaL_argerror(L, 1, "keys are 1-512 bytes");
  lua_Integer n = 0;
  std::size_t vlen = 0;
  const char* value = nullptr;
  char numbuf[64];
  std::int64_t ttl = 0;
  if (op == StoreRequest::Op::incr) {
    n = luaL_optinteger(L, 2, 1);
    ttl = check_ttl(L, 3);
  } else if (op == StoreRequest::Op::set) {
    int t = lua_type(L, 2);
    if (t == LUA_TNUMBER) {
      if (lua_isinteger(L, 2)) std::snprintf(numbuf, sizeof numbuf, "%lld", static_cast<long long>(lua_tointeger(L, 2)));
      else std::snprintf(numbuf, sizeof numbuf, "%.17g", lua_tonumber(L, 2));
      value = numbuf;
      vlen = std::strlen(numbuf);
    } else if (t == LUA_TSTRING) {
      value = lua_tolstring(L, 2, &vlen);
      if (vlen > kMaxStoreValue) return luaL_argerror(L, 2, "values are at most 1 MiB");
    } else {
      return luaL_argerror(L, 2, "a string or a number");
    }
    ttl = check_ttl(L, 3);
  }
  bool oom = false;
  try {
    StoreRequest req;
    req.op = op;
    req.key.assign(key, klen);
    req.n = n;
    if (value) req.value.assign(value, vlen);
    req.ttl = std::chrono::milliseconds(ttl);
    c->pending = std::move(req);
  } catch (...) {
    oom = true;
  }
  if (oom) return luaL_error(L, "not enough memory");
  c->token = reinterpret_cast<std::uintptr_t>(c);
  return lua_yieldk(L, 0, static_cast<lua_KContext>(reinterpret_cast<std::uintptr_t>(c)), store_continue);
}

int l_store_incr(lua_State* L) { return store_op(L, StoreRequest::Op::incr); }
int l_store_get(lua_State* L) { return store_op(L, StoreRequest::Op::get); }
int l_store_set(lua_State* L) { return store_op(L, StoreRequest::Op::set); }

}  // namespace

void open_gateway(lua_State* L) {
  State* st = state_of(L);
  luaL_newmetatable(L, kVerdictMeta);
  lua_pushcfunction(L, verdict_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushliteral(L, "locked");
  lua_setfield(L, -2, "__metatable");
  st->verdict_mt = lua_topointer(L, -1);
  lua_pop(L, 1);

  static const luaL_Reg gateway[] = {{"accept", l_accept}, {"reject", l_reject}, {"tempfail", l_tempfail},
                                     {"log", l_log},       {"counter", l_counter}, {"read_lines", l_read_lines},
                                     {nullptr, nullptr}};
  static const luaL_Reg store[] = {{"incr", l_store_incr}, {"get", l_store_get}, {"set", l_store_set}, {nullptr, nullptr}};
  luaL_newlib(L, gateway);
  luaL_newlib(L, store);
  lua_setfield(L, -2, "store");
  open_dns(L);
  open_regex(L);
  open_map_api(L);
  lua_setglobal(L, "gateway");
}

}  // namespace gw::lua
