// The dmarc plugin's pure parts: From domains, record selection and parsing (libopendmarc),
// organizational domains (libpsl), evaluation, the report record's text form and the report XML.
#include <gtest/gtest.h>

#include <filesystem>

#include "plugins/dmarc/from_domain.hpp"
#include "plugins/dmarc/policy.hpp"
#include "plugins/dmarc/record.hpp"
#include "plugins/dmarc/report_xml.hpp"

namespace {

using namespace gw::dmarc;

const char* kPsl = "/usr/share/publicsuffix/public_suffix_list.dat";

TEST(DmarcFrom, Domains) {
  EXPECT_EQ(from_domain({"Joe <joe@Example.COM.>"}).domain, "example.com");
  EXPECT_EQ(from_domain({"\"a@evil.test\" <j@good.test>"}).domain, "good.test");
  EXPECT_EQ(from_domain({"j@good.test (x@evil.test)"}).domain, "good.test");
  EXPECT_EQ(from_domain({"a@good.test, \"B, b\" <b@good.test>"}).domain, "good.test");
  EXPECT_EQ(from_domain({"team: a@good.test, b@good.test;"}).domain, "good.test");
  EXPECT_EQ(from_domain({"\"x@y\"@good.test"}).domain, "good.test");
  EXPECT_FALSE(from_domain({}).domain);
  EXPECT_FALSE(from_domain({"a@x.test", "a@x.test"}).domain);
  EXPECT_FALSE(from_domain({"a@x.test, b@y.test"}).domain);
  EXPECT_FALSE(from_domain({"undisclosed"}).domain);
  EXPECT_FALSE(from_domain({""}).domain);
  EXPECT_FALSE(from_domain({"a@[192.0.2.1]"}).domain);
  EXPECT_EQ(from_domain({"<a@x.test"}).domain, "x.test");  // unterminated angle address: read to the end
}

TEST(DmarcRecord, Selection) {
  EXPECT_EQ(dmarc_records({"v=DMARC1; p=none", "v=spf1 -all", "v=DMARC10; p=none", "v = DMARC1;p=reject",
                           "V=DMARC1", "v=dmarc1; p=none", "xv=DMARC1"}),
            (std::vector<std::string>{"v=DMARC1; p=none", "v = DMARC1;p=reject", "V=DMARC1"}));
}

TEST(DmarcRecord, Parse) {
  auto r = parse_record("v=DMARC1; p=quarantine; sp=reject; pct=20; adkim=s; fo=1:d; rua=mailto:a@x.test,mailto:b@y.test",
                        "x.test");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->p, 'q');
  EXPECT_EQ(r->sp, 'r');
  EXPECT_EQ(r->pct, 20);
  EXPECT_EQ(r->adkim, 's');
  EXPECT_EQ(r->aspf, 'r');
  EXPECT_EQ(r->fo, "1:d");
  EXPECT_EQ(r->rua, (std::vector<std::string>{"mailto:a@x.test", "mailto:b@y.test"}));
  auto d = parse_record("v=DMARC1; p=reject", "x.test");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->sp, 'r');  // sp defaults to p
  EXPECT_EQ(d->pct, 100);
  EXPECT_TRUE(d->rua.empty());
  EXPECT_FALSE(parse_record("v=DMARC1; p=bogus", "x.test"));
  EXPECT_FALSE(parse_record("v=DMARC1", "x.test"));
  EXPECT_FALSE(parse_record("v=DMARC1; rua=mailto:a@x.test", "x.test"));
  EXPECT_FALSE(parse_record("v=DMARC1; p=none; sp=bad", "x.test"));
}

TEST(DmarcRecord, Discovery) {
  gw::dns::Answer a;
  a.status = gw::dns::Status::nxdomain;
  EXPECT_FALSE(discover_at(a, "x.test"));
  a.status = gw::dns::Status::temperror;
  EXPECT_EQ(discover_at(a, "x.test")->kind, Discovery::Kind::temperror);
  a.status = gw::dns::Status::ok;
  a.records = {"v=spf1 -all"};
  EXPECT_FALSE(discover_at(a, "x.test"));
  a.records = {"v=DMARC1; p=reject", "v=DMARC1; p=none"};
  EXPECT_EQ(discover_at(a, "x.test")->kind, Discovery::Kind::none);
  a.records = {"v=DMARC1; p=reject", "other"};
  auto d = discover_at(a, "x.test");
  ASSERT_EQ(d->kind, Discovery::Kind::found);
  EXPECT_EQ(d->record.domain, "x.test");
}

