#include <gtest/gtest.h>

#include "gateway/core/message.hpp"
#include "gateway/core/transaction.hpp"

using gw::Message;

TEST(Message, HeadersUnfoldedAndCaseInsensitive) {
  Message m;
  m.buffer() = "From: a@b.test\r\nSubject: hello\r\n\tworld\r\nReceived: one\r\nreceived: two\r\n\r\nbody\r\n";
  EXPECT_EQ(m.header("subject").value(), "hello\tworld");
  EXPECT_EQ(m.headers("Received"), (std::vector<std::string>{"one", "two"}));
  EXPECT_FALSE(m.header("X-Missing"));
  EXPECT_EQ(m.body(), "body\r\n");
  ASSERT_EQ(m.fields().size(), 4u);
  m.remove_field(2);
  EXPECT_EQ(m.headers("Received"), (std::vector<std::string>{"two"}));
}

TEST(Message, NoBlankLineAndNoHeaders) {
  Message m;
  m.buffer() = "just a body line\r\n";
  EXPECT_TRUE(m.fields().empty());
  EXPECT_EQ(m.body(), "just a body line\r\n");
  Message h;
  h.buffer() = "Subject: only headers\r\n";
  EXPECT_EQ(h.header("Subject").value(), "only headers");
  EXPECT_EQ(h.body(), "");
}

TEST(Transaction, OneAuthenticationResultsHeaderFirst) {
  gw::Transaction tx;
  tx.add_header("X-A", "1");
  tx.auth_results.push_back("spf=pass smtp.mailfrom=a@b.test");
  tx.auth_results.push_back("dkim=pass header.d=b.test");
  auto h = tx.final_headers("mx.test");
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[0].name, "Authentication-Results");
  EXPECT_EQ(h[0].value, "mx.test;\r\n\tspf=pass smtp.mailfrom=a@b.test;\r\n\tdkim=pass header.d=b.test");
  EXPECT_EQ(h[1].name, "X-A");
  tx.reset();
  EXPECT_TRUE(tx.final_headers("mx.test").empty());
}

TEST(Message, NewContentThroughBufferIsParsedAfresh) {
  gw::Message m;
  m.buffer() = "Subject: first\r\nX-Old: 1\r\n\r\nbody\r\n";
  ASSERT_EQ(m.header("X-Old").value_or(""), "1");
  m.buffer() = "Subject: second\r\n\r\nother\r\n";
  EXPECT_EQ(m.header("Subject").value_or(""), "second");
  EXPECT_FALSE(m.header("X-Old").has_value());
  EXPECT_EQ(m.fields().size(), 1u);
}
