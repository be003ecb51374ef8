#include "gateway/dns/wire.hpp"

#include <gtest/gtest.h>

using namespace gw::dns;

namespace {

// A small response builder for the tests.
struct Pkt {
  std::vector<std::uint8_t> b;
  void u8(unsigned v) { b.push_back(static_cast<std::uint8_t>(v)); }
  void u16(unsigned v) { u8(v >> 8); u8(v & 0xff); }
  void u32(std::uint32_t v) { u16(v >> 16); u16(v & 0xffff); }
  void name(const std::string& n) {
    size_t s = 0;
    while (s < n.size()) {
      auto d = n.find('.', s);
      if (d == std::string::npos) d = n.size();
      u8(d - s);
      for (size_t i = s; i < d; ++i) u8(n[i]);
      s = d + 1;
    }
    u8(0);
  }
  void header(unsigned id, unsigned flags, unsigned qd, unsigned an, unsigned ns = 0) {
    u16(id); u16(flags); u16(qd); u16(an); u16(ns); u16(0);
  }
};

Pkt txt_response(const std::vector<std::vector<std::string>>& records, unsigned rcode = 0) {
  Pkt p;
  p.header(0x1234, 0x8180 | rcode, 1, records.size());
  p.name("example.com");
  p.u16(16); p.u16(1);
  for (auto& strings : records) {
    p.u16(0xC00C);  // pointer to the question name
    p.u16(16); p.u16(1); p.u32(300);
    size_t len = 0;
    for (auto& s : strings) len += 1 + s.size();
    p.u16(len);
    for (auto& s : strings) {
      p.u8(s.size());
      for (char c : s) p.u8(c);
    }
  }
  return p;
}

}  // namespace

TEST(DnsWire, BuildQueryLayout) {
  auto q = build_query(0xBEEF, "a.example.com", Type::TXT, 0);
  ASSERT_EQ(q.size(), 12u + 15u + 4u);
  EXPECT_EQ(q[0], 0xBE);
  EXPECT_EQ(q[1], 0xEF);
  EXPECT_EQ(q[2], 0x01);  // RD
  EXPECT_EQ(q[12], 1);
  EXPECT_EQ(q[13], 'a');
  EXPECT_EQ(q[14], 7);
  auto e = build_query(1, "a.example.com", Type::A);
  EXPECT_EQ(e.size(), q.size() + 11);  // OPT record
  EXPECT_EQ(e[11], 1);                 // ARCOUNT
}

TEST(DnsWire, NormalizeName) {
  EXPECT_EQ(normalize_name("Example.COM."), "example.com");
  EXPECT_FALSE(normalize_name(""));
  EXPECT_FALSE(normalize_name("."));
  EXPECT_FALSE(normalize_name("a..b"));
  EXPECT_FALSE(normalize_name(".a"));
  EXPECT_FALSE(normalize_name(std::string(64, 'a') + ".com"));
  EXPECT_TRUE(normalize_name(std::string(63, 'a') + ".com"));
  std::string long_name;
  for (int i = 0; i < 60; ++i) long_name += "abcd.";
  EXPECT_FALSE(normalize_name(long_name + "com"));
}

TEST(DnsWire, TxtRecordsConcatenateStrings) {
  auto p = txt_response({{"v=spf1 ", "-all"}, {"other"}});
  auto r = parse_response(p.b.data(), p.b.size(), "EXAMPLE.com", Type::TXT);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->question_matches);
  EXPECT_EQ(r->id, 0x1234);
  EXPECT_EQ(r->answer.status, Status::ok);
  ASSERT_EQ(r->answer.records.size(), 2u);
  EXPECT_EQ(r->answer.records[0], "v=spf1 -all");
  EXPECT_EQ(r->answer.records[1], "other");
  EXPECT_EQ(r->answer.ttl, 300u);
}

TEST(DnsWire, QuestionMismatchIsFlagged) {
  auto p = txt_response({{"x"}});
  auto r = parse_response(p.b.data(), p.b.size(), "other.com", Type::TXT);
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->question_matches);
  auto r2 = parse_response(p.b.data(), p.b.size(), "example.com", Type::A);
  ASSERT_TRUE(r2);
  EXPECT_FALSE(r2->question_matches);
}

TEST(DnsWire, EveryTruncationOfAPacketIsRejectedOrSafe) {
  auto p = txt_response({{"v=spf1 ", "-all"}, {"other"}});
  for (size_t n = 0; n < p.b.size(); ++n) {
    auto r = parse_response(p.b.data(), n, "example.com", Type::TXT);
    if (r) {
      EXPECT_LT(r->answer.records.size(), 2u) << n;
    }
  }
}

TEST(DnsWire, TxtStringLongerThanRdataIsMalformed) {
  auto p = txt_response({{"abc"}});
  p.b[p.b.size() - 4] = 10;  // the string's length octet claims more than the rdata holds
  EXPECT_FALSE(parse_response(p.b.data(), p.b.size(), "example.com", Type::TXT));
}

TEST(DnsWire, CompressionPointerLoopIsRejected) {
  Pkt p;
  p.header(1, 0x8180, 1, 0);
  p.u16(0xC00C);  // the question name points at itself
  p.u16(1); p.u16(1);
  EXPECT_FALSE(parse_response(p.b.data(), p.b.size(), "x", Type::A));
  size_t pos = 12;
  EXPECT_FALSE(read_name(p.b.data(), p.b.size(), pos));
}