TEST(DmarcPolicy, OrgDomainsAndEvaluation) {
  if (!std::filesystem::exists(kPsl)) GTEST_SKIP() << "publicsuffix not installed";
  OrgDomains org(kPsl);
  EXPECT_EQ(org.of("a.b.example.co.uk"), "example.co.uk");
  EXPECT_EQ(org.of("mail.example.com"), "example.com");
  EXPECT_EQ(org.of("co.uk"), "co.uk");
  EXPECT_EQ(org.of("x.shop.github.io"), "shop.github.io");
  EXPECT_EQ(org.of("a.b.test"), "b.test");  // unlisted TLD: the default rule "*"
  EXPECT_THROW(OrgDomains("/nonexistent/psl.dat"), std::runtime_error);

  Record rec = *parse_record("v=DMARC1; p=reject; sp=quarantine; pct=50", "example.com");
  Identifiers ids;
  ids.from_domain = "example.com";
  ids.spf_result = "pass";
  ids.spf_domain = "Mail.Example.com";
  auto e = evaluate(rec, ids, org, 99);
  EXPECT_EQ(e.result, "pass");
  EXPECT_TRUE(e.spf_aligned);
  EXPECT_EQ(e.policy, 'r');
  ids.spf_result = "softfail";
  e = evaluate(rec, ids, org, 10);  // sampled in
  EXPECT_EQ(e.result, "fail");
  EXPECT_EQ(e.applied, 'r');
  EXPECT_FALSE(e.sampled_out);
  e = evaluate(rec, ids, org, 50);  // sampled out: one step down
  EXPECT_EQ(e.applied, 'q');
  EXPECT_TRUE(e.sampled_out);
  ids.from_domain = "sub.example.com";  // below the record's domain: sp
  e = evaluate(rec, ids, org, 0);
  EXPECT_EQ(e.policy, 'q');
  e = evaluate(rec, ids, org, 60);
  EXPECT_EQ(e.applied, 'n');
  ids.dkim = {{"other.test", "s", "pass"}, {"example.com", "s", "fail"}};
  EXPECT_EQ(evaluate(rec, ids, org, 0).result, "fail");
  ids.dkim.push_back({"EXAMPLE.com", "s", "pass"});
  EXPECT_EQ(evaluate(rec, ids, org, 0).result, "pass");
  Record strict = *parse_record("v=DMARC1; p=reject; adkim=s; aspf=s", "example.com");
  ids.from_domain = "example.com";
  ids.dkim = {{"mail.example.com", "s", "pass"}};
  ids.spf_result = "pass";
  ids.spf_domain = "mail.example.com";
  EXPECT_EQ(evaluate(strict, ids, org, 0).result, "fail");
  ids.spf_domain = "example.com";
  EXPECT_EQ(evaluate(strict, ids, org, 0).result, "pass");
  Record zero = *parse_record("v=DMARC1; p=reject; pct=0", "example.com");
  ids.spf_result = "fail";
  ids.dkim.clear();
  for (int roll : {0, 50, 99}) EXPECT_EQ(evaluate(zero, ids, org, roll).applied, 'q');
}

TEST(DmarcReportRecord, RoundTripAndGarbage) {
  ReportRecord r;
  r.time = 1796250000;
  r.source_ip = "2001:db8::1";
  r.header_from = "example.com";
  r.envelope_from = "b=ounce%.example.com";
  r.spf_scope = "helo";
  r.spf_result = "pass";
  r.dkim = {{"example.com", "sel 1", "pass"}, {"x.test", "", "fail"}};
  r.policy_domain = "example.com";
  r.adkim = 's';
  r.p = 'q';
  r.sp = 'r';
  r.pct = 7;
  r.fo = "1:d";
  r.rua = {"mailto:a@example.com", "mailto:b@x.test!10m"};
  r.disposition = "quarantine";
  r.dkim_aligned = true;
  r.sampled_out = true;
  auto back = ReportRecord::decode(r.encode());
  ASSERT_TRUE(back);
  EXPECT_EQ(back->encode(), r.encode());
  EXPECT_EQ(back->dkim[0].selector, "sel 1");
  EXPECT_EQ(back->dkim[1].selector, "");
  EXPECT_EQ(back->envelope_from, "b=ounce%.example.com");
  EXPECT_FALSE(ReportRecord::decode(""));
  EXPECT_FALSE(ReportRecord::decode("v=2\nfrom=x\npd=x"));
  EXPECT_FALSE(ReportRecord::decode("v=1\nfrom=%zz\npd=x"));
  EXPECT_FALSE(ReportRecord::decode("v=1\nfrom=x\npd=x\ndkim=onlyone"));
  EXPECT_FALSE(ReportRecord::decode("garbage"));
}

TEST(DmarcReportXml, GroupsAndEscapes) {
  ReportMeta m{"Org & Co <x>", "r@gw.test", "gw.test", 100, 200};
  ReportRecord a;
  a.time = 100;
  a.source_ip = "192.0.2.1";
  a.header_from = "example.com";
  a.envelope_from = "example.com";
  a.spf_scope = "mfrom";
  a.spf_result = "pass";
  a.policy_domain = "example.com";
  a.disposition = "none";
  a.spf_aligned = true;
  ReportRecord b = a;
  b.source_ip = "192.0.2.2";
  std::string x = report_xml(m, "example.com", {a, a, b});
  EXPECT_NE(x.find("<org_name>Org &amp; Co &lt;x&gt;</org_name>"), std::string::npos);
  EXPECT_NE(x.find("<source_ip>192.0.2.1</source_ip>\n      <count>2</count>"), std::string::npos) << x;
  EXPECT_NE(x.find("<source_ip>192.0.2.2</source_ip>\n      <count>1</count>"), std::string::npos) << x;
  EXPECT_EQ(report_file_name(m, "example.com"), "gw.test!example.com!100!200.xml.gz");
}

}  // namespace
