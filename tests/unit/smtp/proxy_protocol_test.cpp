#include <gtest/gtest.h>

#include "gateway/smtp/proxy_protocol.hpp"

using gw::smtp::parse_proxy_header;
using Status = gw::smtp::ProxyHeader::Status;

TEST(ProxyV1, Tcp4) {
  std::string in = "PROXY TCP4 192.0.2.7 10.0.0.1 4567 25\r\nEHLO x\r\n";
  auto h = parse_proxy_header(in);
  ASSERT_EQ(h.status, Status::ok);
  EXPECT_TRUE(h.has_address);
  EXPECT_EQ(h.source.to_string(), "192.0.2.7");
  EXPECT_EQ(h.source_port, 4567);
  EXPECT_EQ(in.substr(h.length), "EHLO x\r\n");
}

TEST(ProxyV1, Tcp6AndUnknownAndErrors) {
  auto h = parse_proxy_header("PROXY TCP6 2001:db8::5 2001:db8::1 1000 25\r\n");
  ASSERT_EQ(h.status, Status::ok);
  EXPECT_EQ(h.source.to_string(), "2001:db8::5");
  auto u = parse_proxy_header("PROXY UNKNOWN\r\n");
  ASSERT_EQ(u.status, Status::ok);
  EXPECT_FALSE(u.has_address);
  EXPECT_EQ(parse_proxy_header("PROXY TCP4 192.0.2.7").status, Status::incomplete);
  EXPECT_EQ(parse_proxy_header("EHLO x\r\n").status, Status::invalid);
  EXPECT_EQ(parse_proxy_header("PROXY TCP4 2001:db8::5 10.0.0.1 1 2\r\n").status, Status::invalid);
  EXPECT_EQ(parse_proxy_header("PROXY TCP4 1.2.3.4 5.6.7.8 99999 25\r\n").status, Status::invalid);
  EXPECT_EQ(parse_proxy_header(std::string("PROXY ") + std::string(200, 'A')).status, Status::invalid);
}

TEST(ProxyV2, Tcp4AndLocal) {
  std::string sig("\r\n\r\n\0\r\nQUIT\n", 12);
  std::string v4 = sig + std::string("\x21\x11\x00\x0c", 4) + std::string("\xc0\x00\x02\x09\x0a\x00\x00\x01\x04\xd2\x00\x19", 12);
  auto h = parse_proxy_header(v4 + "EHLO");
  ASSERT_EQ(h.status, Status::ok);
  EXPECT_EQ(h.source.to_string(), "192.0.2.9");
  EXPECT_EQ(h.source_port, 1234);
  EXPECT_EQ(h.length, 28u);
  std::string local = sig + std::string("\x20\x00\x00\x00", 4);
  auto l = parse_proxy_header(local);
  ASSERT_EQ(l.status, Status::ok);
  EXPECT_FALSE(l.has_address);
  EXPECT_EQ(parse_proxy_header(v4.substr(0, 20)).status, Status::incomplete);
  std::string bad = sig + std::string("\x31\x11\x00\x00", 4);
  EXPECT_EQ(parse_proxy_header(bad).status, Status::invalid);
}

// The reader asks for no byte past the header (an implicit-TLS ClientHello follows it at once).
TEST(ProxyWanted, NeverPastTheHeader) {
  using gw::smtp::proxy_bytes_wanted;
  std::string v1 = "PROXY TCP4 192.0.2.7 10.0.0.1 4567 25\r\n";
  std::string got;
  while (gw::smtp::parse_proxy_header(got).status == Status::incomplete) {
    std::size_t n = proxy_bytes_wanted(got);
    ASSERT_GE(n, 1u);
    ASSERT_LE(got.size() + n, v1.size());
    got += v1.substr(got.size(), n);
  }
  EXPECT_EQ(got, v1);
  std::string sig("\r\n\r\n\0\r\nQUIT\n", 12);
  std::string v2 = sig + std::string("\x21\x11\x00\x0c", 4) + std::string(12, '\x01');
  got.clear();
  while (gw::smtp::parse_proxy_header(got).status == Status::incomplete) {
    std::size_t n = proxy_bytes_wanted(got);
    ASSERT_LE(got.size() + n, v2.size());
    got += v2.substr(got.size(), n);
  }
  EXPECT_EQ(got, v2);
}
