// The sandboxed lua_State: allocator with a cap, instruction bound, safe libraries, the gateway API.
//
// Rules every C function here follows (Debian's Lua is C, errors are longjmps):
//  * no C++ object with a destructor is alive when a Lua API call that may raise runs;
//    C++ work happens in a scope that ends first, or results are pushed through pcall_push();
//  * no C++ exception leaves a C function: C++ work is wrapped in try/catch.
#include "lua/state.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "gateway/config/units.hpp"
#include "gateway/core/transaction.hpp"
#include "gateway/observe/log.hpp"
#include "gateway/observe/metrics.hpp"

namespace gw::lua {
namespace {

constexpr const char* kTxMeta = "gw.tx";
constexpr const char* kMsgMeta = "gw.msg";
constexpr const char* kVerdictMeta = "gw.verdict";
constexpr std::size_t kMaxReplyText = 400;
constexpr std::size_t kMaxCounterNames = 256;
constexpr std::size_t kMaxStoreKey = 512;
constexpr std::size_t kMaxStoreValue = 1 << 20;

// ---------------------------------------------------------------------------------------------
// allocator and instruction bound

void* bounded_alloc(void* ud, void* ptr, std::size_t osize, std::size_t nsize) {
  auto* st = static_cast<State*>(ud);
  const std::size_t old = ptr ? osize : 0;
  if (nsize == 0) {
    std::free(ptr);
    st->used -= old;
    return nullptr;
  }
  if (nsize > old && st->used - old + nsize > st->limit) return nullptr;  // Lua raises "not enough memory"
  void* p = std::realloc(ptr, nsize);
  if (!p) return nullptr;
  st->used = st->used - old + nsize;
  return p;
}

int hook_step(const Program& p) {
  auto m = p.options.max_instructions;
  return static_cast<int>(m < 1000 ? std::max<std::uint64_t>(m, 1) : 1000);
}

void count_hook(lua_State* L, lua_Debug*) {
  State* st = state_of(L);
  Call* c = st->current;
  if (!c) return;
  if (!c->exceeded) {
    c->used += static_cast<std::uint64_t>(lua_gethookcount(L));
    if (c->used <= st->prog->options.max_instructions) return;
    c->exceeded = true;
  }
  // From now on every instruction of this call raises: a script catching the error with pcall or
  // coroutine.resume gets it again at its next instruction, so the call always ends in on_error.
  lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
  if (c->thread && c->thread != L) lua_sethook(c->thread, count_hook, LUA_MASKCOUNT, 1);
  luaL_where(L, 0);
  lua_pushfstring(L, "instruction limit exceeded (max_instructions = %I)",
                  static_cast<lua_Integer>(st->prog->options.max_instructions));
  lua_concat(L, 2);
  lua_error(L);
}

int at_panic(lua_State* L) {
  const char* m = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?";
  std::fprintf(stderr, "smtp-gateway: unprotected Lua error: %s\n", m);
  std::abort();
}

// Runs f(L) under lua_pcall so a Lua error raised while pushing leaves the caller's C++ frame intact.
template <typename F>
int pcall_push(lua_State* L, F& f, int nresults) {
  lua_pushcfunction(L, [](lua_State* L) -> int {
    auto* fn = static_cast<F*>(lua_touserdata(L, 1));
    lua_settop(L, 0);
    return (*fn)(L);
  });
  lua_pushlightuserdata(L, &f);
  return lua_pcall(L, 1, nresults, 0);
}

Call* current_call(lua_State* L) { return state_of(L)->current; }

// ---------------------------------------------------------------------------------------------
// sandbox replacements for base functions

int l_setmetatable(lua_State* L) {
  int t = lua_type(L, 2);
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table");
  if (t == LUA_TTABLE) {
    lua_pushliteral(L, "__gc");
    if (lua_rawget(L, 2) != LUA_TNIL) return luaL_error(L, "__gc metamethods are not available in the sandbox");
    lua_pop(L, 1);
  }
  if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL) return luaL_error(L, "cannot change a protected metatable");
  lua_settop(L, 2);
  lua_setmetatable(L, 1);
  return 1;
}

int l_collectgarbage(lua_State* L) {
  const char* opt = luaL_optstring(L, 1, "collect");
  if (std::strcmp(opt, "count") != 0 && std::strcmp(opt, "collect") != 0 && std::strcmp(opt, "step") != 0 &&
      std::strcmp(opt, "isrunning") != 0)
    return luaL_error(L, "collectgarbage(\"%s\") is not available in the sandbox", opt);
  int n = lua_gettop(L);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, n, LUA_MULTRET);
  return lua_gettop(L);
}

