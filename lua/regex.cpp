// gateway.regex.new(pattern, flags): PCRE2 regular expressions, compiled once (usually in the main
// chunk, so a bad pattern fails the load). Every match runs under a PCRE2 match limit equal to what is
// left of the hook call's max_instructions, so a catastrophic pattern ends the call with on_error
// instead of holding the worker thread.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <cstring>

#include "lua/bindings.hpp"

namespace gw::lua {
namespace {

constexpr const char* kRegexMeta = "gw.regex";
constexpr std::size_t kMaxPattern = 4096;

struct Regex {
  pcre2_code* code;
  pcre2_match_data* md;
  pcre2_match_context* mctx;
};

Regex* check_regex(lua_State* L, int idx) {
  auto* r = static_cast<Regex*>(luaL_checkudata(L, idx, kRegexMeta));
  if (!r->code) luaL_error(L, "gateway.regex: regex already freed");
  return r;
}

int regex_gc(lua_State* L) {
  auto* r = static_cast<Regex*>(luaL_checkudata(L, 1, kRegexMeta));
  if (r->md) pcre2_match_data_free(r->md);
  if (r->mctx) pcre2_match_context_free(r->mctx);
  if (r->code) pcre2_code_free(r->code);
  r->code = nullptr;
  r->md = nullptr;
  r->mctx = nullptr;
  return 0;
}

int l_new(lua_State* L) {
  std::size_t plen = 0;
  const char* pattern = luaL_checklstring(L, 1, &plen);
  const char* flags = luaL_optstring(L, 2, "");
  if (plen > kMaxPattern) return luaL_argerror(L, 1, "pattern longer than 4096 bytes");
  uint32_t options = 0;
  for (const char* f = flags; *f; ++f) {
    switch (*f) {
      case 'i': options |= PCRE2_CASELESS; break;
      case 'm': options |= PCRE2_MULTILINE; break;
      case 's': options |= PCRE2_DOTALL; break;
      case 'x': options |= PCRE2_EXTENDED; break;
      default: return luaL_argerror(L, 2, lua_pushfstring(L, "unknown flag '%c' (flags: i m s x)", *f));
    }
  }
  charge(L, plen * 4);  // compiling is linear in the pattern
  // The userdata first, so a memory error leaves nothing unowned; __gc frees what is set.
  auto* r = static_cast<Regex*>(lua_newuserdatauv(L, sizeof(Regex), 0));
  r->code = nullptr;
  r->md = nullptr;
  r->mctx = nullptr;
  luaL_setmetatable(L, kRegexMeta);
  int err = 0;
  PCRE2_SIZE offset = 0;
  r->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern), plen, options | PCRE2_NEVER_BACKSLASH_C, &err,
                          &offset, nullptr);
  if (!r->code) {
    PCRE2_UCHAR buf[256];
    pcre2_get_error_message(err, buf, sizeof buf);
    return luaL_error(L, "gateway.regex.new: %s at offset %d of /%s/", reinterpret_cast<const char*>(buf),
                      static_cast<int>(offset), pattern);
  }
  // JIT when the platform has it (an order of magnitude faster); it honours the match limit too.
  pcre2_jit_compile(r->code, PCRE2_JIT_COMPLETE);
  r->md = pcre2_match_data_create_from_pattern(r->code, nullptr);
  r->mctx = pcre2_match_context_create(nullptr);
  if (!r->md || !r->mctx) return luaL_error(L, "not enough memory");
  return 1;
}

// Runs the match from byte `start`; true on a match, false on none; raises on the match limit.
bool run(lua_State* L, Regex* r, const char* s, std::size_t len, std::size_t start) {
  State* st = state_of(L);
  const std::uint64_t max = st->prog->options.max_instructions;
  std::uint64_t left = max;
  if (Call* c = st->current) left = c->used >= max ? 1 : max - c->used;
  pcre2_set_match_limit(r->mctx, static_cast<uint32_t>(std::min<std::uint64_t>(left, UINT32_MAX)));
  pcre2_set_depth_limit(r->mctx, 10000);
  int rc = pcre2_match(r->code, reinterpret_cast<PCRE2_SPTR>(s), len, start, 0, r->md, r->mctx);
  charge(L, (len - std::min(len, start)) / 16 + 1);
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT || rc == PCRE2_ERROR_HEAPLIMIT) {
    charge(L, left);  // the budget is spent: raises "instruction limit exceeded"
    luaL_error(L, "gateway.regex: match limit exceeded");
  }
  if (rc < 0) {
    PCRE2_UCHAR buf[256];
    pcre2_get_error_message(rc, buf, sizeof buf);
    luaL_error(L, "gateway.regex: %s", reinterpret_cast<const char*>(buf));
  }
  return true;
}

