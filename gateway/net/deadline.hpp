// A moving deadline for one connection: when it passes, `on_expire` runs once (it cancels the
// socket, so the pending read or write ends with operation_aborted). Moving the deadline later does
// not touch the timer: the watchdog re-arms itself, so the per-command cost is a store.
#pragma once
#include <chrono>
#include <functional>
#include <memory>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

namespace gw::net {

class Deadline {
 public:
  using clock = std::chrono::steady_clock;
  explicit Deadline(boost::asio::any_io_executor ex);
  ~Deadline();
  Deadline(const Deadline&) = delete;
  Deadline& operator=(const Deadline&) = delete;

  void start(std::function<void()> on_expire);
  void expires_after(clock::duration d);
  void never();
  bool expired() const;
  void clear_expired();
  void stop();

 struct State;  // shared with the watchdog coroutine

 private:
  std::shared_ptr<State> state_;
};

}  // namespace gw::net
