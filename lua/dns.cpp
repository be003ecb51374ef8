// gateway.dns.lookup(name, type) and gateway.dns.rbl(ip, zone): the gateway's own resolver (its cache
// included) from Lua. Like gateway.store.*, a lookup yields the hook's coroutine; host.cpp co_awaits
// the resolver and resumes it, so a slow name never blocks the worker thread. Every lookup of a hook
// call counts against plugins.lua.max_dns_lookups.
#include <cstdio>
#include <cstring>

#include <arpa/inet.h>

#include "lua/bindings.hpp"

namespace gw::lua {
namespace {

constexpr std::size_t kMaxName = 253;  // RFC 1035 §2.3.4, without the final dot

const char* status_word(dns::Status s) {
  switch (s) {
    case dns::Status::ok: return "ok";
    case dns::Status::nodata: return "nodata";
    case dns::Status::nxdomain: return "nxdomain";
    case dns::Status::temperror:
    case dns::Status::permerror: break;  // a malformed answer is the server's fault: try again later
  }
  return "temperror";
}

int dns_continue(lua_State* L, int, lua_KContext kctx) {
  Call* c = current_call(L);
  if (!c || reinterpret_cast<std::uintptr_t>(c) != static_cast<std::uintptr_t>(kctx) || c->token == 0)
    return luaL_error(L, "gateway.dns: coroutine resumed by a script");
  c->token = 0;
  const dns::Answer& a = c->answer;
  const bool ok = a.status == dns::Status::ok && !a.records.empty();
  if (lua_type(L, 1) == LUA_TLIGHTUSERDATA) {  // rbl (see dns_yield): nil or the first address
    if (ok) lua_pushlstring(L, a.records.front().data(), a.records.front().size());
    else lua_pushnil(L);
    return 1;
  }
  lua_createtable(L, 0, 2);
  lua_pushstring(L, ok || a.status != dns::Status::ok ? status_word(a.status) : "nodata");
  lua_setfield(L, -2, "status");
  lua_createtable(L, ok ? static_cast<int>(a.records.size()) : 0, 0);
  if (ok) {
    for (std::size_t i = 0; i < a.records.size(); ++i) {
      std::string_view r = a.records[i];
      if (r.size() > 1 && r.back() == '.') r.remove_suffix(1);
      lua_pushlstring(L, r.data(), r.size());
      lua_rawseti(L, -2, static_cast<lua_Integer>(i + 1));
    }
  }
  lua_setfield(L, -2, "answers");
  return 1;
}

// Checks the call may wait and counts the lookup; raises otherwise.
Call* dns_call(lua_State* L) {
  State* st = state_of(L);
  Call* c = st->current;
  if (!c || c->loading) luaL_error(L, "gateway.dns is not available while a script loads");
  if (c->thread != L) luaL_error(L, "gateway.dns cannot be called inside a coroutine the script created");
  if (!lua_isyieldable(L)) luaL_error(L, "gateway.dns cannot be called here (a C function in between)");
  if (++c->dns_lookups > st->prog->options.max_dns_lookups) {
    char reason[128];
    std::snprintf(reason, sizeof reason, "gateway.dns: more than %llu lookups in one hook call (max_dns_lookups)",
                  static_cast<unsigned long long>(st->prog->options.max_dns_lookups));
    stop_call(L, reason);
  }
  return c;
}

int dns_yield(lua_State* L, Call* c, const char* name, std::size_t len, dns::Type type, bool rbl) {
  bool oom = false, cached = false;
  try {
    c->dns = DnsRequest{std::string(name, len), type, rbl};
    // An answer in the resolver's cache is taken at once: no yield, no resume.
    if (dns::Resolver* r = state_of(L)->prog->options.resolver.get()) cached = r->cached_answer(c->dns->name, type, c->answer);
  } catch (...) {
    oom = true;
  }
  if (oom) return luaL_error(L, "not enough memory");
  lua_settop(L, 0);
  if (rbl) lua_pushlightuserdata(L, c);  // tells dns_continue to answer the rbl way
  c->token = reinterpret_cast<std::uintptr_t>(c);
  if (cached) {
    c->dns.reset();
    return dns_continue(L, LUA_OK, static_cast<lua_KContext>(reinterpret_cast<std::uintptr_t>(c)));
  }
  return lua_yieldk(L, 0, static_cast<lua_KContext>(reinterpret_cast<std::uintptr_t>(c)), dns_continue);
}

bool name_ok(const char* s, std::size_t len) {
  if (len == 0 || len > kMaxName) return false;
  for (std::size_t i = 0; i < len; ++i) {
    unsigned char ch = static_cast<unsigned char>(s[i]);
    if (ch <= ' ' || ch >= 0x7f) return false;
  }
  return true;
}

int l_lookup(lua_State* L) {
  std::size_t len = 0;
  const char* name = luaL_checklstring(L, 1, &len);
  static const char* const types[] = {"A", "AAAA", "MX", "TXT", "PTR", nullptr};
  static const dns::Type codes[] = {dns::Type::A, dns::Type::AAAA, dns::Type::MX, dns::Type::TXT, dns::Type::PTR};
  int t = luaL_checkoption(L, 2, "A", types);
  if (len > 1 && name[len - 1] == '.') --len;
  if (!name_ok(name, len)) return luaL_argerror(L, 1, "not a domain name (1-253 printable characters)");
  Call* c = dns_call(L);
  return dns_yield(L, c, name, len, codes[t], false);
}

// RFC 5782 §2.1 (IPv4: reversed octets) and §2.4 (IPv6: reversed nibbles) under the zone.
int l_rbl(lua_State* L) {
  const char* ip = luaL_checkstring(L, 1);
  std::size_t zlen = 0;
  const char* zone = luaL_checklstring(L, 2, &zlen);
  if (zlen > 1 && zone[zlen - 1] == '.') --zlen;
  char name[kMaxName + 80];
  int n = 0;
  unsigned char a[16];
  if (inet_pton(AF_INET, ip, a) == 1) {
    n = std::snprintf(name, sizeof name, "%u.%u.%u.%u.", a[3], a[2], a[1], a[0]);
  } else if (inet_pton(AF_INET6, ip, a) == 1) {
    static const char hex[] = "0123456789abcdef";
    for (int i = 15; i >= 0; --i) {
      name[n++] = hex[a[i] & 15];
      name[n++] = '.';
      name[n++] = hex[a[i] >> 4];
      name[n++] = '.';
    }
  } else {
    return luaL_argerror(L, 1, "not an IPv4 or IPv6 address");
  }
  if (zlen == 0 || n + zlen > kMaxName) return luaL_argerror(L, 2, "not a DNS zone");
  std::memcpy(name + n, zone, zlen);
  if (!name_ok(name, n + zlen)) return luaL_argerror(L, 2, "not a DNS zone");
  Call* c = dns_call(L);
  return dns_yield(L, c, name, n + zlen, dns::Type::A, true);
}

}  // namespace

void open_dns(lua_State* L) {
  static const luaL_Reg fns[] = {{"lookup", l_lookup}, {"rbl", l_rbl}, {nullptr, nullptr}};
  luaL_newlib(L, fns);
  lua_setfield(L, -2, "dns");
}

}  // namespace gw::lua
