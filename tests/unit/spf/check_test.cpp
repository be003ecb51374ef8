// spf::check() with libspf2 on an in-memory resolver: results, limits and hostile records.
#include "plugins/spf/spf_check.hpp"

#include <map>
#include <random>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

namespace asio = boost::asio;
using namespace gw;

namespace {

class MapResolver : public dns::Resolver {
 public:
  std::map<std::pair<std::string, dns::Type>, std::vector<std::string>> data;
  int calls = 0;
  int delay_ms = 0;
  void txt(const std::string& n, const std::string& v) { data[{n, dns::Type::TXT}].push_back(v); }
  void a(const std::string& n, const std::string& v) { data[{n, dns::Type::A}].push_back(v); }
  void mx(const std::string& n, const std::string& v) { data[{n, dns::Type::MX}].push_back("10 " + v); }
  asio::awaitable<dns::Answer> query(std::string name, dns::Type type) override {
    ++calls;
    if (delay_ms) {
      asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::milliseconds(delay_ms));
      co_await t.async_wait(asio::use_awaitable);
    }
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    auto it = data.find({name, type});
    if (it != data.end()) co_return dns::Answer{dns::Status::ok, it->second, 300};
    for (auto& [k, v] : data)
      if (k.first == name) co_return dns::Answer{dns::Status::nodata, {}, 0};
    co_return dns::Answer{dns::Status::nxdomain, {}, 0};
  }
};

spf::Result run(MapResolver& r, const std::string& ip, const std::string& sender, const std::string& helo = "mx.example.org") {
  asio::io_context io;
  spf::Result out;
  spf::Request req{asio::ip::make_address(ip), sender, helo, "gw.test"};
  spf::Options opts;
  asio::co_spawn(io, [&]() -> asio::awaitable<void> { out = co_await spf::check(r, req, opts); }, asio::detached);
  io.run();
  return out;
}

}  // namespace

TEST(SpfCheck, BasicResults) {
  MapResolver r;
  r.txt("example.com", "v=spf1 ip4:192.0.2.0/24 a:mail.example.com ~all");
  r.a("mail.example.com", "198.51.100.7");
  EXPECT_EQ(run(r, "192.0.2.9", "a@example.com").result, "pass");
  EXPECT_EQ(run(r, "198.51.100.7", "a@example.com").result, "pass");
  EXPECT_EQ(run(r, "203.0.113.1", "a@example.com").result, "softfail");
  EXPECT_EQ(run(r, "203.0.113.1", "a@nothing.example").result, "none");
  auto h = run(r, "192.0.2.9", "", "example.com");
  EXPECT_EQ(h.result, "pass");
  EXPECT_EQ(h.identity, "helo");
  EXPECT_EQ(h.sender, "postmaster@example.com");
}

TEST(SpfCheck, FailCarriesExplanation) {
  MapResolver r;
  r.txt("example.com", "v=spf1 -all exp=why.example.com");
  r.txt("why.example.com", "%{i} is not one of %{d}'s hosts");
  auto f = run(r, "192.0.2.9", "a@example.com");
  EXPECT_EQ(f.result, "fail");
  EXPECT_EQ(f.explanation, "192.0.2.9 is not one of example.com's hosts");
  MapResolver d;
  d.txt("example.com", "v=spf1 -all");
  EXPECT_EQ(run(d, "192.0.2.9", "a@example.com").explanation, "192.0.2.9 is not allowed to send mail for example.com");
}

TEST(SpfCheck, TenLookupLimitCountsAcrossIncludes) {
  MapResolver r;
  // 4 includes, each with 2 a: lookups -> 4 + 8 = 12 DNS-querying terms
  r.txt("example.com", "v=spf1 include:i1.example.com include:i2.example.com include:i3.example.com include:i4.example.com -all");
  for (int i = 1; i <= 4; ++i)
    r.txt("i" + std::to_string(i) + ".example.com", "v=spf1 a:x.example.com a:y.example.com");
  r.a("x.example.com", "198.51.100.1");
  r.a("y.example.com", "198.51.100.2");
  auto res = run(r, "192.0.2.9", "a@example.com");
  EXPECT_EQ(res.result, "permerror");
  EXPECT_NE(res.problem.find("10"), std::string::npos);
}

TEST(SpfCheck, VoidLookupLimit) {
  MapResolver r;
  r.txt("example.com", "v=spf1 a:n1.example.com a:n2.example.com a:n3.example.com ?all");
  r.txt("two.example.com", "v=spf1 a:n1.example.com a:n2.example.com ?all");
  EXPECT_EQ(run(r, "192.0.2.9", "a@example.com").result, "permerror");
  EXPECT_EQ(run(r, "192.0.2.9", "a@two.example.com").result, "neutral");
}

