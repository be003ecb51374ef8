// Internals of the Lua host shared by state.cpp (sandbox, bindings) and host.cpp (the hook driver).
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <lua.hpp>

#include "gateway/dns/resolver.hpp"

#include "lua/host.hpp"

namespace gw::observe {
struct Counter;
struct Gauge;
}

namespace gw::lua {

struct Script {
  std::string path;
  std::string source;
};

// Immutable after construction; shared by every worker's state of one Host.
struct Program {
  Options options;
  std::vector<Script> scripts;
  observe::Gauge* memory = nullptr;  // smtpgw_lua_memory_bytes{instance=...}: bytes held by the states
};

class State;

struct StoreRequest {
  enum class Op { incr, get, set } op = Op::get;
  std::string key;
  std::int64_t n = 0;
  std::string value;
  std::chrono::milliseconds ttl{0};
};

struct StoreReply {
  bool ok = false;
  std::string error;
  bool has_value = false;  // get: false = nil
  bool integer = false;    // incr: the value is `i`
  std::int64_t i = 0;
  std::string s;
};

struct DnsRequest {
  std::string name;
  dns::Type type = dns::Type::A;
  bool rbl = false;  // gateway.dns.rbl: the answer is nil or the first address
};

// tx.session_data and tx.data of one client session: registry references in the state the session
// uses (it keeps using that state, so the tables stay reachable). Kept in Connection::plugin_state
// under the instance name, so they go when the session goes; the destructor drops the references.
struct SessionTables {
  std::shared_ptr<State> state;
  std::uint64_t host = 0;  // Host::id_: a reloaded config builds a new Host, its sessions start afresh
  int session_ref = LUA_NOREF;
  int data_ref = LUA_NOREF;
  void drop_data();
  ~SessionTables();
};

// One hook call of one script (or one main chunk while loading).
struct Call {
  std::uint64_t serial = 0;
  lua_State* thread = nullptr;  // the coroutine running the hook; null while loading
  int thread_ref = LUA_NOREF;
  bool reusable = false;  // the hook returned normally: its thread may run the next call
  Transaction* tx = nullptr;
  std::string_view arg;
  Hook hook = Hook::connect;
  std::size_t script = 0;
  bool loading = false;
  bool missing = false;  // the script has no such hook
  int nargs = 0;
  std::uint64_t used = 0;  // instructions so far
  bool exceeded = false;
  std::string stop;  // why the call was stopped when it is not the instruction count (see stop_call)
  std::optional<StoreRequest> pending;  // set by gateway.store.* right before it yields
  StoreReply reply;                     // filled by C++ before the resume
  std::uintptr_t token = 0;             // gateway.store.* checks it was resumed by C++, not by a script
  std::optional<DnsRequest> dns;        // set by gateway.dns.* right before it yields
  dns::Answer answer;                   // filled by C++ before the resume
  SessionTables* session = nullptr;     // tx.session_data, tx.data
  std::uint64_t dns_lookups = 0;        // gateway.dns.* so far (max_dns_lookups)
};

class State {
 public:
  // Creates the sandbox and runs every script's main chunk. Null with `error` set on failure.
  static std::shared_ptr<State> create(std::shared_ptr<const Program> prog, std::string& error);
  ~State();
  State(const State&) = delete;
  State& operator=(const State&) = delete;

  lua_State* L = nullptr;
  std::shared_ptr<const Program> prog;
  std::size_t used = 0;   // bytes allocated
  std::size_t limit = 0;  // max_memory
  Call* current = nullptr;  // the call whose Lua code is running right now (one at a time per thread)
  std::vector<Call*> active;  // calls started and not finished (some suspended on the store)
  std::uint64_t next_serial = 0;
  std::vector<int> env_refs;        // per script: its global environment
  std::vector<unsigned> hook_bits;  // per script: hooks its main chunk defined
  const void* verdict_mt = nullptr;
  const void* tx_mt = nullptr;   // the tx and msg userdata's metatables (lua/tx.cpp)
  const void* msg_mt = nullptr;
  std::unordered_map<std::string, observe::Counter*> counters;
  std::int64_t reported = 0;  // bytes last added to the memory gauge
  bool retire = false;  // memory stays near the cap after a full collection: build a fresh state
  // Threads of calls that returned normally, kept for the next calls (a fresh lua_newthread per
  // call was a tenth of a typical policy's cost: its stack, its registry slot, its collection).
  std::vector<std::pair<lua_State*, int>> idle_threads;
  static constexpr std::size_t kIdleThreads = 4;

  Call* find_call(std::uint64_t serial) const {
    for (Call* c : active)
      if (c->serial == serial) return c;
    return nullptr;
  }

 private:
  State() = default;
};

State* state_of(lua_State* L);

// Charges `n` units of work done inside a C function (no Lua instruction runs there) to the running
// call's instruction budget; raises "instruction limit exceeded" once it is spent.
void charge(lua_State* L, std::uint64_t n);
// Ends the running call like the instruction bound does (every further instruction raises, so a
// script cannot catch it and go on) with `reason` as the error; used for max_dns_lookups.
[[noreturn]] void stop_call(lua_State* L, const char* reason);
// Replaces string.find/match/gmatch/gsub with the step-counted matcher (pattern.cpp).
void install_patterns(lua_State* L);

// Protected steps of a hook call (run with lua_pcall on the main thread; they allocate).
int prepare_call(lua_State* L);  // arg 1: light userdata Call*, upvalue-free; pushes nothing
// Formats the error on top of `co` (a dead coroutine) as message + "script:line" of the innermost Lua frame.
std::string innermost_line(lua_State* co);  // "script:line" of the innermost Lua frame, or ""
void describe_error(lua_State* co, std::string& message, std::string& where);
// Reads the verdict the hook returned (first of nres values on co's top). false + error when not a verdict.
bool read_verdict(State& st, lua_State* co, int nres, Verdict& out, std::string& error);

}  // namespace gw::lua
