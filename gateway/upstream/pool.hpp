// A small pool of ready upstream connections (greeted and EHLO'd), so that a client that has not
// sent MAIL holds no upstream connection of its own while its first MAIL still skips the connect,
// greeting and EHLO round trips (README, "Upstream connections").
//
// - One pool per io_context (an asio service: destroyed with its context, used by that context's one
//   thread only); the number of pooled and warming connections is bounded per process by
//   upstream.pool_size (0 = no pool: each transaction connects at MAIL and closes at its end).
// - A connection is checked before use: one the upstream closed, or that has unread bytes, is discarded.
// - A connection goes back to the pool when a transaction ends (after the final reply to the message,
//   or after RSET), never while a transaction is open, never once it carried XCLIENT (the upstream
//   keeps XCLIENT attributes until the session ends, so it is closed with QUIT instead).
// - A pooled connection idle for upstream.pool_idle_timeout (60s) is closed with QUIT.
// - A connection a transaction returns while the pool is full is kept for kSurgeIdle at most, up to
//   kSurgeFactor x pool_size in all: the next MAIL under load takes it instead of connecting anew.
#pragma once
#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "gateway/config/config.hpp"
#include "gateway/upstream/upstream_client.hpp"

namespace gw::upstream {

// One ready connection: the stream and its watchdog, where it goes and what it offered.
struct Pooled {
  std::unique_ptr<net::Stream> stream;
  std::unique_ptr<net::Deadline> deadline;
  std::string server;
  Capabilities caps;
  std::string key;  // the configuration it was opened under (servers, helo, tls)
  std::chrono::steady_clock::time_point since;
  std::chrono::steady_clock::duration idle_timeout{};
};

class Pool : public boost::asio::execution_context::service {
 public:
  static inline boost::asio::execution_context::id id;
  static constexpr unsigned kSurgeFactor = 4;
  static constexpr std::chrono::seconds kSurgeIdle{2};
  explicit Pool(boost::asio::execution_context& ctx);
  ~Pool() override;

  // The pool of the io_context that runs `ex`.
  static Pool& of(const boost::asio::any_io_executor& ex);

  // A checked, ready connection opened under the same configuration, or none.
  std::optional<Pooled> take(const config::Config& cfg);
  // take(), but when the pool is empty while a connection for it is still being opened (a client's
  // EHLO warmed it, its MAIL came first), waits for that one instead of opening another.
  Task<std::optional<Pooled>> take_or_wait(const config::Config& cfg);
  // Keeps `p` when the process-wide bound allows; else closes it with QUIT.
  void put(Pooled p, const config::Config& cfg);
  // Opens one connection into the pool in the background when pooled + warming < pool_size.
  static void warm(boost::asio::any_io_executor ex, std::shared_ptr<const config::Config> cfg,
                   std::shared_ptr<boost::asio::ssl::context> tls);

  static const std::string& key_of(const config::Config& cfg);
  std::size_t idle() const { return entries_.size(); }
  static int process_slots();  // pooled + warming, all threads

 private:
  void shutdown() override;
  void keep(Pooled p);  // a slot is already reserved for it
  void warm_finished();
  void arm_sweep();
  void sweep();

  std::deque<Pooled> entries_;  // most recently returned at the back (used first: LIFO)
  std::optional<boost::asio::steady_timer> timer_;
  std::optional<boost::asio::steady_timer> warmed_;  // never expires: cancel() wakes take_or_wait
  int warming_ = 0;
  bool timer_armed_ = false;
  std::chrono::steady_clock::time_point armed_at_{};
  unsigned sweep_gen_ = 0;
  bool shut_ = false;
};

}  // namespace gw::upstream
