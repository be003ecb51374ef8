// Lookups of several lists started together and answered in the background: start() spawns one
// coroutine per list on the session's executor and returns at once; wait() suspends the session
// until every answer is in or the batch's deadline (start + dns.timeout) passes, whichever is first.
// A lookup still unanswered at the deadline is an error ("timeout"); a late answer is dropped.
//
// Everything runs on the session's single-threaded executor, so no lock is needed. The spawned
// coroutines share ownership of the batch: it outlives a session that ends before its answers.
#pragma once
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "gateway/dns/resolver.hpp"
#include "plugins/dnsbl/settings.hpp"

namespace gw::plugins::dnsbl {

class Batch : public std::enable_shared_from_this<Batch> {
 public:
  struct Item {
    const ListSpec* list;
    std::string name;  // the query name; empty = not queried (e.g. an IPv6 client and ipv6 = false)
    Outcome outcome;
  };

  // `settings` keeps the ListSpecs alive; `what` names the subject in log lines (client or domain).
  Batch(boost::asio::any_io_executor ex, std::shared_ptr<const Settings> settings, std::string session,
        std::string what, std::string subject);

  void add(const ListSpec& list, std::string query_name);
  // Spawns the lookups; the deadline is now + settings.timeout.
  void start(std::shared_ptr<dns::Resolver> resolver);
  // Returns when no lookup is pending; marks those unanswered at the deadline as timed out.
  boost::asio::awaitable<void> wait();
  bool done() const { return pending_ == 0; }

  const std::vector<Item>& items() const { return items_; }

 private:
  static boost::asio::awaitable<void> lookup(std::shared_ptr<Batch> self, std::size_t index,
                                             std::shared_ptr<dns::Resolver> resolver);
  void complete(std::size_t index, const dns::Answer& answer);
  void fail(std::size_t index, const std::string& error);

  std::shared_ptr<const Settings> settings_;
  std::string session_;
  std::string what_;     // "client" | "domain"
  std::string subject_;  // the client IP or the sender domain
  std::vector<Item> items_;
  std::size_t pending_ = 0;
  std::chrono::steady_clock::time_point deadline_{};
  boost::asio::steady_timer wake_;
};

}  // namespace gw::plugins::dnsbl
