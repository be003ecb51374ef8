#include "plugins/spf/spf_record.hpp"

#include <gtest/gtest.h>

using namespace gw::spf;

namespace {
bool ok(const char* r) {
  std::string e;
  return parse_record(r, e).has_value();
}
MacroContext ctx() {
  MacroContext c;
  c.sender = "strong-bad@email.example.com";
  c.local = "strong-bad";
  c.sender_domain = "email.example.com";
  c.domain = "email.example.com";
  c.ip = "192.0.2.3";
  c.v4 = true;
  c.helo = "mx.example.org";
  c.receiver = "gw.test";
  return c;
}
std::string ex(const char* s, bool exp = false) {
  auto c = ctx();
  auto r = expand(s, c, exp, !exp);
  return r ? *r : "<error>";
}
}  // namespace

TEST(SpfRecord, ValidRecords) {
  EXPECT_TRUE(ok("v=spf1"));
  EXPECT_TRUE(ok("v=spf1 -all"));
  EXPECT_TRUE(ok("V=SPF1 +A MX:example.com/24//64 ip4:192.0.2.0/24 ip6:2001:db8::/32 ?include:x.example ~all"));
  EXPECT_TRUE(ok("v=spf1 moo.cow-far_out=man:dog/cat ip4:1.2.3.4 -all"));
  EXPECT_TRUE(ok("v=spf1 a:%{d}.example.com exists:%{i}.%{l2r-}.user.%{d2} redirect=%{d}"));
  EXPECT_TRUE(ok("v=spf1 a/0 mx//0 ip4:1.2.3.4/0"));
  EXPECT_TRUE(ok("v=spf1 a:macro%%percent%_%_space%-url-space.example.com -all"));
}

TEST(SpfRecord, SyntaxErrorsArePermerrors) {
  EXPECT_FALSE(ok("v=spf10 -all"));
  EXPECT_FALSE(ok("v=spf1 redirect:example.com"));       // redirect is a modifier
  EXPECT_FALSE(ok("v=spf1 a:foo-bar -all"));             // no top label
  EXPECT_FALSE(ok("v=spf1 a:example.com:8080"));
  EXPECT_FALSE(ok("v=spf1 a:111.222.33.44"));            // numeric top label
  EXPECT_FALSE(ok("v=spf1 ptr:"));
  EXPECT_FALSE(ok("v=spf1 mx: -all"));
  EXPECT_FALSE(ok("v=spf1 exists:mail.example.com/24"));
  EXPECT_FALSE(ok("v=spf1 ip4:1.2.3.4/032 -all"));       // leading zero
  EXPECT_FALSE(ok("v=spf1 ip4:1.2.3.4/33"));
  EXPECT_FALSE(ok("v=spf1 ip6:::1/129"));
  EXPECT_FALSE(ok("v=spf1 ip4:1.2.3"));
  EXPECT_FALSE(ok("v=spf1 exp=-all"));
  EXPECT_FALSE(ok("v=spf1 -all exp=a.example exp=b.example"));
  EXPECT_FALSE(ok("v=spf1 redirect=a.example redirect=b.example"));
  EXPECT_FALSE(ok("v=spf1 -all foo=%abc"));
  EXPECT_FALSE(ok("v=spf1 a:%{x}.example.com"));         // unknown macro letter
  EXPECT_FALSE(ok("v=spf1 -all exp=%{r}.example.com"));  // r only in explanation text
  EXPECT_FALSE(ok("v=spf1 a:%{d0}.example.com"));
  EXPECT_FALSE(ok("v=spf1 bogus:x -all"));
  EXPECT_FALSE(ok("v=spf1 -redirect=x.example"));
  EXPECT_FALSE(ok("v=spf1 all:x"));
}

