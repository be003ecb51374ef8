// dnsbl's background lookups on a fake resolver: start() never waits, wait() ends when the last
// answer comes or at the deadline (start + dns.timeout), and an answer after the deadline is dropped.
#include "plugins/dnsbl/lookups.hpp"

#include <gtest/gtest.h>

#include <map>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

using namespace gw::plugins::dnsbl;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace {

// Answers each name after its delay; a name it does not know gets NXDOMAIN at once.
class FakeResolver : public gw::dns::Resolver {
 public:
  struct Entry {
    std::chrono::milliseconds delay;
    std::vector<std::string> a;
  };
  std::map<std::string, Entry> zone;
  int queries = 0;

  asio::awaitable<gw::dns::Answer> query(std::string name, gw::dns::Type) override {
    ++queries;
    gw::dns::Answer ans;
    auto it = zone.find(name);
    if (it == zone.end()) {
      ans.status = gw::dns::Status::nxdomain;
      co_return ans;
    }
    asio::steady_timer t(co_await asio::this_coro::executor, it->second.delay);
    co_await t.async_wait(asio::use_awaitable);
    ans.status = gw::dns::Status::ok;
    ans.records = it->second.a;
    co_return ans;
  }
};

std::shared_ptr<Settings> settings(std::chrono::milliseconds timeout, int lists) {
  auto s = std::make_shared<Settings>();
  s->timeout = timeout;
  auto& m = gw::observe::Metrics::instance();
  for (int i = 0; i < lists; ++i) {
    ListSpec l;
    l.zone = "l" + std::to_string(i) + ".test";
    l.hits = &m.counter("unit_dnsbl_hits_total", "test", "zone=\"" + l.zone + "\"");
    l.errors = &m.counter("unit_dnsbl_errors_total", "test", "zone=\"" + l.zone + "\"");
    l.list_errors = &m.counter("unit_dnsbl_list_errors_total", "test", "zone=\"" + l.zone + "\"");
    s->lists.push_back(l);
  }
  return s;
}

template <typename T>
T run(asio::io_context& io, asio::awaitable<T> a) {
  auto f = asio::co_spawn(io, std::move(a), asio::use_future);
  io.restart();
  io.run();
  return f.get();
}

}  // namespace

TEST(DnsblLookups, AllAtOnceInTheBackgroundThenWait) {
  asio::io_context io;
  auto s = settings(2s, 3);
  auto r = std::make_shared<FakeResolver>();
  r->zone["2.0.2.0.192.l0.test"] = {100ms, {"127.0.0.2"}};
  r->zone["2.0.2.0.192.l1.test"] = {150ms, {"127.255.255.254"}};
  auto b = std::make_shared<Batch>(io.get_executor(), s, "t", "client", "192.0.2.2");
  for (auto& l : s->lists) b->add(l, "2.0.2.0.192." + l.zone);
  b->start(r);
  EXPECT_FALSE(b->done());  // start() returned before any answer
  auto t0 = std::chrono::steady_clock::now();
  run(io, [](std::shared_ptr<Batch> b) -> asio::awaitable<int> {
    co_await b->wait();
    co_return 0;
  }(b));
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_TRUE(b->done());
  EXPECT_EQ(r->queries, 3);
  // the three lookups ran at once: the wait is the slowest one, not the sum
  EXPECT_LT(took, 1s);
  EXPECT_GE(took, 140ms);
  EXPECT_EQ(b->items()[0].outcome.kind, Outcome::Kind::hit);
  EXPECT_EQ(b->items()[0].outcome.code, "127.0.0.2");
  EXPECT_EQ(b->items()[1].outcome.kind, Outcome::Kind::miss);
  EXPECT_EQ(b->items()[1].outcome.list_error, "127.255.255.254");
  EXPECT_EQ(b->items()[2].outcome.kind, Outcome::Kind::miss);
}

TEST(DnsblLookups, DeadlineMarksTheSlowOnesAndDropsLateAnswers) {
  asio::io_context io;
  auto s = settings(300ms, 2);
  auto r = std::make_shared<FakeResolver>();
  r->zone["q.l0.test"] = {10ms, {"127.0.0.2"}};
  r->zone["q.l1.test"] = {2000ms, {"127.0.0.2"}};
  auto b = std::make_shared<Batch>(io.get_executor(), s, "t", "client", "x");
  b->add(s->lists[0], "q.l0.test");
  b->add(s->lists[1], "q.l1.test");
  b->start(r);
  auto t0 = std::chrono::steady_clock::now();
  auto took = run(io, [](std::shared_ptr<Batch> b, std::chrono::steady_clock::time_point t0)
                          -> asio::awaitable<std::chrono::steady_clock::duration> {
    co_await b->wait();
    co_return std::chrono::steady_clock::now() - t0;
  }(b, t0));
  EXPECT_GE(took, 290ms);
  EXPECT_LT(took, 1800ms);  // never the slow answer's 2 s
  EXPECT_EQ(b->items()[0].outcome.kind, Outcome::Kind::hit);
  EXPECT_EQ(b->items()[1].outcome.kind, Outcome::Kind::error);
  EXPECT_EQ(b->items()[1].outcome.error, "timeout");
  // run() returned once everything, the late lookup included, finished: it did not change the result
  EXPECT_EQ(b->items()[1].outcome.kind, Outcome::Kind::error);
  EXPECT_EQ(s->lists[1].hits->value.load(), 0u);
}

TEST(DnsblLookups, NotQueriedAndNoResolver) {
  asio::io_context io;
  auto s = settings(1s, 2);
  auto b = std::make_shared<Batch>(io.get_executor(), s, "t", "client", "x");
  b->add(s->lists[0], "");  // e.g. an IPv6 client on an ipv6 = false list
  b->add(s->lists[1], "q.l1.test");
  b->start(nullptr);
  EXPECT_TRUE(b->done());
  EXPECT_EQ(b->items()[0].outcome.kind, Outcome::Kind::miss);
  EXPECT_EQ(b->items()[1].outcome.kind, Outcome::Kind::error);
}