// load() of text chunks only: a binary chunk raises (SPEC: withheld functions raise).
int l_load(lua_State* L) {
  int n = lua_gettop(L);
  if (lua_type(L, 1) == LUA_TSTRING) {
    std::size_t len = 0;
    const char* s = lua_tolstring(L, 1, &len);
    if (len > 0 && s[0] == LUA_SIGNATURE[0]) return luaL_error(L, "load: binary chunks are not available in the sandbox");
    charge(L, len / 16);  // compiling is linear in the text; a reader function pays per call
  }
  if (n >= 3 && !lua_isnil(L, 3)) {
    const char* mode = luaL_checkstring(L, 3);
    if (std::strchr(mode, 't') == nullptr) return luaL_error(L, "load: binary chunks are not available in the sandbox");
  }
  if (n < 3) lua_settop(L, 3);
  lua_pushliteral(L, "t");
  lua_replace(L, 3);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, std::max(n, 3), LUA_MULTRET);
  if (lua_isnil(L, 1) && lua_type(L, 2) == LUA_TSTRING && std::strstr(lua_tostring(L, 2), "binary chunk"))
    return luaL_error(L, "load: binary chunks are not available in the sandbox");
  return lua_gettop(L);
}

// xpcall whose message handler never runs once the call is over its instruction budget. Lua runs a
// message handler before unwinding, so for an error raised by the count hook it would run with hooks
// off, unbounded; the guard passes the error object through untouched instead.
int guarded_handler(lua_State* L) {
  Call* c = state_of(L)->current;
  if (c && c->exceeded) return 1;
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

int finish_xpcall(lua_State* L, int status, lua_KContext extra) {
  if (status != LUA_OK && status != LUA_YIELD) {
    lua_pushboolean(L, 0);
    lua_pushvalue(L, -2);
    return 2;
  }
  return lua_gettop(L) - static_cast<int>(extra);
}

int l_xpcall(lua_State* L) {
  int n = lua_gettop(L);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_pushvalue(L, 2);
  lua_pushcclosure(L, guarded_handler, 1);
  lua_replace(L, 2);
  lua_pushboolean(L, 1);
  lua_pushvalue(L, 1);
  lua_rotate(L, 3, 2);
  int status = lua_pcallk(L, n - 2, LUA_MULTRET, 2, 2, finish_xpcall);
  return finish_xpcall(L, status, 2);
}

}  // namespace

void charge(lua_State* L, std::uint64_t n) {
  State* st = state_of(L);
  Call* c = st->current;
  if (!c) return;
  c->used += n;
  if (c->used > st->prog->options.max_instructions || c->exceeded) {
    c->exceeded = true;
    lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
    if (c->thread && c->thread != L) lua_sethook(c->thread, count_hook, LUA_MASKCOUNT, 1);
    luaL_error(L, "instruction limit exceeded (max_instructions = %I)",
               static_cast<lua_Integer>(st->prog->options.max_instructions));
  }
}