TEST(DnsWire, ForwardPointerIsRejected) {
  Pkt p;
  p.header(1, 0x8180, 1, 0);
  p.u16(0xC00E);  // points forward
  p.name("a");
  size_t pos = 12;
  EXPECT_FALSE(read_name(p.b.data(), p.b.size(), pos));
}

TEST(DnsWire, PointerChainResolvesAndAdvancesPastPointer) {
  Pkt p;
  p.header(1, 0x8180, 0, 0);
  p.name("example.com");    // at 12
  p.u8(3); p.u8('w'); p.u8('w'); p.u8('w'); p.u16(0xC00C);  // "www" + pointer, at 25
  size_t pos = 25;
  auto n = read_name(p.b.data(), p.b.size(), pos);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, "www.example.com");
  EXPECT_EQ(pos, 31u);
}

TEST(DnsWire, ReservedLabelTypeAndOverlongNameRejected) {
  Pkt p;
  p.header(1, 0x8180, 0, 0);
  p.u8(0x40); p.u8(0);
  size_t pos = 12;
  EXPECT_FALSE(read_name(p.b.data(), p.b.size(), pos));
  Pkt q;
  q.header(1, 0x8180, 0, 0);
  for (int i = 0; i < 5; ++i) {
    q.u8(63);
    for (int j = 0; j < 63; ++j) q.u8('a');
  }
  q.u8(0);
  pos = 12;
  EXPECT_FALSE(read_name(q.b.data(), q.b.size(), pos));
}

TEST(DnsWire, CnameChainIsFollowed) {
  Pkt p;
  p.header(7, 0x8180, 1, 2);
  p.name("alias.test");  // 12
  p.u16(1); p.u16(1);
  p.u16(0xC00C); p.u16(5); p.u16(1); p.u32(60); p.u16(11);
  p.name("real.test");
  size_t real = p.b.size() - 11;
  p.u16(0xC000 | real); p.u16(1); p.u16(1); p.u32(120); p.u16(4);
  p.u8(192); p.u8(0); p.u8(2); p.u8(1);
  auto r = parse_response(p.b.data(), p.b.size(), "alias.test", Type::A);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->answer.status, Status::ok);
  ASSERT_EQ(r->answer.records.size(), 1u);
  EXPECT_EQ(r->answer.records[0], "192.0.2.1");
  EXPECT_EQ(r->answer.ttl, 60u);  // the smallest TTL along the chain
}

TEST(DnsWire, NxdomainTakesSoaMinimum) {
  Pkt p;
  p.header(9, 0x8183, 1, 0, 1);
  p.name("nope.test");
  p.u16(16); p.u16(1);
  p.name("test");
  p.u16(6); p.u16(1); p.u32(3600);
  Pkt rd;
  rd.name("ns.test"); rd.name("host.test");
  rd.u32(1); rd.u32(2); rd.u32(3); rd.u32(4); rd.u32(120);
  p.u16(rd.b.size());
  p.b.insert(p.b.end(), rd.b.begin(), rd.b.end());
  auto r = parse_response(p.b.data(), p.b.size(), "nope.test", Type::TXT);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->answer.status, Status::nxdomain);
  EXPECT_TRUE(r->has_soa);
  EXPECT_EQ(r->answer.ttl, 120u);
}

TEST(DnsWire, NodataAndServfail) {
  auto p = txt_response({});
  auto r = parse_response(p.b.data(), p.b.size(), "example.com", Type::TXT);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->answer.status, Status::nodata);
  EXPECT_FALSE(r->has_soa);
  auto s = txt_response({}, 2);
  auto r2 = parse_response(s.b.data(), s.b.size(), "example.com", Type::TXT);
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->answer.status, Status::temperror);
}

TEST(DnsWire, MxAndBadAddressLength) {
  Pkt p;
  p.header(1, 0x8180, 1, 1);
  p.name("example.com");
  p.u16(15); p.u16(1);
  p.u16(0xC00C); p.u16(15); p.u16(1); p.u32(10); p.u16(2 + 2);
  p.u16(10); p.u16(0xC00C);
  auto r = parse_response(p.b.data(), p.b.size(), "example.com", Type::MX);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->answer.records.size(), 1u);
  EXPECT_EQ(r->answer.records[0], "10 example.com");

  Pkt a;
  a.header(1, 0x8180, 1, 1);
  a.name("example.com");
  a.u16(1); a.u16(1);
  a.u16(0xC00C); a.u16(1); a.u16(1); a.u32(10); a.u16(3);
  a.u8(1); a.u8(2); a.u8(3);
  EXPECT_FALSE(parse_response(a.b.data(), a.b.size(), "example.com", Type::A));
}

TEST(DnsWire, NotAResponseAndTruncatedFlag) {
  auto q = build_query(5, "example.com", Type::A);
  EXPECT_FALSE(parse_response(q.data(), q.size(), "example.com", Type::A));
  q[2] |= 0x82;  // QR + TC
  auto r = parse_response(q.data(), q.size(), "example.com", Type::A);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->truncated);
  EXPECT_TRUE(r->question_matches);
}

TEST(DnsWire, ReverseNames) {
  EXPECT_EQ(reverse_name(boost::asio::ip::make_address("192.0.2.10")), "10.2.0.192.in-addr.arpa");
  auto v6 = reverse_name(boost::asio::ip::make_address("2001:db8::1"));
  EXPECT_EQ(v6, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
}
