#include <gtest/gtest.h>

#include "gateway/net/reply.hpp"

using namespace gw::net;

TEST(Reply, ParseLines) {
  int code = 0;
  bool last = false;
  std::string_view text;
  ASSERT_TRUE(parse_reply_line("250-2.1.0 Ok", code, last, text));
  EXPECT_EQ(code, 250);
  EXPECT_FALSE(last);
  ASSERT_TRUE(parse_reply_line("550 5.1.1 no", code, last, text));
  EXPECT_TRUE(last);
  ASSERT_TRUE(parse_reply_line("221", code, last, text));
  EXPECT_TRUE(last);
  EXPECT_FALSE(parse_reply_line("25", code, last, text));
  EXPECT_FALSE(parse_reply_line("abc def", code, last, text));
  EXPECT_FALSE(parse_reply_line("250x", code, last, text));
  EXPECT_FALSE(parse_reply_line("999 nope", code, last, text));
}

TEST(Reply, EnhancedCodes) {
  std::string enh;
  std::string_view rest;
  EXPECT_TRUE(split_enhanced("5.7.1 denied", 5, enh, rest));
  EXPECT_EQ(enh, "5.7.1");
  EXPECT_EQ(rest, "denied");
  EXPECT_FALSE(split_enhanced("4.7.1 class mismatch", 5, enh, rest));
  EXPECT_FALSE(split_enhanced("5.7 short", 5, enh, rest));
  EXPECT_TRUE(split_enhanced("2.0.0", 2, enh, rest));
}

TEST(Reply, WireForm) {
  Reply r{550, "5.1.1", {"first", "second"}};
  std::string out;
  r.append_to(out);
  EXPECT_EQ(out, "550-5.1.1 first\r\n550 5.1.1 second\r\n");
  Reply bare{250, "", {"Ok"}};
  out.clear();
  bare.append_to(out, "2.0.0");
  EXPECT_EQ(out, "250 2.0.0 Ok\r\n");
}