namespace {

// table.move loops in C, one step per element even over nils: charged one instruction per element.
int l_table_move(lua_State* L) {
  lua_Integer f = luaL_checkinteger(L, 2);
  lua_Integer e = luaL_checkinteger(L, 3);
  if (e >= f) charge(L, static_cast<std::uint64_t>(e) - static_cast<std::uint64_t>(f) + 1);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

// Calls the wrapped library function (upvalue 1) with every argument; returns all its results.
int call_original(lua_State* L) {
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

// table.insert(t, pos, v) and table.remove(t, pos) shift elements in C; with a __len metamethod the
// length is whatever the script says, so the shift is charged one instruction per element.
int l_table_insert(lua_State* L) {
  if (lua_gettop(L) >= 3) {
    lua_Integer n = luaL_len(L, 1);
    lua_Integer pos = luaL_checkinteger(L, 2);
    if (n >= pos) charge(L, static_cast<std::uint64_t>(n) - static_cast<std::uint64_t>(pos) + 1);
  }
  return call_original(L);
}

int l_table_remove(lua_State* L) {
  if (lua_gettop(L) >= 2 && !lua_isnil(L, 2)) {
    lua_Integer n = luaL_len(L, 1);
    lua_Integer pos = luaL_checkinteger(L, 2);
    if (n >= pos) charge(L, static_cast<std::uint64_t>(n) - static_cast<std::uint64_t>(pos) + 1);
  }
  return call_original(L);
}

// coroutine.close runs __close handlers; on a coroutine killed by the count hook they would run with
// hooks off, so it is refused once the budget is spent.
int l_coclose(lua_State* L) {
  Call* c = state_of(L)->current;
  if (c && c->exceeded) return luaL_error(L, "instruction limit exceeded");
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

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

void write_log(log::Level level, lua_State* L, const char* text, std::size_t len) {
  if (!log::enabled(level)) return;
  len = std::min<std::size_t>(len, 2000);  // one log line, not a dump
  try {
    log::write(level, "lua", {{"script", script_of(L)}, {"session", session_of(L)},
                              {"message", std::string_view(text, len)}});
  } catch (...) {
  }
}

int l_print(lua_State* L) {
  int n = lua_gettop(L);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int i = 1; i <= n; ++i) {
    std::size_t len;
    const char* s = luaL_tolstring(L, i, &len);
    if (i > 1) luaL_addchar(&b, '\t');
    luaL_addvalue(&b);
    (void)s;
  }
  luaL_pushresult(&b);
  std::size_t len;
  const char* s = lua_tolstring(L, -1, &len);
  write_log(log::Level::debug, L, s, len);
  return 0;
}

// ---------------------------------------------------------------------------------------------
// gateway.*

struct VerdictUd {
  int kind;  // Verdict::Kind
  int code;
  char enhanced[16];
  char text[kMaxReplyText + 1];
};

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

// ---------------------------------------------------------------------------------------------
// tx and msg: userdata valid only during their own hook call

struct Box {
  std::uint64_t serial;
};

Transaction& check_tx(lua_State* L, int idx, const char* meta) {
  auto* b = static_cast<Box*>(luaL_checkudata(L, idx, meta));
  Call* c = state_of(L)->find_call(b->serial);
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

int readonly_newindex(lua_State* L) { return luaL_error(L, "tx and msg are read-only (use tx:add_header)"); }

void new_locked_meta(lua_State* L, const char* name, lua_CFunction index) {
  luaL_newmetatable(L, name);
  if (index) {
    lua_pushcfunction(L, index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, readonly_newindex);
    lua_setfield(L, -2, "__newindex");
  }
  lua_pushliteral(L, "locked");
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 1);
}

// ---------------------------------------------------------------------------------------------
// building the sandbox

void keep_only(lua_State* L, const char* lib, std::initializer_list<const char*> keep) {
  // replaces global `lib` with a fresh table holding only `keep`
  lua_getglobal(L, lib);
  lua_newtable(L);
  for (const char* k : keep) {
    lua_getfield(L, -2, k);
    lua_setfield(L, -2, k);
  }
  lua_setglobal(L, lib);
  lua_pop(L, 1);
}

int setup(lua_State* L) {
  State* st = state_of(L);
  luaL_requiref(L, LUA_GNAME, luaopen_base, 1);
  luaL_requiref(L, LUA_STRLIBNAME, luaopen_string, 1);
  luaL_requiref(L, LUA_TABLIBNAME, luaopen_table, 1);
  luaL_requiref(L, LUA_MATHLIBNAME, luaopen_math, 1);
  luaL_requiref(L, LUA_UTF8LIBNAME, luaopen_utf8, 1);
  luaL_requiref(L, LUA_COLIBNAME, luaopen_coroutine, 1);
  luaL_requiref(L, LUA_OSLIBNAME, luaopen_os, 1);
  lua_settop(L, 0);
  // luaL_requiref left the libraries in package.loaded-like _LOADED: drop it so nothing reaches io/os later
  lua_pushnil(L);
  lua_setfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);

  for (const char* name : {"dofile", "loadfile", "require", "warn"}) {
    lua_pushnil(L);
    lua_setglobal(L, name);
  }
  lua_getglobal(L, "load");
  lua_pushcclosure(L, l_load, 1);
  lua_setglobal(L, "load");
  lua_getglobal(L, "collectgarbage");
  lua_pushcclosure(L, l_collectgarbage, 1);
  lua_setglobal(L, "collectgarbage");
  lua_pushcfunction(L, l_setmetatable);
  lua_setglobal(L, "setmetatable");
  lua_pushcfunction(L, l_xpcall);
  lua_setglobal(L, "xpcall");
  lua_getglobal(L, LUA_COLIBNAME);
  lua_getfield(L, -1, "close");
  lua_pushcclosure(L, l_coclose, 1);
  lua_setfield(L, -2, "close");
  lua_pop(L, 1);
  lua_pushcfunction(L, l_print);
  lua_setglobal(L, "print");
  lua_getglobal(L, LUA_TABLIBNAME);
  lua_getfield(L, -1, "move");
  lua_pushcclosure(L, l_table_move, 1);
  lua_setfield(L, -2, "move");
  lua_getfield(L, -1, "insert");
  lua_pushcclosure(L, l_table_insert, 1);
  lua_setfield(L, -2, "insert");
  lua_getfield(L, -1, "remove");
  lua_pushcclosure(L, l_table_remove, 1);
  lua_setfield(L, -2, "remove");
  lua_pop(L, 1);
  install_patterns(L);
  keep_only(L, LUA_OSLIBNAME, {"time", "clock", "date", "difftime"});
  lua_getglobal(L, LUA_STRLIBNAME);
  lua_pushnil(L);
  lua_setfield(L, -2, "dump");
  lua_pop(L, 1);
  // lock the string metatable (it is shared by every string of the state)
  lua_pushliteral(L, "");
  lua_getmetatable(L, -1);
  lua_pushliteral(L, "locked");
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 2);

  new_locked_meta(L, kTxMeta, tx_index);
  new_locked_meta(L, kMsgMeta, msg_index);
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
  lua_setglobal(L, "gateway");
  return 0;
}

// Loads script i: its own environment (reads fall back to the shared globals), main chunk run under
// the instruction bound. Arg 1: light userdata State*, arg 2: script index.
int load_script(lua_State* L) {
  State* st = static_cast<State*>(lua_touserdata(L, 1));
  auto i = static_cast<std::size_t>(lua_tointeger(L, 2));
  const Script& s = st->prog->scripts[i];
  lua_settop(L, 0);
  lua_pushfstring(L, "@%s", s.path.c_str());
  int status = luaL_loadbufferx(L, s.source.data(), s.source.size(), lua_tostring(L, 1), "t");
  if (status != LUA_OK) return lua_error(L);
  // env = setmetatable({_G = env}, {__index = globals})
  lua_newtable(L);
  lua_pushvalue(L, -1);
  lua_setfield(L, -2, "_G");
  lua_newtable(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
  lua_setfield(L, -2, "__index");
  lua_pushliteral(L, "locked");
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -1);
  int ref = luaL_ref(L, LUA_REGISTRYINDEX);
  st->env_refs[i] = ref;
  lua_setupvalue(L, -2, 1);  // the chunk's _ENV
  lua_call(L, 0, 0);
  unsigned bits = 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
  for (unsigned h = 0; h < kHookCount; ++h) {
    lua_pushstring(L, hook_name(static_cast<Hook>(h)));
    lua_rawget(L, -2);
    if (lua_type(L, -1) == LUA_TFUNCTION) bits |= 1u << h;
    lua_pop(L, 1);
  }
  st->hook_bits[i] = bits;
  return 0;
}

}  // namespace

