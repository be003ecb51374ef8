// spf::check() with cache_results: a result is taken from the thread's cache while the answers it
// read are fresh, never past the shortest TTL, never for a temperror or a fail with its own exp=.
#include "plugins/spf/result_cache.hpp"

#include <map>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

namespace asio = boost::asio;
using namespace gw;

namespace {

// TXT answers by name with a chosen TTL; anything else is NXDOMAIN (TTL 300), or temperror when set.
class TtlResolver : public dns::Resolver {
 public:
  std::map<std::string, std::string> txt;
  std::uint32_t ttl = 300;
  bool down = false;
  int calls = 0;
  asio::awaitable<dns::Answer> query(std::string name, dns::Type type) override {
    ++calls;
    if (down) co_return dns::Answer{dns::Status::temperror, {}, 0};
    auto it = txt.find(name);
    if (type == dns::Type::TXT && it != txt.end()) co_return dns::Answer{dns::Status::ok, {it->second}, ttl};
    co_return dns::Answer{dns::Status::nxdomain, {}, 300};
  }
};

spf::Result run(TtlResolver& r, const std::string& ip, const std::string& sender, bool cache = true) {
  asio::io_context io;
  spf::Result out;
  spf::Request req{asio::ip::make_address(ip), sender, "mx.example.org", "gw.test"};
  spf::Options opts;
  opts.cache_results = cache;
  asio::co_spawn(io, [&]() -> asio::awaitable<void> { out = co_await spf::check(r, req, opts); }, asio::detached);
  io.run();
  return out;
}

}  // namespace

TEST(SpfResultCache, SameInputsAreAnsweredFromTheCache) {
  TtlResolver r;
  r.txt["cache1.example"] = "v=spf1 ip4:192.0.2.0/24 -all";
  auto first = run(r, "192.0.2.9", "a@cache1.example");
  EXPECT_EQ(first.result, "pass");
  EXPECT_GT(first.rounds, 0);
  const int calls = r.calls;
  r.txt["cache1.example"] = "v=spf1 -all";  // the DNS changes, but the first answer's TTL (300 s) holds
  auto second = run(r, "192.0.2.9", "a@cache1.example");
  EXPECT_EQ(second.result, "pass");
  EXPECT_EQ(second.rounds, 0);
  EXPECT_EQ(r.calls, calls);  // no resolver call at all
  // other inputs are checked afresh: another client, another sender, or the cache turned off
  EXPECT_EQ(run(r, "192.0.2.10", "a@cache1.example").result, "fail");
  EXPECT_EQ(run(r, "192.0.2.9", "b@cache1.example").result, "fail");
  EXPECT_EQ(run(r, "192.0.2.9", "a@cache1.example", false).result, "fail");
}

TEST(SpfResultCache, NeverPastTheShortestTtl) {
  TtlResolver r;
  r.ttl = 2;
  r.txt["cache2.example"] = "v=spf1 ip4:192.0.2.0/24 -all";
  EXPECT_EQ(run(r, "192.0.2.9", "a@cache2.example").result, "pass");
  r.txt["cache2.example"] = "v=spf1 -all";
  EXPECT_EQ(run(r, "192.0.2.9", "a@cache2.example").result, "pass");  // within the 2 s
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  EXPECT_EQ(run(r, "192.0.2.9", "a@cache2.example").result, "fail");
  r.ttl = 0;  // an answer with TTL 0 keeps no result
  r.txt["cache3.example"] = "v=spf1 ip4:192.0.2.0/24 -all";
  EXPECT_EQ(run(r, "192.0.2.9", "a@cache3.example").result, "pass");
  r.txt["cache3.example"] = "v=spf1 -all";
  EXPECT_EQ(run(r, "192.0.2.9", "a@cache3.example").result, "fail");
}

TEST(SpfResultCache, TemperrorAndOwnExplanationsAreNotKept) {
  TtlResolver r;
  r.down = true;
  EXPECT_EQ(run(r, "192.0.2.9", "a@cache4.example").result, "temperror");
  r.down = false;
  r.txt["cache4.example"] = "v=spf1 ip4:192.0.2.0/24 -all";
  EXPECT_EQ(run(r, "192.0.2.9", "a@cache4.example").result, "pass");
  r.txt["cache5.example"] = "v=spf1 -all exp=why.cache5.example";
  r.txt["why.cache5.example"] = "first text";
  EXPECT_EQ(run(r, "192.0.2.9", "a@cache5.example").explanation, "first text");
  r.txt["why.cache5.example"] = "second text";
  EXPECT_EQ(run(r, "192.0.2.9", "a@cache5.example").explanation, "second text");
}

TEST(SpfResultCache, Bounded) {
  spf::ResultCache c;
  spf::Result res;
  res.result = "pass";
  for (std::size_t i = 0; i < spf::ResultCache::kMaxEntries + 10; ++i) c.put("k" + std::to_string(i), res, std::chrono::seconds(30));
  EXPECT_LE(c.size(), spf::ResultCache::kMaxEntries);
  c.put("late", res, std::chrono::seconds(3600));  // capped at kMaxAge, and kept
  ASSERT_NE(c.find("late"), nullptr);
  EXPECT_EQ(c.find("late")->result, "pass");
  EXPECT_EQ(c.find("missing"), nullptr);
}
