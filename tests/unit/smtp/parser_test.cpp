#include <gtest/gtest.h>

#include "gateway/smtp/parser.hpp"

using namespace gw::smtp;

TEST(Parser, Verbs) {
  EXPECT_EQ(parse_command("EHLO x").verb, Verb::ehlo);
  EXPECT_EQ(parse_command("ehlo x").verb, Verb::ehlo);
  EXPECT_EQ(parse_command("QUIT").verb, Verb::quit);
  EXPECT_EQ(parse_command("FOO").verb, Verb::unknown);
  EXPECT_EQ(parse_command("MAILX FROM:<>").verb, Verb::unknown);
  auto c = parse_command("MAIL FROM:<a@b.c> SIZE=10");
  EXPECT_EQ(c.verb, Verb::mail);
  EXPECT_EQ(c.arg, "<a@b.c> SIZE=10");
  EXPECT_TRUE(parse_command("MAIL TO:<a@b>").bad_form);
  EXPECT_EQ(parse_command("RCPT TO: <a@b>").arg, "<a@b>");
}

TEST(Parser, Paths) {
  auto r = parse_path("<user@Example.COM> SIZE=100 BODY=8BITMIME", true);
  ASSERT_TRUE(r.path);
  EXPECT_EQ(r.path->address, "user@Example.COM");
  EXPECT_EQ(r.path->domain, "example.com");
  ASSERT_EQ(r.path->params.size(), 2u);
  EXPECT_EQ(r.path->params[0].keyword, "SIZE");
  EXPECT_EQ(r.path->params[0].value, "100");
  EXPECT_TRUE(parse_path("<>", true).path);
  EXPECT_FALSE(parse_path("<>", false).path);
  EXPECT_FALSE(parse_path("user@example.com", true).path);
  EXPECT_FALSE(parse_path("<user@>", true).path);
  EXPECT_FALSE(parse_path("<a..b@x.y>", true).path);
  EXPECT_FALSE(parse_path("<a@b", true).path);
  EXPECT_TRUE(parse_path("<\"a b\"@x.y>", false).path);
  EXPECT_TRUE(parse_path("<a@[192.0.2.1]>", false).path);
  EXPECT_TRUE(parse_path("<a@[IPv6:2001:db8::1]>", false).path);
  EXPECT_FALSE(parse_path("<a@[300.1.1.1]>", false).path);
  EXPECT_TRUE(parse_path("<Postmaster>", false).path);
  EXPECT_FALSE(parse_path("<Postmaster>", true).path);
  auto sr = parse_path("<@a.example,@b.example:user@c.example>", false);
  ASSERT_TRUE(sr.path);
  EXPECT_EQ(sr.path->source_route, "@a.example,@b.example");
  EXPECT_EQ(sr.path->domain, "c.example");
  auto u = parse_path("<jöran@bücher.example>", false);
  ASSERT_TRUE(u.path);
  EXPECT_TRUE(u.path->utf8);
}

// Found by tests/fuzz (fuzz_command): NUL was accepted as atext through strchr's terminator.
TEST(Parser, NulIsNeverAddressText) {
  EXPECT_FALSE(parse_path(std::string_view("<a\0b@b.example>", 16), true).path);
  EXPECT_FALSE(parse_path(std::string_view("<ab@b.ex\0mple>", 16), true).path);
  EXPECT_FALSE(parse_path(std::string_view("<\"q\"@[1.2.3.4\0]>", 17), false).path);
}