TEST(SpfRecord, MacroExpansionRfcExamples) {  // RFC 7208 §7.4
  EXPECT_EQ(ex("%{s}"), "strong-bad@email.example.com");
  EXPECT_EQ(ex("%{o}"), "email.example.com");
  EXPECT_EQ(ex("%{d}"), "email.example.com");
  EXPECT_EQ(ex("%{d4}"), "email.example.com");
  EXPECT_EQ(ex("%{d3}"), "email.example.com");
  EXPECT_EQ(ex("%{d2}"), "example.com");
  EXPECT_EQ(ex("%{d1}"), "com");
  EXPECT_EQ(ex("%{dr}"), "com.example.email");
  EXPECT_EQ(ex("%{d2r}"), "example.email");
  EXPECT_EQ(ex("%{l}"), "strong-bad");
  EXPECT_EQ(ex("%{l-}"), "strong.bad");
  EXPECT_EQ(ex("%{lr}"), "strong-bad");
  EXPECT_EQ(ex("%{lr-}"), "bad.strong");
  EXPECT_EQ(ex("%{l1r-}"), "strong");
  EXPECT_EQ(ex("%{ir}.%{v}._spf.%{d2}"), "3.2.0.192.in-addr._spf.example.com");
  EXPECT_EQ(ex("%{lr-}.lp._spf.%{d2}"), "bad.strong.lp._spf.example.com");
  EXPECT_EQ(ex("%{d2}.trusted-domains.example.net"), "example.com.trusted-domains.example.net");
  EXPECT_EQ(ex("%%%_%-", true), "% %20");
  EXPECT_EQ(ex("%{c} via %{r}", true), "192.0.2.3 via gw.test");
  EXPECT_EQ(ex("%{L}", true), "strong-bad");
  EXPECT_EQ(ex("%{r}"), "<error>");  // not in a domain-spec
}

TEST(SpfRecord, Ip6DotFormAndUrlEscape) {
  auto c = ctx();
  c.ip = "2001:db8::cb01";
  c.v4 = false;
  c.local = "~jack&jill=up";
  auto v = expand("%{ir}.%{v}.arpa", c, false);
  ASSERT_TRUE(v);
  EXPECT_EQ(*v, "1.0.B.C.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.B.D.0.1.0.0.2.ip6.arpa");
  EXPECT_EQ(*expand("%{L}", c, true, false), "~jack%26jill%3Dup");
}

TEST(SpfRecord, LongExpansionLosesLabelsFromTheLeft) {
  auto c = ctx();
  c.local = std::string(60, 'x');
  auto v = expand("%{l}.%{l}.%{l}.%{l}.%{l}.example.com", c, false, true);
  ASSERT_TRUE(v);
  EXPECT_LE(v->size(), 253u);
  EXPECT_EQ(v->substr(v->size() - 12), ".example.com");
}

TEST(SpfRecord, Libspf2RecordNormalisation) {
  std::string e;
  auto r = parse_record("v=spf1 exp=x.example a/0 ip4:1.2.3.4/0 mx:m.example//0 foo=bar redirect=r.example ~all", e);
  ASSERT_TRUE(r);
  std::vector<ZeroCidr> zeros;
  auto id = [](const std::string& s) { return s; };
  auto out = libspf2_record(*r, true, id, zeros);
  // /0 halves, the v6 /0 dropped for an IPv4 client, redirect dropped next to "all", exp/unknown gone
  EXPECT_EQ(out, "v=spf1 a/1 ip4:0.0.0.0/1 ip4:128.0.0.0/1 mx:m.example ~all");
  ASSERT_EQ(zeros.size(), 1u);
  EXPECT_EQ(zeros[0].mechanism, "a");
  EXPECT_EQ(zeros[0].domain, "");
  zeros.clear();
  out = libspf2_record(*r, false, id, zeros);
  EXPECT_EQ(out, "v=spf1 a ip4:0.0.0.0/1 ip4:128.0.0.0/1 mx:m.example//1 ~all");
  ASSERT_EQ(zeros.size(), 1u);
  EXPECT_EQ(zeros[0].domain, "m.example");
}