State* state_of(lua_State* L) {
  void* ud = nullptr;
  lua_getallocf(L, &ud);
  return static_cast<State*>(ud);
}

State::~State() {
  if (L) lua_close(L);
}

std::shared_ptr<State> State::create(std::shared_ptr<const Program> prog, std::string& error) {
  std::shared_ptr<State> st(new State());
  st->prog = prog;
  st->limit = static_cast<std::size_t>(prog->options.max_memory);
  st->env_refs.assign(prog->scripts.size(), LUA_NOREF);
  st->hook_bits.assign(prog->scripts.size(), 0);
  st->L = lua_newstate(bounded_alloc, st.get());
  if (!st->L) {
    error = "cannot create a Lua state (max_memory too small?)";
    return nullptr;
  }
  lua_State* L = st->L;
  lua_atpanic(L, at_panic);
  lua_sethook(L, count_hook, LUA_MASKCOUNT, hook_step(*prog));
  lua_pushcfunction(L, setup);
  if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
    error = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "cannot set up the Lua sandbox";
    return nullptr;
  }
  for (std::size_t i = 0; i < prog->scripts.size(); ++i) {
    Call load;
    load.loading = true;
    load.script = i;
    st->current = &load;
    lua_pushcfunction(L, load_script);
    lua_pushlightuserdata(L, st.get());
    lua_pushinteger(L, static_cast<lua_Integer>(i));
    int status = lua_pcall(L, 2, 0, 0);
    st->current = nullptr;
    if (status != LUA_OK) {
      std::string msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "error object is not a string";
      if (msg.rfind(prog->scripts[i].path + ":", 0) != 0) msg = prog->scripts[i].path + ": " + msg;
      error = msg;
      return nullptr;
    }
  }
  lua_settop(L, 0);
  lua_gc(L, LUA_GCCOLLECT);
  return st;
}

