// Internals shared by the files of the Lua sandbox: bounds.cpp (allocator, instruction bound),
// stdlib.cpp (the sandboxed standard library), api.cpp (gateway.*), tx.cpp (tx and msg) and state.cpp
// (building a state, loading scripts, starting hook calls).
#pragma once
#include <cstddef>
#include <cstdint>

#include "gateway/observe/log.hpp"
#include "lua/state.hpp"

namespace gw::lua {

inline constexpr const char* kTxMeta = "gw.tx";
inline constexpr const char* kMsgMeta = "gw.msg";
inline constexpr const char* kVerdictMeta = "gw.verdict";
inline constexpr std::size_t kMaxReplyText = 400;

// ---- bounds.cpp
void* bounded_alloc(void* ud, void* ptr, std::size_t osize, std::size_t nsize);  // lua_Alloc with max_memory
int hook_step(const Program& p);                                                  // count hook period
void count_hook(lua_State* L, lua_Debug* ar);                                     // max_instructions
int at_panic(lua_State* L);

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

inline Call* current_call(lua_State* L) { return state_of(L)->current; }

// ---- stdlib.cpp: base, string, table, math, utf8, coroutine and part of os, with the sandbox's
// replacements; nothing that reaches files, processes or native code.
void open_stdlib(lua_State* L);

// ---- api.cpp: the `gateway` table and the verdict metatable.
struct VerdictUd {
  int kind;  // Verdict::Kind
  int code;
  char enhanced[16];
  char text[kMaxReplyText + 1];
};
void open_gateway(lua_State* L);
// Each sets its field of the gateway table on top of the stack: gateway.dns (dns.cpp),
// gateway.regex (regex.cpp), gateway.map (map.cpp).
void open_dns(lua_State* L);
void open_regex(lua_State* L);
void open_map_api(lua_State* L);
void write_log(log::Level level, lua_State* L, const char* text, std::size_t len);

// ---- tx.cpp: tx and msg are userdata holding the serial of their call, valid only during it.
struct Box {
  std::uint64_t serial;
};
void open_tx(lua_State* L);  // registers the tx and msg metatables
void push_tx(lua_State* L, std::uint64_t serial);
void push_msg(lua_State* L, std::uint64_t serial);

}  // namespace gw::lua
