// Host: compiled scripts + one state per worker; the driver that runs a hook as a Lua coroutine and
// serves its gateway.store.* yields with co_await.
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "gateway/core/worker.hpp"
#include "gateway/dns/resolver.hpp"
#include "gateway/observe/log.hpp"
#include "gateway/observe/metrics.hpp"
#include "gateway/store/store.hpp"
#include "lua/state.hpp"

namespace gw::lua {
namespace {

observe::Counter& error_counter(const char* kind) {
  return observe::Metrics::instance().counter("smtpgw_lua_errors_total", "Lua hook calls that ended in on_error",
                                              std::string("kind=\"") + kind + "\"");
}

Task<StoreReply> run_store(store::Store& s, StoreRequest req) {
  StoreReply r;
  const std::string key = "lua:" + req.key;  // scripts never see the C++ plugins' keys
  try {
    switch (req.op) {
      case StoreRequest::Op::incr: {
        auto res = co_await s.incr(key, req.n, req.ttl);
        r.ok = res.ok;
        r.error = res.error;
        r.integer = true;
        r.i = res.value;
        break;
      }
      case StoreRequest::Op::get: {
        auto res = co_await s.get(key);
        r.ok = res.ok;
        r.error = res.error;
        if (res.value) {
          r.has_value = true;
          r.s = std::move(*res.value);
        }
        break;
      }
      case StoreRequest::Op::set: {
        auto res = co_await s.set(key, std::move(req.value), req.ttl);
        r.ok = res.ok;
        r.error = res.error;
        r.integer = false;
        r.has_value = false;
        break;
      }
    }
  } catch (const std::exception& e) {
    r.ok = false;
    r.error = e.what();
  }
  if (!r.ok && r.error.empty()) r.error = "store unavailable";
  if (req.op == StoreRequest::Op::set) r.has_value = false;
  co_return r;
}

Task<dns::Answer> run_dns(dns::Resolver* r, DnsRequest req) {
  dns::Answer a;
  if (!r) co_return a;  // temperror
  try {
    a = co_await r->query(std::move(req.name), req.type);
  } catch (const std::exception&) {
    a = dns::Answer{};
  }
  co_return a;
}

void unref(State& st, int ref) {
  if (ref == LUA_NOREF || !st.L) return;
  lua_State* L = st.L;
  lua_pushcfunction(L, [](lua_State* L) -> int {
    int ref = static_cast<int>(lua_tointeger(L, 1));
    luaL_unref(L, LUA_REGISTRYINDEX, ref);
    return 0;
  });
  lua_pushinteger(L, ref);
  lua_pcall(L, 1, 0, 0) == LUA_OK ? void() : lua_pop(L, 1);
}

// Brings the memory gauge up to date with the bytes this state holds (once per hook call).
void report(State& st) {
  if (!st.prog->memory) return;
  auto now = static_cast<std::int64_t>(st.used);
  if (now != st.reported) {
    st.prog->memory->add(now - st.reported);
    st.reported = now;
  }
}

// Ends a call whatever happens to the C++ coroutine (even if its frame is destroyed while suspended).
struct CallGuard {
  State& st;
  Call& c;
  ~CallGuard() {
    if (st.current == &c) st.current = nullptr;
    std::erase(st.active, &c);
    if (c.reusable && c.thread && st.idle_threads.size() < State::kIdleThreads) {
      lua_settop(c.thread, 0);
      st.idle_threads.emplace_back(c.thread, c.thread_ref);
    } else {
      unref(st, c.thread_ref);
    }
    report(st);
  }
};

}  // namespace

void SessionTables::drop_data() {
  if (state) unref(*state, data_ref);
  data_ref = LUA_NOREF;
}

SessionTables::~SessionTables() {
  if (!state) return;
  unref(*state, data_ref);
  unref(*state, session_ref);
  report(*state);
}

State::~State() {
  if (L) lua_close(L);
  if (prog && prog->memory) prog->memory->add(-reported);
}

Host::Host(Options options) {
  static std::atomic<std::uint64_t> next_id{0};
  id_ = ++next_id;
  auto prog = std::make_shared<Program>();
  prog->options = std::move(options);
  for (auto& path : prog->options.scripts) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw LoadError(path + ": cannot open: " + std::strerror(errno));
    std::ostringstream ss;
    ss << in.rdbuf();
    prog->scripts.push_back({path, ss.str()});
  }
  prog->memory = &observe::Metrics::instance().gauge(
      "smtpgw_lua_memory_bytes", "Bytes held by the Lua states of a Lua instance (all worker threads)",
      "instance=\"" + prog->options.instance + "\"");
  prog_ = prog;
  std::string error;
  auto first = State::create(prog_, error);
  if (!first) throw LoadError(error);
  for (auto bits : first->hook_bits) hooks_ |= bits;
  report(*first);
  slots_.resize(std::max(1u, worker_count()));
  slots_[0] = std::move(first);
}

Host::~Host() = default;

