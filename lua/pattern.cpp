// string.find, string.match, string.gmatch and string.gsub for the sandbox: the Lua 5.4 pattern
// language, with every matching step charged to the hook call's instruction budget. The standard
// library's matcher runs inside one C call that the count hook cannot interrupt, so a pattern like
// ".-x" over a large body would backtrack for minutes; here it ends with "instruction limit
// exceeded" like any other runaway script.
//
// Written for this project (not derived from lstrlib.c); behaviour follows the Lua 5.4 manual §6.4.1.
#include <cctype>
#include <cstring>

#include "lua/state.hpp"

namespace gw::lua {
namespace {

constexpr char kEsc = '%';
constexpr int kMaxCaptures = 32;
constexpr int kMaxDepth = 200;
constexpr std::ptrdiff_t kUnfinished = -1;
constexpr std::ptrdiff_t kPosition = -2;
constexpr unsigned kStepsPerInstruction = 4;
constexpr unsigned kChargeEvery = 4096;  // steps between two charges

struct Matcher {
  lua_State* L;
  const char* src;      // subject start
  const char* src_end;
  const char* pat_end;
  int depth;
  int level;
  unsigned steps;
  struct {
    const char* init;
    std::ptrdiff_t len;
  } cap[kMaxCaptures];

  void step() {
    if (++steps >= kChargeEvery) {
      steps = 0;
      charge(L, kChargeEvery / kStepsPerInstruction);
    }
  }
  void flush() {
    if (steps) charge(L, (steps + kStepsPerInstruction - 1) / kStepsPerInstruction);
    steps = 0;
  }
};

bool class_matches(int c, int cl) {
  bool r;
  switch (std::tolower(cl)) {
    case 'a': r = std::isalpha(c); break;
    case 'c': r = std::iscntrl(c); break;
    case 'd': r = std::isdigit(c); break;
    case 'g': r = std::isgraph(c); break;
    case 'l': r = std::islower(c); break;
    case 'p': r = std::ispunct(c); break;
    case 's': r = std::isspace(c); break;
    case 'u': r = std::isupper(c); break;
    case 'w': r = std::isalnum(c); break;
    case 'x': r = std::isxdigit(c); break;
    default: return cl == c;
  }
  return std::isupper(cl) ? !r : r;
}

// p points at '[', last at the closing ']'
bool set_matches(int c, const char* p, const char* last) {
  bool yes = true;
  ++p;
  if (*p == '^') {
    yes = false;
    ++p;
  }
  for (; p < last; ++p) {
    if (*p == kEsc) {
      ++p;
      if (class_matches(c, static_cast<unsigned char>(*p))) return yes;
    } else if (p + 2 < last && p[1] == '-') {
      if (static_cast<unsigned char>(p[0]) <= c && c <= static_cast<unsigned char>(p[2])) return yes;
      p += 2;
    } else if (static_cast<unsigned char>(*p) == c) {
      return yes;
    }
  }
  return !yes;
}

// the end of the single-character class starting at p
const char* item_end(Matcher& m, const char* p) {
  char c = *p++;
  if (c == kEsc) {
    if (p >= m.pat_end) luaL_error(m.L, "malformed pattern (ends with '%%')");
    return p + 1;
  }
  if (c == '[') {
    if (p < m.pat_end && *p == '^') ++p;
    do {  // the first character after '[' (or '[^') is literal, even ']'
      if (p >= m.pat_end) luaL_error(m.L, "malformed pattern (missing ']')");
      char d = *p++;
      if (d == kEsc && p < m.pat_end) ++p;
    } while (p >= m.pat_end || *p != ']');
    return p + 1;
  }
  return p;
}

bool single(Matcher& m, const char* s, const char* p, const char* ep) {
  m.step();
  if (s >= m.src_end) return false;
  int c = static_cast<unsigned char>(*s);
  switch (*p) {
    case '.': return true;
    case kEsc: return class_matches(c, static_cast<unsigned char>(p[1]));
    case '[': return set_matches(c, p, ep - 1);
    default: return static_cast<unsigned char>(*p) == c;
  }
}

const char* do_match(Matcher& m, const char* s, const char* p);

const char* balance(Matcher& m, const char* s, const char* p) {
  if (p + 1 >= m.pat_end) luaL_error(m.L, "malformed pattern (missing arguments to '%%b')");
  if (s >= m.src_end || *s != *p) return nullptr;
  char open = p[0], close = p[1];
  int depth = 1;
  while (++s < m.src_end) {
    m.step();
    if (*s == close) {
      if (--depth == 0) return s + 1;
    } else if (*s == open) {
      ++depth;
    }
  }
  return nullptr;
}

const char* greedy(Matcher& m, const char* s, const char* p, const char* ep) {
  std::ptrdiff_t n = 0;
  while (single(m, s + n, p, ep)) ++n;
  for (; n >= 0; --n) {
    if (const char* r = do_match(m, s + n, ep + 1)) return r;
  }
  return nullptr;
}

const char* lazy(Matcher& m, const char* s, const char* p, const char* ep) {
  for (;;) {
    if (const char* r = do_match(m, s, ep + 1)) return r;
    if (!single(m, s, p, ep)) return nullptr;
    ++s;
  }
}

const char* open_capture(Matcher& m, const char* s, const char* p, std::ptrdiff_t what) {
  if (m.level >= kMaxCaptures) luaL_error(m.L, "too many captures");
  m.cap[m.level].init = s;
  m.cap[m.level].len = what;
  ++m.level;
  const char* r = do_match(m, s, p);
  if (!r) --m.level;
  return r;
}

const char* close_capture(Matcher& m, const char* s, const char* p) {
  int l = m.level - 1;
  while (l >= 0 && m.cap[l].len != kUnfinished) --l;
  if (l < 0) luaL_error(m.L, "invalid pattern capture");
  m.cap[l].len = s - m.cap[l].init;
  const char* r = do_match(m, s, p);
  if (!r) m.cap[l].len = kUnfinished;
  return r;
}

int capture_index(Matcher& m, int c) {
  int l = c - '1';
  if (l < 0 || l >= m.level || m.cap[l].len == kUnfinished) luaL_error(m.L, "invalid capture index %%%d", l + 1);
  return l;
}

const char* back_reference(Matcher& m, const char* s, int c) {
  int l = capture_index(m, c);
  std::size_t len = static_cast<std::size_t>(m.cap[l].len);
  m.step();
  if (static_cast<std::size_t>(m.src_end - s) >= len && std::memcmp(m.cap[l].init, s, len) == 0) return s + len;
  return nullptr;
}

const char* do_match(Matcher& m, const char* s, const char* p) {
  if (m.depth-- == 0) luaL_error(m.L, "pattern too complex");
  for (;;) {
    m.step();
    if (p == m.pat_end) break;
    if (*p == '(') {
      if (p + 1 < m.pat_end && p[1] == ')') s = open_capture(m, s, p + 2, kPosition);
      else s = open_capture(m, s, p + 1, kUnfinished);
      break;
    }
    if (*p == ')') {
      s = close_capture(m, s, p + 1);
      break;
    }
    if (*p == '$' && p + 1 == m.pat_end) {
      if (s != m.src_end) s = nullptr;
      break;
    }
    if (*p == kEsc && p + 1 < m.pat_end) {
      char k = p[1];
      if (k == 'b') {
        s = balance(m, s, p + 2);
        if (s) {
          p += 4;
          continue;
        }
        break;
      }
      if (k == 'f') {
        p += 2;
        if (p >= m.pat_end || *p != '[') luaL_error(m.L, "missing '[' after '%%f' in pattern");
        const char* ep = item_end(m, p);
        int prev = s == m.src ? 0 : static_cast<unsigned char>(s[-1]);
        int cur = s < m.src_end ? static_cast<unsigned char>(*s) : 0;
        if (!set_matches(prev, p, ep - 1) && set_matches(cur, p, ep - 1)) {
          p = ep;
          continue;
        }
        s = nullptr;
        break;
      }
      if (std::isdigit(static_cast<unsigned char>(k))) {
        s = back_reference(m, s, static_cast<unsigned char>(k));
        if (s) {
          p += 2;
          continue;
        }
        break;
      }
    }
    // a single-character class, maybe with a quantifier
    const char* ep = item_end(m, p);
    char q = ep < m.pat_end ? *ep : '\0';
    if (!single(m, s, p, ep)) {
      if (q == '*' || q == '?' || q == '-') {
        p = ep + 1;
        continue;
      }
      s = nullptr;
      break;
    }
    if (q == '?') {
      if (const char* r = do_match(m, s + 1, ep + 1)) {
        s = r;
        break;
      }
      p = ep + 1;
      continue;
    }
    if (q == '+') {
      s = greedy(m, s + 1, p, ep);
      break;
    }
    if (q == '*') {
      s = greedy(m, s, p, ep);
      break;
    }
    if (q == '-') {
      s = lazy(m, s, p, ep);
      break;
    }
    ++s;
    p = ep;
  }
  ++m.depth;
  return s;
}

void reset(Matcher& m) {
  m.level = 0;
  m.depth = kMaxDepth;
}

void setup_matcher(Matcher& m, lua_State* L, const char* s, std::size_t ls, const char* p, std::size_t lp) {
  m.L = L;
  m.src = s;
  m.src_end = s + ls;
  m.pat_end = p + lp;
  m.steps = 0;
  reset(m);
}

// Pushes capture i (or the whole match s..e when there are no captures and i == 0).
void push_capture(Matcher& m, int i, const char* s, const char* e) {
  if (i >= m.level) {
    if (i != 0) luaL_error(m.L, "invalid capture index %%%d", i + 1);
    lua_pushlstring(m.L, s, static_cast<std::size_t>(e - s));
    return;
  }
  std::ptrdiff_t len = m.cap[i].len;
  if (len == kUnfinished) luaL_error(m.L, "unfinished capture");
  if (len == kPosition) lua_pushinteger(m.L, m.cap[i].init - m.src + 1);
  else lua_pushlstring(m.L, m.cap[i].init, static_cast<std::size_t>(len));
}

int push_captures(Matcher& m, const char* s, const char* e) {
  int n = (m.level == 0 && s) ? 1 : m.level;
  luaL_checkstack(m.L, n, "too many captures");
  for (int i = 0; i < n; ++i) push_capture(m, i, s, e);
  return n;
}

std::size_t start_index(lua_Integer pos, std::size_t len) {
  if (pos > 0) return static_cast<std::size_t>(pos);
  if (pos == 0) return 1;
  if (pos < -static_cast<lua_Integer>(len)) return 1;
  return static_cast<std::size_t>(static_cast<lua_Integer>(len) + pos + 1);
}

bool has_specials(const char* p, std::size_t lp) {
  for (std::size_t i = 0; i < lp; ++i)
    if (std::strchr("^$*+?.([%-", p[i]) && p[i] != '\0') return true;
  return false;
}

const char* plain_find(const char* s, std::size_t ls, const char* p, std::size_t lp) {
  if (lp == 0) return s;
  if (lp > ls) return nullptr;
  return static_cast<const char*>(memmem(s, ls, p, lp));
}

int find_or_match(lua_State* L, bool find) {
  std::size_t ls, lp;
  const char* s = luaL_checklstring(L, 1, &ls);
  const char* p = luaL_checklstring(L, 2, &lp);
  std::size_t init = start_index(luaL_optinteger(L, 3, 1), ls) - 1;
  if (init > ls) {
    lua_pushnil(L);
    return 1;
  }
  if (find && (lua_toboolean(L, 4) || !has_specials(p, lp))) {
    charge(L, (ls - init) / 64);  // memmem is linear
    if (const char* r = plain_find(s + init, ls - init, p, lp)) {
      lua_pushinteger(L, r - s + 1);
      lua_pushinteger(L, static_cast<lua_Integer>(r - s + lp));
      return 2;
    }
    lua_pushnil(L);
    return 1;
  }
  Matcher m;
  bool anchor = lp > 0 && *p == '^';
  if (anchor) {
    ++p;
    --lp;
  }
  setup_matcher(m, L, s, ls, p, lp);
  const char* s1 = s + init;
  do {
    reset(m);
    if (const char* e = do_match(m, s1, p)) {
      m.flush();
      if (find) {
        lua_pushinteger(L, s1 - s + 1);
        lua_pushinteger(L, e - s);
        return push_captures(m, nullptr, nullptr) + 2;
      }
      return push_captures(m, s1, e);
    }
  } while (s1++ < m.src_end && !anchor);
  m.flush();
  lua_pushnil(L);
  return 1;
}

int l_find(lua_State* L) { return find_or_match(L, true); }
int l_match(lua_State* L) { return find_or_match(L, false); }

struct GmatchState {
  const char* pat;  // the pattern string is an upvalue of the iterator: the pointer stays valid
  const char* src;  // where the next search starts
  const char* last;  // end of the last match (an empty match may not end there again)
  Matcher m;
};

int gmatch_next(lua_State* L) {
  auto* g = static_cast<GmatchState*>(lua_touserdata(L, lua_upvalueindex(3)));
  g->m.L = L;  // the iterator may be called from another coroutine than gmatch was
  for (const char* src = g->src; src <= g->m.src_end; ++src) {
    reset(g->m);
    const char* e = do_match(g->m, src, g->pat);
    if (e && e != g->last) {
      g->src = g->last = e;
      g->m.flush();
      return push_captures(g->m, src, e);
    }
  }
  g->m.flush();
  return 0;
}

int l_gmatch(lua_State* L) {
  std::size_t ls, lp;
  const char* s = luaL_checklstring(L, 1, &ls);
  const char* p = luaL_checklstring(L, 2, &lp);
  std::size_t init = start_index(luaL_optinteger(L, 3, 1), ls) - 1;
  if (init > ls) init = ls + 1;
  lua_settop(L, 2);
  auto* g = static_cast<GmatchState*>(lua_newuserdatauv(L, sizeof(GmatchState), 0));
  setup_matcher(g->m, L, s, ls, p, lp);
  g->pat = p;
  g->src = s + init;
  g->last = nullptr;
  lua_pushcclosure(L, gmatch_next, 3);  // upvalues: subject, pattern, state (keep the strings alive)
  return 1;
}

void add_replacement_string(Matcher& m, luaL_Buffer* b, const char* s, const char* e) {
  lua_State* L = m.L;
  std::size_t l;
  const char* r = lua_tolstring(L, 3, &l);
  const char* end = r + l;
  for (const char* q = r; q < end; ++q) {
    if (*q != kEsc) {
      luaL_addchar(b, *q);
      continue;
    }
    ++q;
    if (q < end && *q == kEsc) {
      luaL_addchar(b, kEsc);
    } else if (q < end && std::isdigit(static_cast<unsigned char>(*q))) {
      if (*q == '0') {
        luaL_addlstring(b, s, static_cast<std::size_t>(e - s));
      } else {
        push_capture(m, *q - '1', s, e);
        luaL_tolstring(L, -1, nullptr);
        lua_remove(L, -2);
        luaL_addvalue(b);
      }
    } else {
      luaL_error(L, "invalid use of '%c' in replacement string", kEsc);
    }
  }
}

void add_replacement(Matcher& m, luaL_Buffer* b, const char* s, const char* e, int type) {
  lua_State* L = m.L;
  if (type == LUA_TFUNCTION) {
    lua_pushvalue(L, 3);
    int n = push_captures(m, s, e);
    lua_call(L, n, 1);
  } else if (type == LUA_TTABLE) {
    push_capture(m, 0, s, e);
    lua_gettable(L, 3);
  } else {
    add_replacement_string(m, b, s, e);
    return;
  }
  if (!lua_toboolean(L, -1)) {
    lua_pop(L, 1);
    luaL_addlstring(b, s, static_cast<std::size_t>(e - s));
  } else if (!lua_isstring(L, -1)) {
    luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
  } else {
    luaL_addvalue(b);
  }
}

int l_gsub(lua_State* L) {
  std::size_t ls, lp;
  const char* s = luaL_checklstring(L, 1, &ls);
  const char* p = luaL_checklstring(L, 2, &lp);
  int type = lua_type(L, 3);
  lua_Integer max = luaL_optinteger(L, 4, static_cast<lua_Integer>(ls) + 1);
  luaL_argexpected(L, type == LUA_TNUMBER || type == LUA_TSTRING || type == LUA_TFUNCTION || type == LUA_TTABLE, 3,
                   "string/function/table");
  bool anchor = lp > 0 && *p == '^';
  if (anchor) {
    ++p;
    --lp;
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  Matcher m;
  setup_matcher(m, L, s, ls, p, lp);
  const char* src = s;
  const char* last = nullptr;
  lua_Integer n = 0;
  while (n < max) {
    reset(m);
    const char* e = do_match(m, src, p);
    if (e && e != last) {
      ++n;
      add_replacement(m, &b, src, e, type);
      src = last = e;
    } else if (src < m.src_end) {
      luaL_addchar(&b, *src++);
    } else {
      break;
    }
    if (anchor) break;
  }
  m.flush();
  luaL_addlstring(&b, src, static_cast<std::size_t>(m.src_end - src));
  luaL_pushresult(&b);
  lua_pushinteger(L, n);
  return 2;
}

}  // namespace

void install_patterns(lua_State* L) {
  lua_getglobal(L, LUA_STRLIBNAME);
  lua_pushcfunction(L, l_find);
  lua_setfield(L, -2, "find");
  lua_pushcfunction(L, l_match);
  lua_setfield(L, -2, "match");
  lua_pushcfunction(L, l_gmatch);
  lua_setfield(L, -2, "gmatch");
  lua_pushcfunction(L, l_gsub);
  lua_setfield(L, -2, "gsub");
  lua_pop(L, 1);
}

}  // namespace gw::lua
