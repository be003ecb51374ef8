// A sandboxed lua_State: built from the sandboxed standard library (stdlib.cpp), the gateway API
// (api.cpp) and the tx/msg bindings (tx.cpp), under the bounds of bounds.cpp; loads every script in its
// own environment and prepares each hook call as a coroutine.
#include "lua/state.hpp"

#include <string>
#include <tuple>

#include "lua/bindings.hpp"

namespace gw::lua {
namespace {

int setup(lua_State* L) {
  open_stdlib(L);
  open_tx(L);
  open_gateway(L);
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
  lua_State* T = nullptr;
  if (!st->idle_threads.empty()) {
    std::tie(T, c->thread_ref) = st->idle_threads.back();
    st->idle_threads.pop_back();
    lua_sethook(T, count_hook, LUA_MASKCOUNT, hook_step(*st->prog));  // a fresh count for this call
  } else {
    T = lua_newthread(L);
    lua_pushvalue(L, -1);
    c->thread_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  c->thread = T;
  lua_pushvalue(L, 2);  // the hook function
  push_tx(L, c->serial);
  int n = 2;
  switch (c->hook) {
    case Hook::connect:
    case Hook::disconnect: n = 1; break;
    case Hook::helo:
    case Hook::mail_from:
    case Hook::rcpt_to: lua_pushlstring(L, c->arg.data(), c->arg.size()); break;
    case Hook::data: {
      push_msg(L, c->serial);
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
    case Hook::disconnect: return "on_disconnect";
  }
  return "?";
}

}  // namespace gw::lua