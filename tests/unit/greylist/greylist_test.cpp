#include <gtest/gtest.h>

#include <thread>

#include "tests/unit/store/plugin_test_util.hpp"

using namespace gw;
using namespace std::chrono_literals;
using gw::testing::PluginHarness;
using gw::testing::run_on;
using gw::testing::tx_from;

namespace {

const char* kConf = "[plugins.greylist]\ndelay = \"300ms\"\nexpire = \"5s\"\nauto_whitelist_after = 0\n";

TEST(GreylistPlugin, Ipv6ClientsOfOneSlash64ShareTriplets) {
  PluginHarness h("greylist", kConf);
  boost::asio::io_context io;
  auto a = tx_from("2001:db8:5:6::1", "alice@sender.test");
  auto b = tx_from("2001:db8:5:6:aaaa::99", "alice@sender.test");
  auto other = tx_from("2001:db8:5:7::1", "alice@sender.test");
  auto v = run_on(io, h.plugin->on_rcpt(a, "bob@example.test"));
  EXPECT_EQ(v.kind, Verdict::Kind::tempfail);
  EXPECT_EQ(v.code, 451);
  EXPECT_EQ(v.enhanced, "4.7.1");
  std::this_thread::sleep_for(350ms);
  // another address of the same /64 retries: the same triplet
  EXPECT_EQ(run_on(io, h.plugin->on_rcpt(b, "bob@example.test")).kind, Verdict::Kind::proceed);
  EXPECT_EQ(run_on(io, h.plugin->on_rcpt(a, "bob@example.test")).kind, Verdict::Kind::proceed);
  // the neighbouring /64 is a new client network
  EXPECT_EQ(run_on(io, h.plugin->on_rcpt(other, "bob@example.test")).kind, Verdict::Kind::tempfail);
}

TEST(GreylistPlugin, Ipv4Slash24AndSrs) {
  PluginHarness h("greylist", kConf);
  boost::asio::io_context io;
  auto a = tx_from("198.51.100.10", "SRS0=h1=T1=orig.test=alice@fwd.test");
  auto b = tx_from("198.51.100.200", "SRS1=xx=fwd.test==h2=T2=orig.test=Alice+x@fwd2.test");
  EXPECT_EQ(run_on(io, h.plugin->on_rcpt(a, "r@example.test")).kind, Verdict::Kind::tempfail);
  std::this_thread::sleep_for(350ms);
  EXPECT_EQ(run_on(io, h.plugin->on_rcpt(b, "R@Example.test")).kind, Verdict::Kind::proceed);
}

TEST(GreylistPlugin, OutboundSkipsAndStages) {
  PluginHarness h("greylist", kConf);
  EXPECT_EQ(h.plugin->stages(), (Stage::rcpt | Stage::data));
  boost::asio::io_context io;
  auto t = tx_from("203.0.113.5", "a@b.test");
  t.conn.trusted = true;
  EXPECT_EQ(run_on(io, h.plugin->on_rcpt(t, "x@example.test")).kind, Verdict::Kind::proceed);
  auto u = tx_from("203.0.113.5", "a@b.test");
  u.conn.auth_user = "carol";
  EXPECT_EQ(run_on(io, h.plugin->on_rcpt(u, "x@example.test")).kind, Verdict::Kind::proceed);
  auto n = tx_from("203.0.113.5", "a@b.test");
  EXPECT_EQ(run_on(io, h.plugin->on_rcpt(n, "x@example.test")).kind, Verdict::Kind::tempfail);
}

TEST(GreylistConfig, Errors) {
  auto bad = [](const std::string& body) {
    try {
      PluginHarness h("greylist", "[plugins.greylist]\n" + body);
    } catch (const config::ConfigError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(bad("delay = \"1h\"\nexpire = \"30m\"\n").find("expire"), std::string::npos);
  EXPECT_NE(bad("skip_networks = [\"nonsense\"]\n").find("nonsense"), std::string::npos);
  EXPECT_NE(bad("auto_whitelist_after = -1\n").find("auto_whitelist_after"), std::string::npos);
  EXPECT_NE(bad("on_store_error = \"maybe\"\n").find("on_store_error"), std::string::npos);
  EXPECT_NE(bad("dealy = \"1m\"\n").find("dealy"), std::string::npos);
  EXPECT_EQ(bad("delay = \"1m\"\nskip_networks = [\"2001:db8::/32\"]\n"), "");
}

}  // namespace
