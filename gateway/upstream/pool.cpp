#include "gateway/upstream/pool.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>

#include <sys/socket.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/execution/context.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/query.hpp>

#include "gateway/net/deadline.hpp"
#include "gateway/net/stream.hpp"
#include "gateway/observe/log.hpp"
#include "gateway/observe/metrics.hpp"

namespace gw::upstream {

namespace asio = boost::asio;

namespace {
// Pooled + warming connections of the whole process: what upstream.pool_size bounds.
std::atomic<int> g_slots{0};

struct PoolMetrics {
  observe::Gauge& slots;
  observe::Counter& hit;
  observe::Counter& miss;
  observe::Counter& discarded;
  static PoolMetrics& get() {
    static PoolMetrics m{
        observe::Metrics::instance().gauge("smtpgw_upstream_pool_connections",
                                           "Upstream connections in the pool or being opened for it"),
        observe::Metrics::instance().counter("smtpgw_upstream_pool_takes_total", "MAIL commands by pool outcome", R"(result="hit")"),
        observe::Metrics::instance().counter("smtpgw_upstream_pool_takes_total", "MAIL commands by pool outcome", R"(result="miss")"),
        observe::Metrics::instance().counter("smtpgw_upstream_pool_discarded_total",
                                             "Pooled connections found closed, unread bytes, stale or not preferred")};
    return m;
  }
};

bool reserve_slot(unsigned limit) {
  int n = g_slots.load();
  while (n < static_cast<int>(limit))
    if (g_slots.compare_exchange_weak(n, n + 1)) {
      PoolMetrics::get().slots.add(1);
      return true;
    }
  return false;
}
void release_slot() {
  g_slots.fetch_sub(1);
  PoolMetrics::get().slots.add(-1);
}

// Usable = still open and silent: no bytes buffered or waiting (a 421, a stray reply) and no EOF.
bool usable(Pooled& p) {
  if (!p.stream || !p.stream->pending().empty()) return false;
  if (std::chrono::steady_clock::now() - p.since >= p.idle_timeout) return false;
  char c;
  ssize_t n = ::recv(p.stream->socket().native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n >= 0) return false;  // 0 = the upstream closed it; > 0 = unread bytes
  return errno == EAGAIN || errno == EWOULDBLOCK;
}

// Best effort QUIT without waiting for the reply (the pooled connection holds no transaction).
void close_with_quit(Pooled& p) {
  if (!p.stream) return;
  if (!p.stream->is_tls())
    (void)::send(p.stream->socket().native_handle(), "QUIT\r\n", 6, MSG_DONTWAIT | MSG_NOSIGNAL);
  if (p.deadline) p.deadline->stop();
  p.stream->close();
  p.stream.reset();
  p.deadline.reset();
}
}  // namespace

Pool::Pool(asio::execution_context& ctx) : asio::execution_context::service(ctx) {}
Pool::~Pool() = default;

Pool& Pool::of(const asio::any_io_executor& ex) {
  return asio::use_service<Pool>(asio::query(ex, asio::execution::context));
}

int Pool::process_slots() { return g_slots.load(); }

// Set once at config load (it was built twice per message: in take and in detach).
const std::string& Pool::key_of(const config::Config& cfg) {
  if (!cfg.upstream.identity.empty()) return cfg.upstream.identity;
  thread_local std::string built;  // a Config made in code rather than loaded (unit tests)
  built = config::upstream_identity(cfg.upstream, cfg.server.hostname);
  return built;
}

std::optional<Pooled> Pool::take(const config::Config& cfg) {
  while (!entries_.empty()) {
    Pooled p = std::move(entries_.back());
    entries_.pop_back();
    release_slot();
    if (p.key == key_of(cfg) && usable(p) && server_still_preferred(cfg, p.server)) {
      PoolMetrics::get().hit.inc();
      return p;
    }
    PoolMetrics::get().discarded.inc();
    log::debug("upstream_pool_discard", {{"server", p.server}});
    close_with_quit(p);
  }
  return std::nullopt;
}

Task<std::optional<Pooled>> Pool::take_or_wait(const config::Config& cfg) {
  for (;;) {
    if (auto p = take(cfg)) co_return p;
    if (warming_ == 0 || !warmed_ || shut_) {
      PoolMetrics::get().miss.inc();
      co_return std::nullopt;
    }
    co_await warmed_->async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

void Pool::warm_finished() {
  --warming_;
  if (warmed_) warmed_->cancel();
}

void Pool::put(Pooled p, const config::Config& cfg) {
  if (shut_ || !usable(p)) {
    close_with_quit(p);
    return;
  }
  if (reserve_slot(cfg.upstream.pool_size)) {
    keep(std::move(p));
    return;
  }
  // The pool is full while transactions keep ending: keep this one too, beyond pool_size, for a
  // short while. Under load the next MAIL comes within milliseconds and takes it instead of opening
  // a new connection (with 20 sessions and pool_size 8, 43% of messages opened one and another was
  // closed with QUIT at the same time). Only a finished transaction adds one, so clients idling
  // after EHLO still cost the upstream at most pool_size connections (docs/upstream-pool.md).
  if (cfg.upstream.pool_size > 0 && reserve_slot(cfg.upstream.pool_size * kSurgeFactor)) {
    p.idle_timeout = std::min<std::chrono::steady_clock::duration>(p.idle_timeout, kSurgeIdle);
    keep(std::move(p));
    return;
  }
  close_with_quit(p);
}

void Pool::keep(Pooled p) {
  if (shut_) {
    close_with_quit(p);
    release_slot();
    return;
  }
  if (!timer_) timer_.emplace(p.stream->socket().get_executor());
  p.since = std::chrono::steady_clock::now();
  log::debug("upstream_pool_keep", {{"server", p.server}, {"idle", entries_.size() + 1}});
  entries_.push_back(std::move(p));
  arm_sweep();
}

void Pool::arm_sweep() {
  if (entries_.empty() || !timer_) return;
  auto next = std::chrono::steady_clock::time_point::max();
  for (auto& e : entries_) next = std::min(next, e.since + e.idle_timeout);
  if (timer_armed_ && next >= armed_at_) return;
  // Armed, or re-armed earlier (a connection kept beyond pool_size expires before the others): the
  // wait being replaced ends with operation_aborted and is told apart by its generation.
  timer_armed_ = true;
  armed_at_ = next;
  const unsigned gen = ++sweep_gen_;
  timer_->expires_at(next);
  timer_->async_wait([this, gen](boost::system::error_code ec) {
    if (gen != sweep_gen_) return;
    timer_armed_ = false;
    if (ec || shut_) return;
    sweep();
  });
}

void Pool::sweep() {
  const auto now = std::chrono::steady_clock::now();
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (now - it->since >= it->idle_timeout) {
      close_with_quit(*it);
      release_slot();
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
  arm_sweep();
}

void Pool::shutdown() {
  shut_ = true;
  if (timer_) timer_->cancel();
  for (auto& e : entries_) {
    close_with_quit(e);
    release_slot();
  }
  entries_.clear();
  timer_.reset();
  if (warmed_) warmed_->cancel();
}

void Pool::warm(asio::any_io_executor ex, std::shared_ptr<const config::Config> cfg,
                std::shared_ptr<asio::ssl::context> tls) {
  if (!cfg || cfg->upstream.pool_size == 0) return;
  if (!reserve_slot(cfg->upstream.pool_size)) return;
  Pool& pool = of(ex);
  if (!pool.warmed_) {
    pool.warmed_.emplace(ex);
    pool.warmed_->expires_at(std::chrono::steady_clock::time_point::max());
  }
  ++pool.warming_;
  asio::co_spawn(ex, [ex, cfg, tls]() -> asio::awaitable<void> {
    UpstreamClient client(ex, *cfg, tls.get());
    const Connection anonymous;  // a named local: GCC 12 mishandles temporaries inside co_await
    Reply r = co_await client.open_fresh(anonymous, false);
    std::optional<Pooled> p;
    if (r.code == 250) p = client.detach();
    Pool& pool = Pool::of(ex);
    if (p) pool.keep(std::move(*p));
    else release_slot();
    pool.warm_finished();
  }, asio::detached);
}

}  // namespace gw::upstream