TEST(SpfCheck, IncludeLoopAndSelfRedirectEndInPermerror) {
  MapResolver r;
  r.txt("a.example.com", "v=spf1 include:b.example.com -all");
  r.txt("b.example.com", "v=spf1 include:a.example.com -all");
  r.txt("self.example.com", "v=spf1 redirect=self.example.com");
  EXPECT_EQ(run(r, "192.0.2.9", "x@a.example.com").result, "permerror");
  EXPECT_EQ(run(r, "192.0.2.9", "x@self.example.com").result, "permerror");
}

TEST(SpfCheck, MxWithMoreThanTenNamesIsPermerror) {
  MapResolver r;
  r.txt("example.com", "v=spf1 mx -all");
  for (int i = 0; i < 11; ++i) {
    r.mx("example.com", "mx" + std::to_string(i) + ".example.com");
    r.a("mx" + std::to_string(i) + ".example.com", "198.51.100." + std::to_string(i + 1));
  }
  EXPECT_EQ(run(r, "192.0.2.9", "a@example.com").result, "permerror");
}

TEST(SpfCheck, HostileRecordsNeverReachLibspf2Unchecked) {
  MapResolver r;
  std::string huge = "v=spf1";
  while (huge.size() < 3000) huge += " ip4:192.0.2.1";
  r.txt("huge.example.com", huge);
  r.txt("longterm.example.com", "v=spf1 a:" + std::string(300, 'a') + ".example.com -all");
  r.txt("macros.example.com", "v=spf1 exists:%{l}%{l}%{l}%{l}%{l}%{l}%{l}%{l}%{l}%{l}%{l}%{l}%{l}%{l}%{l}%{l}.example.com -all");
  r.txt("binary.example.com", std::string("v=spf1 a:\x01\x02.example.com -all"));
  EXPECT_EQ(run(r, "192.0.2.9", "a@huge.example.com").result, "permerror");
  // a 300-octet label is not a domain name: libspf2 gets an alias, the lookup is void, -all applies
  EXPECT_EQ(run(r, "192.0.2.9", "a@longterm.example.com").result, "fail");
  EXPECT_EQ(run(r, "192.0.2.9", std::string(64, 'x') + "@macros.example.com").result, "fail");
  EXPECT_EQ(run(r, "192.0.2.9", "a@binary.example.com").result, "permerror");
  EXPECT_EQ(run(r, "192.0.2.9", std::string(65, 'x') + "@macros.example.com").result, "none");  // local part > 64
}

TEST(SpfCheck, RandomRecordsDoNotCrash) {
  std::mt19937 rng(7);
  const std::vector<std::string> parts = {"a", "mx", "ptr", "ip4:192.0.2.0/24", "ip6:2001:db8::/32", "include:inc.example.com",
                                          "exists:%{i}.e.example.com", "redirect=red.example.com", "exp=x.example.com",
                                          "-all", "~all", "?all", "a/0", "mx//0", "a:%{d2}", "%{", "a:", "/33", "=",
                                          "unknown=%{l}", "ip4:1.2.3.4/0", "a:%{p}.example.com", "ptr:%{o}"};
  MapResolver r;
  r.txt("inc.example.com", "v=spf1 a -all");
  r.txt("red.example.com", "v=spf1 mx ?all");
  r.mx("red.example.com", "mail.example.com");
  r.a("mail.example.com", "192.0.2.5");
  for (int i = 0; i < 300; ++i) {
    std::string rec = "v=spf1";
    int n = rng() % 8;
    for (int k = 0; k < n; ++k) rec += " " + parts[rng() % parts.size()];
    r.data[{"fuzz.example.com", dns::Type::TXT}] = {rec};
    auto res = run(r, i % 2 ? "192.0.2.5" : "2001:db8::5", "u@fuzz.example.com");
    EXPECT_FALSE(res.result.empty()) << rec;
    EXPECT_LE(res.rounds, 40) << rec;
  }
}

TEST(SpfCheck, MxTargetsAreResolvedConcurrently) {
  MapResolver r;
  r.delay_ms = 60;
  r.txt("example.com", "v=spf1 mx -all");
  for (int i = 0; i < 8; ++i) {
    r.mx("example.com", "mx" + std::to_string(i) + ".example.com");
    r.a("mx" + std::to_string(i) + ".example.com", "198.51.100." + std::to_string(i + 1));
  }
  auto t0 = std::chrono::steady_clock::now();
  auto res = run(r, "198.51.100.8", "a@example.com");
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(res.result, "pass");
  EXPECT_EQ(r.calls, 10);  // TXT, MX, 8 A
  EXPECT_LT(ms, 400);      // one after the other it would take 10 x 60 ms
}
