#include <gtest/gtest.h>

#include "gateway/store/keys.hpp"

namespace keys = gw::store::keys;
using boost::asio::ip::make_address;

TEST(StoreKeys, ClientNet) {
  EXPECT_EQ(keys::client_net(make_address("192.0.2.77")), "192.0.2.0/24");
  EXPECT_EQ(keys::client_net(make_address("::ffff:198.51.100.9")), "198.51.100.0/24");
  EXPECT_EQ(keys::client_net(make_address("2001:db8:1:2:3:4:5:6")), "2001:db8:1:2::/64");
  EXPECT_EQ(keys::client_net(make_address("2001:db8:1:2:ffff::1")), "2001:db8:1:2::/64");
  EXPECT_NE(keys::client_net(make_address("2001:db8:1:3::1")), keys::client_net(make_address("2001:db8:1:2::1")));
  EXPECT_EQ(keys::client_net(make_address("::1")), "::/64");
}

TEST(StoreKeys, DomainOf) {
  EXPECT_EQ(keys::domain_of("a@Example.TEST"), "example.test");
  EXPECT_EQ(keys::domain_of(""), "");
  EXPECT_EQ(keys::domain_of("postmaster"), "");
}

TEST(StoreKeys, NormalizeSender) {
  EXPECT_EQ(keys::normalize_sender("Alice@Example.TEST"), "alice@example.test");
  EXPECT_EQ(keys::normalize_sender("alice+news@example.test"), "alice@example.test");
  EXPECT_EQ(keys::normalize_sender("prvs=0123456789=alice@example.test"), "alice@example.test");
  EXPECT_EQ(keys::normalize_sender("PRVS=1234abcdef=Alice+x@example.test"), "alice@example.test");
  EXPECT_EQ(keys::normalize_sender("prvs=alice=0123456789@example.test"), "alice@example.test");
  EXPECT_EQ(keys::normalize_sender("btv1==0123456789==alice@example.test"), "alice@example.test");
  EXPECT_EQ(keys::normalize_sender("SRS0=HHH=TT=orig.test=bob@forwarder.test"), "bob@orig.test");
  EXPECT_EQ(keys::normalize_sender("SRS0=a1b2=Zx=orig.test=bob+tag@forwarder.test"), "bob@orig.test");
  EXPECT_EQ(keys::normalize_sender("SRS1=XXX=first.test==HHH=TT=orig.test=bob@second.test"), "bob@orig.test");
  EXPECT_EQ(keys::normalize_sender(""), "");
  EXPECT_EQ(keys::normalize_sender("+x@example.test"), "+x@example.test");  // nothing left to keep
  EXPECT_EQ(keys::normalize_sender("srs0=broken@fwd.test"), "srs0=broken@fwd.test");
}
