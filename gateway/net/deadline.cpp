#include "gateway/net/deadline.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace gw::net {

struct Deadline::State {
  explicit State(boost::asio::any_io_executor ex) : timer(ex) {}
  boost::asio::steady_timer timer;
  clock::time_point deadline = clock::time_point::max();
  std::function<void()> on_expire;
  bool expired = false;
  bool stopped = false;
};

namespace {
boost::asio::awaitable<void> watch(std::shared_ptr<Deadline::State> s);
}

Deadline::Deadline(boost::asio::any_io_executor ex) : state_(std::make_shared<State>(ex)) {}
Deadline::~Deadline() { stop(); }

void Deadline::start(std::function<void()> on_expire) {
  state_->on_expire = std::move(on_expire);
  state_->timer.expires_at(clock::time_point::max());
  boost::asio::co_spawn(state_->timer.get_executor(), watch(state_), boost::asio::detached);
}

void Deadline::expires_after(clock::duration d) {
  auto t = clock::now() + d;
  state_->deadline = t;
  state_->expired = false;
  if (t < state_->timer.expiry()) state_->timer.expires_at(t);  // wakes the watchdog to re-arm earlier
}

void Deadline::never() { state_->deadline = clock::time_point::max(); }
bool Deadline::expired() const { return state_->expired; }
void Deadline::clear_expired() { state_->expired = false; }

void Deadline::stop() {
  if (!state_ || state_->stopped) return;
  state_->stopped = true;
  state_->on_expire = nullptr;
  state_->timer.cancel();
}

namespace {
boost::asio::awaitable<void> watch(std::shared_ptr<Deadline::State> s) {
  while (!s->stopped) {
    co_await s->timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    if (s->stopped) break;
    auto now = Deadline::clock::now();
    if (s->deadline <= now) {
      s->deadline = Deadline::clock::time_point::max();
      s->expired = true;
      s->timer.expires_at(Deadline::clock::time_point::max());
      if (s->on_expire) s->on_expire();
    } else {
      s->timer.expires_at(s->deadline);
    }
  }
}
}  // namespace

}  // namespace gw::net
