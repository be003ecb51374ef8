// The pure rules of the dnsbl plugin: query names, code ranges, which answers count, the score.
#include "plugins/dnsbl/rules.hpp"

#include <gtest/gtest.h>

using namespace gw::plugins::dnsbl;
using boost::asio::ip::make_address;

namespace {

std::vector<CodeRange> codes(std::initializer_list<const char*> texts) {
  std::vector<CodeRange> out;
  for (auto* t : texts) {
    std::string error;
    auto r = parse_code_range(t, error);
    EXPECT_TRUE(r) << t << ": " << error;
    if (r) out.push_back(*r);
  }
  return out;
}

std::uint32_t ip(const char* text) { return *parse_ipv4(text); }

gw::dns::Answer answer(gw::dns::Status status, std::vector<std::string> records = {}) {
  gw::dns::Answer a;
  a.status = status;
  a.records = std::move(records);
  return a;
}

}  // namespace

TEST(DnsblNames, Ipv4ReversedOctets) {
  EXPECT_EQ(client_query_name(make_address("192.0.2.99"), "zen.example.test"), "99.2.0.192.zen.example.test");
  EXPECT_EQ(client_query_name(make_address("127.0.0.2"), "bl.test"), "2.0.0.127.bl.test");
  // an IPv4-mapped IPv6 address is the IPv4 client
  EXPECT_EQ(client_query_name(make_address("::ffff:198.51.100.7"), "bl.test"), "7.100.51.198.bl.test");
}

TEST(DnsblNames, Ipv6Nibbles) {
  // RFC 5782 §2.4's example
  EXPECT_EQ(client_query_name(make_address("2001:db8:1:2:3:4:567:89ab"), "ugly.example.com"),
            "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.ugly.example.com");
  auto n = client_query_name(make_address("2001:db8::1"), "bl.test");
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.test");
}

TEST(DnsblNames, ZoneSyntax) {
  EXPECT_EQ(normalize_zone("Zen.Spamhaus.ORG."), "zen.spamhaus.org");
  EXPECT_FALSE(normalize_zone(""));
  EXPECT_FALSE(normalize_zone("bad zone.test"));
  EXPECT_FALSE(normalize_zone("a..b"));
  EXPECT_FALSE(normalize_zone(std::string(64, 'a') + ".test"));
  // a zone so long that an IPv6 query name could not fit
  std::string lng;
  for (int i = 0; i < 40; ++i) lng += "abcd.";
  EXPECT_FALSE(normalize_zone(lng + "test"));
}

TEST(DnsblNames, SenderDomain) {
  EXPECT_EQ(sender_domain("Alice@Spam.Example."), "spam.example");
  EXPECT_EQ(sender_domain("a@b@c.example"), "c.example");
  EXPECT_EQ(sender_domain(""), "");                 // null sender: no domain list query
  EXPECT_EQ(sender_domain("postmaster"), "");
  EXPECT_EQ(sender_domain("x@[192.0.2.1]"), "");    // address literal
  EXPECT_EQ(sender_domain("x@bücher.example"), "");  // not an ASCII host name
  EXPECT_EQ(sender_domain("x@a..example"), "");
  EXPECT_EQ(domain_query_name("spam.example", "dbl.test"), "spam.example.dbl.test");
  EXPECT_FALSE(domain_query_name(std::string(200, 'a').insert(60, ".").insert(120, ".").insert(180, "."), std::string(60, 'z')));
}

TEST(DnsblCodes, SingleCodesAndRanges) {
  std::string error;
  auto r = parse_code_range("127.0.0.4-127.0.0.7", error);
  ASSERT_TRUE(r) << error;
  EXPECT_FALSE(r->contains(ip("127.0.0.3")));
  EXPECT_TRUE(r->contains(ip("127.0.0.4")));
  EXPECT_TRUE(r->contains(ip("127.0.0.7")));
  EXPECT_FALSE(r->contains(ip("127.0.0.8")));
  auto one = parse_code_range(" 127.0.0.2 ", error);
  ASSERT_TRUE(one);
  EXPECT_TRUE(one->contains(ip("127.0.0.2")));
  EXPECT_FALSE(one->contains(ip("127.0.0.3")));
  EXPECT_TRUE(parse_code_range("127.0.0.4 - 127.0.1.7", error));
  EXPECT_FALSE(parse_code_range("127.0.0.7-127.0.0.4", error));
  EXPECT_NE(error.find("ends before"), std::string::npos);
  EXPECT_FALSE(parse_code_range("10.0.0.2", error));
  EXPECT_NE(error.find("127.0.0.0/8"), std::string::npos);
  for (const char* bad : {"", "127.0.0", "127.0.0.256", "127.0.0.1.5", "127.0.0.1-", "::1", "127.0.0.0002", "x"})
    EXPECT_FALSE(parse_code_range(bad, error)) << bad;
}

