// The Lua policy host: compiles the policy scripts once, keeps one sandboxed lua_State per worker
// thread (created lazily, loaded with the same scripts) and runs the policy hooks (docs/lua.md) in them.
//
// Every hook call runs as a Lua coroutine, so gateway.store.* can yield back to C++, which co_awaits
// the store and resumes the script. Lua is entered only through lua_pcall/lua_resume; no C++ exception
// crosses a Lua frame and no Lua error (a longjmp) crosses a C++ frame that owns resources.
#pragma once
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/core/plugin.hpp"

namespace gw::dns { class Resolver; }

namespace gw::lua {

enum class Hook : unsigned { connect = 0, helo = 1, mail_from = 2, rcpt_to = 3, data = 4, disconnect = 5 };
constexpr unsigned kHookCount = 6;
const char* hook_name(Hook h);  // "on_connect", ...
constexpr unsigned hook_bit(Hook h) { return 1u << static_cast<unsigned>(h); }

struct Options {
  std::string instance = "lua";                 // the pipeline entry ("lua", "lua:allow"): logs, metrics, state
  std::vector<std::string> scripts;             // paths, loaded in this order
  std::uint64_t max_instructions = 1000000;     // per hook call (and per main chunk at load)
  std::uint64_t max_memory = 64ull << 20;       // per lua_State
  std::uint64_t max_body_bytes = 1ull << 20;    // msg:body() returns at most this many bytes
  Verdict on_error = Verdict::tempfail(451, "4.7.1", "Local policy error, try again later");
  std::uint64_t max_dns_lookups = 10;           // gateway.dns.* per hook call
  std::shared_ptr<store::Store> store;          // null: gateway.store.* raises "store not configured"
  std::shared_ptr<dns::Resolver> resolver;      // null: every gateway.dns.* answer is temperror
};

// A script that cannot be read, does not compile or fails while its main chunk runs.
// what() is "path:line: message" when Lua knows the line.
class LoadError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class State;
struct Program;

class Host {
 public:
  explicit Host(Options options);  // loads every script once (the first worker's state); throws LoadError
  ~Host();
  Host(const Host&) = delete;
  Host& operator=(const Host&) = delete;

  // Bit set of hook_bit() for the hooks any script defines.
  unsigned hooks() const { return hooks_; }

  // Runs `hook` of each script in order until one returns a verdict. A script error, the instruction
  // or memory bound exceeded: logged with script:line, and the answer is options.on_error.
  // `arg` is the HELO name, MAIL address or RCPT address for those hooks.
  Task<Verdict> call(Hook hook, Transaction& tx, std::string_view arg = {});

  // The transaction ends: tx.data is dropped. The session ends: on_disconnect (when a script has it)
  // runs, then tx.session_data and tx.data are dropped.
  void end_transaction(Transaction& tx);
  Task<void> end_session(Transaction& tx);

  // Bytes held by the calling worker's state (tests, bench); 0 before its first use.
  std::size_t memory_used() const;

 private:
  std::shared_ptr<State> state();
  std::shared_ptr<State> state_for(Transaction& tx);  // the session's own state (tx.session_data lives there)
  std::shared_ptr<const Program> prog_;
  std::vector<std::shared_ptr<State>> slots_;  // indexed by worker_index(); each touched by its worker only
  unsigned hooks_ = 0;
  std::uint64_t id_ = 0;  // unique per Host of the process (an address could be reused after a reload)
};

}  // namespace gw::lua
