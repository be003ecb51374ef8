// The bounds of a Lua state: an allocator capped at max_memory and the count hook that enforces
// max_instructions on every hook call (coroutines and pcall handlers included).
#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "lua/bindings.hpp"

namespace gw::lua {

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
  if (!c->stop.empty()) lua_pushstring(L, c->stop.c_str());
  else
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

}  // namespace gw::lua

namespace gw::lua {

void stop_call(lua_State* L, const char* reason) {
  State* st = state_of(L);
  Call* c = st->current;
  if (c) {
    c->exceeded = true;
    try {
      if (c->stop.empty()) c->stop = reason;
    } catch (...) {
    }
    lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
    if (c->thread && c->thread != L) lua_sethook(c->thread, count_hook, LUA_MASKCOUNT, 1);
  }
  luaL_error(L, "%s", reason);
  std::abort();  // luaL_error does not return
}

}  // namespace gw::lua
