#include <gtest/gtest.h>

#include "plugins/ratelimit/ratelimit.hpp"
#include "tests/unit/store/plugin_test_util.hpp"

using namespace gw;
using namespace gw::plugins::ratelimit;
using gw::testing::PluginHarness;
using gw::testing::run_on;
using gw::testing::tx_from;

TEST(RateLimitKeys, Values) {
  auto tx = tx_from("2001:db8:1:2::7", "Alice@Example.TEST");
  std::string rcpt = "Bob@Dest.TEST";
  EXPECT_EQ(key_value(Key::client_ip, tx, nullptr), "2001:db8:1:2::7");
  EXPECT_EQ(key_value(Key::client_net, tx, nullptr), "2001:db8:1:2::/64");
  EXPECT_EQ(key_value(Key::sender, tx, nullptr), "alice@example.test");
  EXPECT_EQ(key_value(Key::sender_domain, tx, nullptr), "example.test");
  EXPECT_EQ(key_value(Key::recipient, tx, &rcpt), "bob@dest.test");
  EXPECT_FALSE(key_value(Key::auth_user, tx, nullptr).has_value());  // unauthenticated: rule skipped
  tx.conn.auth_user = "carol";
  EXPECT_EQ(key_value(Key::auth_user, tx, nullptr), "carol");
  auto v4 = tx_from("::ffff:192.0.2.9", "");
  EXPECT_EQ(key_value(Key::client_ip, v4, nullptr), "192.0.2.9");
  EXPECT_EQ(key_value(Key::client_net, v4, nullptr), "192.0.2.0/24");
  EXPECT_EQ(key_value(Key::sender, v4, nullptr), "<>");
  EXPECT_EQ(key_value(Key::sender_domain, v4, nullptr), "<>");
}

TEST(RateLimitKeys, StoreKeySeparatesRules) {
  Rule a, b;
  a.limit = 10;
  b.limit = 100;
  EXPECT_NE(store_key(a, "x"), store_key(b, "x"));
  b.limit = 10;
  b.count = Count::recipients;
  EXPECT_NE(store_key(a, "x"), store_key(b, "x"));
}

TEST(RateLimitConfig, Errors) {
  auto bad = [](const std::string& rule) {
    try {
      PluginHarness h("ratelimit", "[plugins.ratelimit]\n[[plugins.ratelimit.rules]]\n" + rule);
    } catch (const config::ConfigError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(bad("key = \"sender\"\nlimit = 1\ncount = \"connections\"\n").find("gw.toml:"), std::string::npos);
  EXPECT_NE(bad("key = \"recipient\"\nlimit = 1\n").find("recipients"), std::string::npos);
  EXPECT_NE(bad("key = \"client_ip\"\nlimit = 0\n").find("positive"), std::string::npos);
  EXPECT_NE(bad("key = \"nope\"\nlimit = 1\n").find("client_ip"), std::string::npos);
  EXPECT_NE(bad("key = \"client_ip\"\nlimit = 1\nbogus = 2\n").find("bogus"), std::string::npos);
  EXPECT_NE(bad("limit = 1\n").find("key"), std::string::npos);
  EXPECT_EQ(bad("key = \"client_ip\"\nlimit = 1\nper = \"10s\"\naction = \"defer\"\nname = \"x\"\n"), "");
}

TEST(RateLimitPlugin, AuthUserRuleCountsPerUser) {
  PluginHarness h("ratelimit",
                  "[plugins.ratelimit]\n[[plugins.ratelimit.rules]]\nkey = \"auth_user\"\nlimit = 2\nper = \"1h\"\n");
  EXPECT_EQ(h.plugin->stages(), static_cast<unsigned>(Stage::mail));
  boost::asio::io_context io;
  auto tx = tx_from("192.0.2.1", "a@b.test");
  tx.conn.auth_user = "carol";
  EXPECT_EQ(run_on(io, h.plugin->on_mail(tx)).kind, Verdict::Kind::proceed);
  EXPECT_EQ(run_on(io, h.plugin->on_mail(tx)).kind, Verdict::Kind::proceed);
  auto v = run_on(io, h.plugin->on_mail(tx));
  EXPECT_EQ(v.kind, Verdict::Kind::tempfail);
  EXPECT_EQ(v.code, 451);
  EXPECT_EQ(v.enhanced, "4.7.1");
  EXPECT_NE(v.text.find("auth_user carol"), std::string::npos) << v.text;
  tx.conn.auth_user = "dave";
  EXPECT_EQ(run_on(io, h.plugin->on_mail(tx)).kind, Verdict::Kind::proceed);
  tx.conn.auth_user.reset();  // unauthenticated: the rule does not apply
  for (int i = 0; i < 5; ++i) EXPECT_EQ(run_on(io, h.plugin->on_mail(tx)).kind, Verdict::Kind::proceed);
}

TEST(RateLimitPlugin, ClientNetV6SharesTheSlash64) {
  PluginHarness h("ratelimit",
                  "[plugins.ratelimit]\n[[plugins.ratelimit.rules]]\nkey = \"client_net\"\nlimit = 2\nper = \"1h\"\n"
                  "count = \"connections\"\naction = \"reject\"\n");
  boost::asio::io_context io;
  auto a = tx_from("2001:db8:0:1::1", "");
  auto b = tx_from("2001:db8:0:1:ffff::2", "");
  auto c = tx_from("2001:db8:0:2::1", "");
  EXPECT_EQ(run_on(io, h.plugin->on_connect(a)).kind, Verdict::Kind::proceed);
  EXPECT_EQ(run_on(io, h.plugin->on_connect(b)).kind, Verdict::Kind::proceed);
  auto v = run_on(io, h.plugin->on_connect(a));
  EXPECT_EQ(v.kind, Verdict::Kind::reject);
  EXPECT_EQ(v.code, 550);
  EXPECT_NE(v.text.find("2001:db8:0:1::/64"), std::string::npos) << v.text;
  EXPECT_EQ(run_on(io, h.plugin->on_connect(c)).kind, Verdict::Kind::proceed);
}