// Pushes the whole match and every capture (nil for a group that did not take part); with
// `captures_only`, string.gmatch's way: the captures, or the whole match when there are none.
int push_match(lua_State* L, Regex* r, const char* s, bool captures_only = false) {
  PCRE2_SIZE* ov = pcre2_get_ovector_pointer(r->md);
  uint32_t groups = 0;
  pcre2_pattern_info(r->code, PCRE2_INFO_CAPTURECOUNT, &groups);
  luaL_checkstack(L, static_cast<int>(groups) + 1, "too many captures");
  const uint32_t first = captures_only && groups > 0 ? 1 : 0;
  for (uint32_t i = first; i <= groups; ++i) {
    if (ov[2 * i] == PCRE2_UNSET) lua_pushnil(L);
    else lua_pushlstring(L, s + ov[2 * i], ov[2 * i + 1] - ov[2 * i]);
  }
  return static_cast<int>(groups + 1 - first);
}

int re_match(lua_State* L) {
  Regex* r = check_regex(L, 1);
  std::size_t len = 0;
  const char* s = luaL_checklstring(L, 2, &len);
  if (!run(L, r, s, len, 0)) {
    lua_pushnil(L);
    return 1;
  }
  return push_match(L, r, s);
}

// re:find(s[, init]) -> start, end (1-based, inclusive) or nil; init as in string.find.
int re_find(lua_State* L) {
  Regex* r = check_regex(L, 1);
  std::size_t len = 0;
  const char* s = luaL_checklstring(L, 2, &len);
  lua_Integer init = luaL_optinteger(L, 3, 1);
  if (init < 0) init = std::max<lua_Integer>(1, static_cast<lua_Integer>(len) + init + 1);
  else if (init == 0) init = 1;
  if (init > static_cast<lua_Integer>(len) + 1 || !run(L, r, s, len, static_cast<std::size_t>(init - 1))) {
    lua_pushnil(L);
    return 1;
  }
  PCRE2_SIZE* ov = pcre2_get_ovector_pointer(r->md);
  lua_pushinteger(L, static_cast<lua_Integer>(ov[0]) + 1);
  lua_pushinteger(L, static_cast<lua_Integer>(ov[1]));
  return 2;
}

// The iterator of re:gmatch(s): upvalues regex, subject, next start (or -1 when done).
int gmatch_step(lua_State* L) {
  Regex* r = check_regex(L, lua_upvalueindex(1));
  std::size_t len = 0;
  const char* s = lua_tolstring(L, lua_upvalueindex(2), &len);
  lua_Integer pos = lua_tointeger(L, lua_upvalueindex(3));
  if (pos < 0 || static_cast<std::size_t>(pos) > len || !run(L, r, s, len, static_cast<std::size_t>(pos))) {
    lua_pushinteger(L, -1);
    lua_replace(L, lua_upvalueindex(3));
    return 0;
  }
  PCRE2_SIZE* ov = pcre2_get_ovector_pointer(r->md);
  lua_Integer next = static_cast<lua_Integer>(ov[1]);
  if (ov[1] == ov[0]) ++next;  // an empty match: move on one byte
  lua_pushinteger(L, next);
  lua_replace(L, lua_upvalueindex(3));
  return push_match(L, r, s, true);
}

int re_gmatch(lua_State* L) {
  check_regex(L, 1);
  luaL_checkstring(L, 2);
  lua_settop(L, 2);
  lua_pushinteger(L, 0);
  lua_pushcclosure(L, gmatch_step, 3);
  return 1;
}

int re_tostring(lua_State* L) {
  check_regex(L, 1);
  lua_pushliteral(L, "gateway.regex");
  return 1;
}

}  // namespace

void open_regex(lua_State* L) {
  luaL_newmetatable(L, kRegexMeta);
  static const luaL_Reg methods[] = {{"match", re_match}, {"find", re_find}, {"gmatch", re_gmatch}, {nullptr, nullptr}};
  luaL_newlib(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, regex_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, re_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushliteral(L, "locked");
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 1);
  static const luaL_Reg fns[] = {{"new", l_new}, {nullptr, nullptr}};
  luaL_newlib(L, fns);
  lua_setfield(L, -2, "regex");
}

}  // namespace gw::lua
