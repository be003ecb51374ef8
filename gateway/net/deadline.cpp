#include "gateway/net/deadline.hpp"

#include <boost/asio/execution/context.hpp>
#include <boost/asio/query.hpp>

namespace gw::net {
namespace asio = boost::asio;

Deadline::Deadline(asio::any_io_executor ex) : ex_(std::move(ex)) {}
Deadline::~Deadline() { stop(); }

void Deadline::start(std::function<void()> on_expire) {
  on_expire_ = std::move(on_expire);
  if (svc_) return;
  svc_ = &asio::use_service<DeadlineService>(asio::query(ex_, asio::execution::context));
  svc_->add(this, ex_);
  if (deadline_ != clock::time_point::max()) svc_->arm(deadline_);
}

void Deadline::expires_after(clock::duration d) {
  deadline_ = clock::now() + d;
  expired_ = false;
  if (svc_) svc_->arm(deadline_);  // only touches the timer when this one is earlier than it
}

void Deadline::never() { deadline_ = clock::time_point::max(); }

void Deadline::stop() {
  on_expire_ = nullptr;
  if (svc_) svc_->remove(this);
  svc_ = nullptr;
}

void DeadlineService::add(Deadline* d, const asio::any_io_executor& ex) {
  if (!timer_ && !shut_) timer_.emplace(ex);
  d->slot_ = entries_.size();
  entries_.push_back(d);
}

void DeadlineService::remove(Deadline* d) {
  if (d->slot_ >= entries_.size() || entries_[d->slot_] != d) return;
  Deadline* last = entries_.back();
  entries_[d->slot_] = last;
  last->slot_ = d->slot_;
  entries_.pop_back();
  d->slot_ = Deadline::kNotRegistered;
  // The timer may stay armed for d's deadline: firing early costs one scan and re-arms. With no
  // deadline left it is cancelled, so that a context with nothing else to do can run out of work.
  if (entries_.empty() && timer_ && armed_ != Deadline::clock::time_point::max()) {
    armed_ = Deadline::clock::time_point::max();
    timer_->cancel();
  }
}

void DeadlineService::arm(Deadline::clock::time_point t) {
  if (t >= armed_ || !timer_) return;
  armed_ = t;
  timer_->expires_at(t);  // a wait already pending ends with operation_aborted and does nothing
  timer_->async_wait([this](boost::system::error_code ec) {
    if (!ec) fire();
  });
}

void DeadlineService::fire() {
  armed_ = Deadline::clock::time_point::max();
  const auto now = Deadline::clock::now();
  auto next = Deadline::clock::time_point::max();
  due_.clear();
  for (Deadline* d : entries_) {
    if (d->deadline_ <= now) due_.push_back(d);
    else if (d->deadline_ < next) next = d->deadline_;
  }
  // Expired ones are marked first and told after the scan: on_expire cancels a socket (its handlers
  // run later), it adds or removes no deadline while the vector is walked.
  for (Deadline* d : due_) {
    d->deadline_ = Deadline::clock::time_point::max();
    d->expired_ = true;
  }
  for (Deadline* d : due_)
    if (d->on_expire_) d->on_expire_();
  due_.clear();
  if (next != Deadline::clock::time_point::max()) arm(next);
}

void DeadlineService::shutdown() {
  // A Deadline that outlives its context (destroyed after it) then finds no service to leave.
  for (Deadline* d : entries_) {
    d->svc_ = nullptr;
    d->slot_ = Deadline::kNotRegistered;
  }
  entries_.clear();
  shut_ = true;
  timer_.reset();  // arm() does nothing from here
}

}  // namespace gw::net