TEST(DnsblCodes, WhatCounts) {
  EXPECT_TRUE(counts(ip("127.0.0.2"), {}));
  EXPECT_TRUE(counts(ip("127.1.2.3"), {}));
  EXPECT_FALSE(counts(ip("10.0.0.2"), {}));        // outside 127/8: never
  EXPECT_FALSE(counts(ip("128.0.0.2"), {}));
  EXPECT_FALSE(counts(ip("127.255.255.254"), {}));  // list error: never
  EXPECT_FALSE(counts(ip("127.255.255.0"), {}));
  EXPECT_TRUE(counts(ip("127.255.254.255"), {}));
  auto c = codes({"127.0.0.2", "127.0.0.4-127.0.0.7", "127.255.255.0-127.255.255.255"});
  EXPECT_TRUE(counts(ip("127.0.0.2"), c));
  EXPECT_FALSE(counts(ip("127.0.0.3"), c));
  EXPECT_TRUE(counts(ip("127.0.0.5"), c));
  EXPECT_FALSE(counts(ip("127.0.0.10"), c));
  EXPECT_FALSE(counts(ip("127.255.255.254"), c));  // even when listed in codes
}

TEST(DnsblClassify, Answers) {
  using gw::dns::Status;
  EXPECT_EQ(classify(answer(Status::nxdomain), {}).kind, Outcome::Kind::miss);
  EXPECT_EQ(classify(answer(Status::nodata), {}).kind, Outcome::Kind::miss);
  auto t = classify(answer(Status::temperror), {});
  EXPECT_EQ(t.kind, Outcome::Kind::error);
  EXPECT_EQ(t.error, "temperror");
  EXPECT_EQ(classify(answer(Status::permerror), {}).kind, Outcome::Kind::error);
  // the first answer that counts is the code
  auto h = classify(answer(Status::ok, {"127.255.255.254", "10.1.1.1", "127.0.0.4", "127.0.0.2"}), codes({"127.0.0.2-127.0.0.9"}));
  EXPECT_EQ(h.kind, Outcome::Kind::hit);
  EXPECT_EQ(h.code, "127.0.0.4");
  auto e = classify(answer(Status::ok, {"127.255.255.254"}), {});
  EXPECT_EQ(e.kind, Outcome::Kind::miss);
  EXPECT_EQ(e.list_error, "127.255.255.254");
  EXPECT_EQ(classify(answer(Status::ok, {"127.0.0.3"}), codes({"127.0.0.2"})).kind, Outcome::Kind::miss);
  EXPECT_EQ(classify(answer(Status::ok, {"garbage", "::1"}), {}).kind, Outcome::Kind::miss);
}

TEST(DnsblScore, WeightsThresholdAndErrors) {
  Outcome hit{Outcome::Kind::hit, "127.0.0.2", {}, {}};
  Outcome miss{Outcome::Kind::miss, {}, {}, {}};
  Outcome err{Outcome::Kind::error, {}, {}, "timeout"};
  std::vector<Scored> two{{"a.test", 1, false, &hit}, {"b.test", 2, false, &hit}, {"c.test", 5, false, &miss}};
  auto s = score(two);
  EXPECT_EQ(s.score, 3);
  EXPECT_EQ(s.hits.size(), 2u);
  ASSERT_TRUE(s.top);
  EXPECT_EQ(s.top->zone, "b.test");  // the largest weight names the reply
  EXPECT_EQ(decide(s, 3, false), Decision::reject);
  EXPECT_EQ(decide(s, 4, false), Decision::pass);

  // an allow list cancels a hit
  std::vector<Scored> allow{{"bl.test", 1, false, &hit}, {"wl.test", -5, false, &hit}};
  EXPECT_EQ(score(allow).score, -4);
  EXPECT_EQ(decide(score(allow), 1, true), Decision::pass);

  // equal weights: the first list names the reply
  std::vector<Scored> eq{{"first.test", 1, false, &hit}, {"dom.test", 1, true, &hit}};
  EXPECT_EQ(score(eq).top->zone, "first.test");

  // errors: ignore counts them as no hit; tempfail unless the refusal is certain
  std::vector<Scored> failing{{"bl.test", 1, false, &hit}, {"down.test", 1, false, &err}};
  auto f = score(failing);
  EXPECT_TRUE(f.errors);
  EXPECT_EQ(decide(f, 2, false), Decision::pass);
  EXPECT_EQ(decide(f, 2, true), Decision::tempfail);
  EXPECT_EQ(decide(f, 1, true), Decision::reject);
  // a failed allow list could have cancelled the hit: with tempfail the answer is 451
  std::vector<Scored> allow_down{{"bl.test", 1, false, &hit}, {"wl.test", -5, false, &err}};
  EXPECT_EQ(decide(score(allow_down), 1, true), Decision::tempfail);
  EXPECT_EQ(decide(score(allow_down), 1, false), Decision::reject);
}
