// The sandboxed standard library: base, string, table, math, utf8, coroutine and os.time/clock/date/
// difftime. Withheld functions are absent (nil); the replacements below close the holes the originals
// leave in a sandbox (binary chunks, __gc, unbounded C loops, handlers running past the budget).
// Rules every C function here follows (Debian's Lua is C, errors are longjmps):
//  * no C++ object with a destructor is alive when a Lua API call that may raise runs;
//    C++ work happens in a scope that ends first, or results are pushed through pcall_push();
//  * no C++ exception leaves a C function: C++ work is wrapped in try/catch.
#include <algorithm>
#include <cstring>

#include "lua/bindings.hpp"

namespace gw::lua {
namespace {

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

// load() of text chunks only: a binary chunk raises (docs/lua.md: withheld functions raise).
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


}  // namespace

void open_stdlib(lua_State* L) {
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

}

}  // namespace gw::lua
