#include <gtest/gtest.h>

#include "gateway/config/network.hpp"
#include "gateway/config/units.hpp"

using namespace gw::config;

TEST(Units, Durations) {
  EXPECT_EQ(parse_duration("500ms")->count(), 500);
  EXPECT_EQ(parse_duration("30s")->count(), 30000);
  EXPECT_EQ(parse_duration("5m")->count(), 300000);
  EXPECT_EQ(parse_duration("24h")->count(), 86400000);
  EXPECT_EQ(parse_duration("36d")->count(), 36LL * 86400000);
  EXPECT_FALSE(parse_duration("5"));
  EXPECT_FALSE(parse_duration("5 weeks"));
  EXPECT_FALSE(parse_duration("-5s"));
}

TEST(Units, Sizes) {
  EXPECT_EQ(*parse_size("25MiB"), 25ull << 20);
  EXPECT_EQ(*parse_size("1024"), 1024u);
  EXPECT_EQ(*parse_size("2KiB"), 2048u);
  EXPECT_FALSE(parse_size("lots"));
}

TEST(Network, Contains) {
  auto n = Network::parse("192.0.2.0/24");
  ASSERT_TRUE(n);
  EXPECT_TRUE(n->contains(boost::asio::ip::make_address("192.0.2.77")));
  EXPECT_FALSE(n->contains(boost::asio::ip::make_address("192.0.3.1")));
  EXPECT_TRUE(n->contains(boost::asio::ip::make_address("::ffff:192.0.2.5")));
  auto v6 = Network::parse("2001:db8::/32");
  EXPECT_TRUE(v6->contains(boost::asio::ip::make_address("2001:db8:1::1")));
  EXPECT_FALSE(Network::parse("1.2.3.4/33"));
  EXPECT_FALSE(Network::parse("nonsense"));
}

TEST(Endpoint, Parse) {
  auto e = Endpoint::parse("127.0.0.1:2525");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->port, 2525);
  auto v6 = Endpoint::parse("[::1]:25");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_FALSE(Endpoint::parse("::1:25"));
  EXPECT_FALSE(Endpoint::parse("host:99999"));
}