int prepare_call(lua_State* L) {
  Call* c = static_cast<Call*>(lua_touserdata(L, 1));
  State* st = state_of(L);
  lua_settop(L, 0);
  lua_rawgeti(L, LUA_REGISTRYINDEX, st->env_refs[c->script]);
  lua_pushstring(L, hook_name(c->hook));
  lua_rawget(L, -2);
  if (lua_type(L, -1) != LUA_TFUNCTION) {
    c->missing = true;
    return 0;
  }
  lua_State* T = lua_newthread(L);
  lua_pushvalue(L, -1);
  c->thread_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  c->thread = T;
  lua_pushvalue(L, 2);  // the hook function
  auto* tx = static_cast<Box*>(lua_newuserdatauv(L, sizeof(Box), 0));
  tx->serial = c->serial;
  luaL_setmetatable(L, kTxMeta);
  int n = 2;
  switch (c->hook) {
    case Hook::connect: n = 1; break;
    case Hook::helo:
    case Hook::mail_from:
    case Hook::rcpt_to: lua_pushlstring(L, c->arg.data(), c->arg.size()); break;
    case Hook::data: {
      auto* m = static_cast<Box*>(lua_newuserdatauv(L, sizeof(Box), 0));
      m->serial = c->serial;
      luaL_setmetatable(L, kMsgMeta);
      break;
    }
  }
  lua_xmove(L, T, n + 1);
  c->nargs = n;
  return 0;
}

void describe_error(lua_State* co, std::string& message, std::string& where) {
  if (lua_type(co, -1) == LUA_TSTRING) message = lua_tostring(co, -1);
  else message = std::string("(error object is a ") + luaL_typename(co, -1) + " value)";
  where = innermost_line(co);
}

std::string innermost_line(lua_State* co) {
  lua_Debug ar;
  for (int level = 0; lua_getstack(co, level, &ar); ++level) {
    if (lua_getinfo(co, "Sl", &ar) && ar.currentline > 0)
      return std::string(ar.source[0] == '@' ? ar.source + 1 : ar.short_src) + ":" + std::to_string(ar.currentline);
  }
  return {};
}

bool read_verdict(State& st, lua_State* co, int nres, Verdict& out, std::string& error) {
  if (nres <= 0) {
    out = Verdict::next();
    return true;
  }
  int idx = lua_gettop(co) - nres + 1;
  if (lua_isnil(co, idx)) {
    out = Verdict::next();
    return true;
  }
  if (lua_type(co, idx) == LUA_TUSERDATA && lua_getmetatable(co, idx)) {
    bool ok = lua_topointer(co, -1) == st.verdict_mt;
    lua_pop(co, 1);
    if (ok) {
      auto* v = static_cast<VerdictUd*>(lua_touserdata(co, idx));
      auto kind = static_cast<Verdict::Kind>(v->kind);
      if (kind == Verdict::Kind::accept) out = Verdict::accept();
      else if (kind == Verdict::Kind::reject) out = Verdict::reject(v->code, v->enhanced, v->text);
      else out = Verdict::tempfail(v->code, v->enhanced, v->text);
      return true;
    }
  }
  error = std::string("returned a ") + luaL_typename(co, idx) + ", expected nothing or gateway.accept/reject/tempfail()";
  return false;
}

const char* hook_name(Hook h) {
  switch (h) {
    case Hook::connect: return "on_connect";
    case Hook::helo: return "on_helo";
    case Hook::mail_from: return "on_mail_from";
    case Hook::rcpt_to: return "on_rcpt_to";
    case Hook::data: return "on_data";
  }
  return "?";
}

}  // namespace gw::lua