std::shared_ptr<State> Host::state() {
  auto& slot = slots_[worker_index() % slots_.size()];
  if (slot && slot->retire) slot.reset();  // calls still running keep the old one alive
  if (!slot) {
    std::string error;
    slot = State::create(prog_, error);
    if (!slot) log::error("lua_state_failed", {{"error", error}});
  }
  return slot;
}

std::size_t Host::memory_used() const {
  auto& slot = slots_[worker_index() % slots_.size()];
  return slot ? slot->used : 0;
}

std::shared_ptr<State> Host::state_for(Transaction& tx) {
  const std::string& key = prog_->options.instance;
  // A state retired at its memory cap is left by its sessions too (their tables go with it).
  if (auto t = tx.conn.state<SessionTables>(key); t && t->host == id_ && t->state && !t->state->retire)
    return t->state;
  auto st = state();
  if (!st) return st;
  auto tables = std::make_shared<SessionTables>();
  tables->state = st;
  tables->host = id_;
  tx.conn.plugin_state.insert_or_assign(key, std::move(tables));  // drops a previous config's tables
  return st;
}

void Host::end_transaction(Transaction& tx) {
  if (auto t = tx.conn.state<SessionTables>(prog_->options.instance); t && t->host == id_) t->drop_data();
}

Task<void> Host::end_session(Transaction& tx) {
  if (hooks_ & hook_bit(Hook::disconnect)) (void)co_await call(Hook::disconnect, tx);  // verdicts ignored
  auto it = tx.conn.plugin_state.find(prog_->options.instance);
  if (it != tx.conn.plugin_state.end()) tx.conn.plugin_state.erase(it);  // tx.session_data goes with it
}

Task<Verdict> Host::call(Hook hook, Transaction& tx, std::string_view arg) {
  std::shared_ptr<State> st = state_for(tx);
  auto tables = tx.conn.state<SessionTables>(prog_->options.instance);
  if (!st) {
    error_counter("state").inc();
    co_return prog_->options.on_error;
  }
  const unsigned bit = hook_bit(hook);
  for (std::size_t i = 0; i < prog_->scripts.size(); ++i) {
    if (!(st->hook_bits[i] & bit)) continue;
    Call c;
    c.serial = ++st->next_serial;
    c.tx = &tx;
    c.arg = arg;
    c.hook = hook;
    c.script = i;
    c.session = tables.get();
    st->active.push_back(&c);
    CallGuard guard{*st, c};
    lua_State* L = st->L;

    std::string message, where;
    const char* kind = nullptr;
    Verdict v;
    st->current = &c;
    lua_pushcfunction(L, prepare_call);
    lua_pushlightuserdata(L, &c);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
      message = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "cannot start the hook";
      lua_pop(L, 1);
      kind = "memory";
    } else if (c.missing) {
      continue;
    } else {
      lua_State* T = c.thread;
      int nres = 0;
      int status = lua_resume(T, nullptr, c.nargs, &nres);
      while (status == LUA_YIELD && (c.pending || c.dns)) {
        lua_pop(T, nres);
        st->current = nullptr;
        if (c.dns) {
          DnsRequest req = std::move(*c.dns);
          c.dns.reset();
          c.answer = co_await run_dns(prog_->options.resolver.get(), std::move(req));
          st->current = &c;
          status = lua_resume(T, nullptr, 0, &nres);
          continue;
        }
        StoreRequest req = std::move(*c.pending);
        c.pending.reset();
        if (prog_->options.store) {
          c.reply = co_await run_store(*prog_->options.store, std::move(req));
        } else {
          c.reply = StoreReply{};
          c.reply.error = "store not configured";
        }
        st->current = &c;
        status = lua_resume(T, nullptr, 0, &nres);
      }
      if (status == LUA_OK) {
        c.reusable = c.stop.empty() && !c.exceeded && lua_status(T) == LUA_OK;
        std::string err;
        if (!read_verdict(*st, T, nres, v, err)) {
          message = std::string(hook_name(hook)) + " " + err;
          where = prog_->scripts[i].path;
          kind = "result";
        }
      } else if (status == LUA_YIELD) {
        message = "attempt to yield from a hook (coroutine.yield outside a coroutine the script created)";
        kind = "runtime";
        where = innermost_line(T);
      } else {
        describe_error(T, message, where);
        kind = !c.stop.empty() ? "bound" : c.exceeded ? "instructions" : status == LUA_ERRMEM ? "memory" : "runtime";
      }
    }
    st->current = nullptr;
    if (kind) {
      if (where.empty()) where = prog_->scripts[i].path;
      error_counter(kind).inc();
      log::error("lua_error", {{"session", tx.conn.id},
                               {"script", prog_->scripts[i].path},
                               {"where", where},
                               {"hook", hook_name(hook)},
                               {"kind", kind},
                               {"error", message}});
      if (std::string_view(kind) == "memory") {
        lua_gc(L, LUA_GCCOLLECT);
        if (st->used > st->limit / 4 * 3) st->retire = true;  // rebuilt once its calls are done
      }
      co_return prog_->options.on_error;
    }
    if (v.stops()) co_return v;
  }
  co_return Verdict::next();
}

}  // namespace gw::lua
