// A moving deadline for one connection: when it passes, `on_expire` runs once (it cancels the
// socket, so the pending read or write ends with operation_aborted). Moving the deadline later does
// not touch any timer, so the per-command cost is a store.
//
// All the deadlines of one io_context share one timer (DeadlineService, an asio service destroyed
// with its context): it is armed for the earliest deadline known to it, and when it fires it expires
// what is due and re-arms for the earliest one left. A connection thus costs one entry in a vector,
// not a timer and a watchdog coroutine of its own (what idle connections cost, README "Performance").
// Like the io_context's other objects, a Deadline is used from the thread that runs its context
// (start, moves, stop); it may be constructed elsewhere.
#pragma once
#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/steady_timer.hpp>

namespace gw::net {

class DeadlineService;

class Deadline {
 public:
  using clock = std::chrono::steady_clock;
  explicit Deadline(boost::asio::any_io_executor ex);
  ~Deadline();
  Deadline(const Deadline&) = delete;
  Deadline& operator=(const Deadline&) = delete;

  // Registers with the context's service; `on_expire` must not destroy any Deadline.
  void start(std::function<void()> on_expire);
  void expires_after(clock::duration d);
  void never();
  bool expired() const { return expired_; }
  void clear_expired() { expired_ = false; }
  void stop();

 private:
  friend class DeadlineService;
  static constexpr std::size_t kNotRegistered = static_cast<std::size_t>(-1);
  boost::asio::any_io_executor ex_;
  DeadlineService* svc_ = nullptr;  // while registered
  std::size_t slot_ = kNotRegistered;
  clock::time_point deadline_ = clock::time_point::max();
  std::function<void()> on_expire_;
  bool expired_ = false;
};

class DeadlineService : public boost::asio::execution_context::service {
 public:
  static inline boost::asio::execution_context::id id;
  explicit DeadlineService(boost::asio::execution_context& ctx) : service(ctx) {}
  std::size_t size() const { return entries_.size(); }  // registered deadlines (tests)

 private:
  friend class Deadline;
  void add(Deadline* d, const boost::asio::any_io_executor& ex);
  void remove(Deadline* d);
  void arm(Deadline::clock::time_point t);  // the timer fires at t at the latest
  void fire();
  void shutdown() override;

  std::vector<Deadline*> entries_;
  std::vector<Deadline*> due_;  // scratch for fire()
  std::optional<boost::asio::steady_timer> timer_;
  Deadline::clock::time_point armed_ = Deadline::clock::time_point::max();
  bool shut_ = false;
};

}  // namespace gw::net
