#include "plugins/dnsbl/lookups.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "gateway/observe/log.hpp"

namespace gw::plugins::dnsbl {

namespace asio = boost::asio;

Batch::Batch(asio::any_io_executor ex, std::shared_ptr<const Settings> settings, std::string session, std::string what,
             std::string subject)
    : settings_(std::move(settings)), session_(std::move(session)), what_(std::move(what)),
      subject_(std::move(subject)), wake_(ex) {}

void Batch::add(const ListSpec& list, std::string query_name) {
  Item it{&list, std::move(query_name), {}};
  if (it.name.empty()) it.outcome.kind = Outcome::Kind::miss;
  items_.push_back(std::move(it));
}

void Batch::start(std::shared_ptr<dns::Resolver> resolver) {
  deadline_ = std::chrono::steady_clock::now() + settings_->timeout;
  for (std::size_t i = 0; i < items_.size(); ++i) {
    if (items_[i].outcome.kind != Outcome::Kind::pending) continue;
    if (!resolver) {
      fail(i, "temperror");
      continue;
    }
    ++pending_;
    dns::Answer hit;
    if (resolver->cached_answer(items_[i].name, dns::Type::A, hit)) {  // no coroutine for a cached answer
      complete(i, hit);
      continue;
    }
    asio::co_spawn(wake_.get_executor(), lookup(shared_from_this(), i, resolver), asio::detached);
  }
}

asio::awaitable<void> Batch::lookup(std::shared_ptr<Batch> self, std::size_t index,
                                    std::shared_ptr<dns::Resolver> resolver) {
  dns::Answer answer;
  try {
    answer = co_await resolver->query(self->items_[index].name, dns::Type::A);
  } catch (const std::exception&) {
    answer.status = dns::Status::temperror;
  }
  self->complete(index, answer);
}

void Batch::complete(std::size_t index, const dns::Answer& answer) {
  auto& it = items_[index];
  if (it.outcome.kind != Outcome::Kind::pending) return;  // answered after the deadline: too late
  it.outcome = classify(answer, it.list->codes);
  if (it.outcome.kind == Outcome::Kind::error) {
    fail(index, it.outcome.error);
  } else if (it.outcome.kind == Outcome::Kind::hit) {
    it.list->hits->inc();
    log::info("dnsbl_hit", {{"session", session_}, {what_, subject_}, {"zone", it.list->zone},
                            {"code", it.outcome.code}, {"weight", it.list->weight}});
  } else if (!it.outcome.list_error.empty()) {
    it.list->list_errors->inc();
    log::warn("dnsbl_list_error", {{"session", session_}, {"zone", it.list->zone}, {"code", it.outcome.list_error},
                                   {"note", "the list refused the query (127.255.255.x); not counted"}});
  }
  if (--pending_ == 0) wake_.cancel();
}

void Batch::fail(std::size_t index, const std::string& error) {
  auto& it = items_[index];
  it.outcome.kind = Outcome::Kind::error;
  it.outcome.error = error;
  it.list->errors->inc();
  log::warn("dnsbl_error", {{"session", session_}, {what_, subject_}, {"zone", it.list->zone}, {"error", error},
                            {"on_error", settings_->tempfail_on_error ? "tempfail" : "ignore"}});
}

asio::awaitable<void> Batch::wait() {
  while (pending_ > 0 && std::chrono::steady_clock::now() < deadline_) {
    wake_.expires_at(deadline_);
    co_await wake_.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  if (pending_ == 0) co_return;
  for (std::size_t i = 0; i < items_.size(); ++i)
    if (items_[i].outcome.kind == Outcome::Kind::pending) fail(i, "timeout");
  pending_ = 0;
}

}  // namespace gw::plugins::dnsbl
