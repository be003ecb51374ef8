// The rspamd answer -> decision mapping (plugins/rspamd/answer.hpp): pure, no I/O.
#include <gtest/gtest.h>

#include "plugins/rspamd/answer.hpp"
#include "plugins/rspamd/http_client.hpp"

using namespace gw::plugins::rspamd;
using gw::Verdict;

namespace {
Answer ok(std::string_view body) {
  Parsed p = parse_answer(body);
  EXPECT_TRUE(p.answer) << p.error << " for " << body;
  return p.answer ? *p.answer : Answer{};
}
std::string bad(std::string_view body) {
  Parsed p = parse_answer(body);
  EXPECT_FALSE(p.answer) << body;
  return p.error;
}
}  // namespace

TEST(RspamdAnswer, EveryActionMapsToItsVerdict) {
  struct Case {
    const char* action;
    Verdict::Kind kind;
    int code;
  } cases[] = {
      {"no action", Verdict::Kind::proceed, 0},       {"add header", Verdict::Kind::proceed, 0},
      {"rewrite subject", Verdict::Kind::proceed, 0}, {"greylist", Verdict::Kind::tempfail, 451},
      {"soft reject", Verdict::Kind::tempfail, 451},  {"reject", Verdict::Kind::reject, 550},
  };
  for (auto& c : cases) {
    Answer a = ok(std::string("{\"action\": \"") + c.action + "\"}");
    EXPECT_STREQ(action_name(a.action), c.action);
    Verdict v = verdict_for(a);
    EXPECT_EQ(v.kind, c.kind) << c.action;
    EXPECT_EQ(v.code, c.code) << c.action;
    if (c.code) {
      EXPECT_EQ(v.enhanced, c.code == 550 ? "5.7.1" : "4.7.1");
    }
  }
}

TEST(RspamdAnswer, RejectTextIsSmtpMessageCleaned) {
  Answer a = ok(R"({"action":"reject","messages":{"smtp_message":"  Spam\r\nfrom you\u0000 "}})");
  EXPECT_EQ(verdict_for(a).text, "Spam from you");
  EXPECT_EQ(verdict_for(ok(R"({"action":"reject"})")).text, "Spam message rejected");
  EXPECT_EQ(verdict_for(ok(R"({"action":"reject","messages":{"smtp_message":"\r\n"}})")).text, "Spam message rejected");
  EXPECT_EQ(verdict_for(ok(R"({"action":"reject","messages":{"smtp_message":42}})")).text, "Spam message rejected");
  std::string longer(1000, 'x');
  EXPECT_EQ(verdict_for(ok(R"({"action":"reject","messages":{"smtp_message":")" + longer + "\"}}")).text.size(), 400u);
}

TEST(RspamdAnswer, ScoresAndSymbols) {
  Answer a = ok(R"({"action":"add header","score":7.5,"required_score":15,
                    "symbols":{"A":{"name":"A","score":1.5},"B":{"score":-2},"C":{"name":"C"},"D":3}})");
  EXPECT_DOUBLE_EQ(a.score, 7.5);
  EXPECT_DOUBLE_EQ(a.required_score, 15);
  ASSERT_EQ(a.symbols.size(), 4u);
  EXPECT_EQ(a.symbols[0], (std::pair<std::string, double>{"A", 1.5}));
  EXPECT_EQ(a.symbols[1], (std::pair<std::string, double>{"B", -2}));
  EXPECT_EQ(a.symbols[2], (std::pair<std::string, double>{"C", 0}));
  EXPECT_EQ(a.symbols[3], (std::pair<std::string, double>{"D", 3}));
  Answer b = ok(R"({"action":"no action","score":"high","symbols":[1,2]})");
  EXPECT_DOUBLE_EQ(b.score, 0);
  EXPECT_TRUE(b.symbols.empty());
}

TEST(RspamdAnswer, BadAnswers) {
  EXPECT_NE(bad("").find("not JSON"), std::string::npos);
  EXPECT_NE(bad("{\"action\":").find("not JSON"), std::string::npos);
  EXPECT_EQ(bad("[\"reject\"]"), "not a JSON object");
  EXPECT_EQ(bad("\"reject\""), "not a JSON object");
  EXPECT_EQ(bad("{}"), "no action");
  EXPECT_EQ(bad("{\"action\": 5}"), "no action");
  EXPECT_EQ(bad("{\"action\": \"discard\"}"), "unknown action \"discard\"");
  EXPECT_EQ(bad("{\"action\": \"Reject\"}"), "unknown action \"Reject\"");
  std::string deep(100, '[');
  EXPECT_NE(bad("{\"a\":" + deep + "}").find("not JSON"), std::string::npos);
}

TEST(RspamdAnswer, MilterHeadersAllForms) {
  Answer a = ok(R"({"action":"no action","milter":{
      "remove_headers":{"X-A":0,"X-B":2,"X-C":-1,"X-D":1.9,"Bad Name":0,"X-E":"all"},
      "add_headers":{"X-S":"v","X-O":{"value":"o","order":0},"X-I":{"value":"i","index":-2},
                     "X-L":["l1",{"value":"l2","order":3},7],"X-N":{"order":1},"Bad:Name":"x"}}})");
  ASSERT_EQ(a.remove_headers.size(), 4u);
  EXPECT_EQ(a.remove_headers[0].name, "X-A");
  EXPECT_EQ(a.remove_headers[0].count, 0);
  EXPECT_EQ(a.remove_headers[1].count, 2);
  EXPECT_EQ(a.remove_headers[2].count, -1);
  EXPECT_EQ(a.remove_headers[3].count, 1);  // a float is truncated
  ASSERT_EQ(a.add_headers.size(), 5u);
  EXPECT_EQ(a.add_headers[0].name, "X-S");
  EXPECT_FALSE(a.add_headers[0].order);
  EXPECT_EQ(a.add_headers[1].order, 0);
  EXPECT_EQ(a.add_headers[2].order, -2);
  EXPECT_EQ(a.add_headers[3].value, "l1");
  EXPECT_EQ(a.add_headers[4].value, "l2");
  EXPECT_EQ(a.add_headers[4].order, 3);
  EXPECT_EQ(a.ignored.size(), 5u);  // Bad Name, X-E, the 7 in X-L, X-N without value, Bad:Name
}

TEST(RspamdAnswer, FieldNamesAndValues) {
  EXPECT_TRUE(valid_field_name("X-Spam"));
  EXPECT_FALSE(valid_field_name(""));
  EXPECT_FALSE(valid_field_name("X Spam"));
  EXPECT_FALSE(valid_field_name("X:Spam"));
  EXPECT_FALSE(valid_field_name("X-\xc3\xa9"));
  EXPECT_FALSE(valid_field_name(std::string(999, 'a')));
  EXPECT_EQ(clean_field_value("plain"), "plain");
  EXPECT_EQ(clean_field_value("a\r\n\tb"), "a\r\n\tb");
  EXPECT_EQ(clean_field_value("a\n b"), "a\r\n b");
  EXPECT_EQ(clean_field_value("a\r\nX-Injected: 1"), "a X-Injected: 1");
  EXPECT_EQ(clean_field_value("a\rb\nc"), "a b c");
  EXPECT_EQ(clean_field_value(std::string("a\0b", 3)), "ab");
  EXPECT_EQ(clean_field_value("\r\n\t lead and trail \r\n\t"), "lead and trail");
  EXPECT_EQ(clean_field_value("a \r\n \r\n\tb"), "a\r\n\tb");  // no whitespace-only line
  EXPECT_EQ(clean_field_value("caf\xc3\xa9"), "caf\xc3\xa9");
}

TEST(RspamdAnswer, SubjectIsCleaned) {
  Answer a = ok(R"({"action":"rewrite subject","subject":"*** SPAM ***\r\nBcc: x@y"})");
  EXPECT_EQ(a.subject, "*** SPAM *** Bcc: x@y");
}

TEST(RspamdUrl, Parse) {
  Url u = parse_url("http://127.0.0.1:11333");
  EXPECT_EQ(u.host, "127.0.0.1");
  EXPECT_EQ(u.port, 11333);
  EXPECT_EQ(u.path, "");
  EXPECT_EQ(u.host_header, "127.0.0.1:11333");
  u = parse_url("http://rspamd.internal/filter/");
  EXPECT_EQ(u.host, "rspamd.internal");
  EXPECT_EQ(u.port, 11333);
  EXPECT_EQ(u.path, "/filter");
  u = parse_url("http://[::1]:8080");
  EXPECT_EQ(u.host, "::1");
  EXPECT_EQ(u.port, 8080);
  for (const char* bad : {"https://x", "x:11333", "http://", "http://:80", "http://h:0", "http://h:70000",
                          "http://h:8a", "http://u@h", "http://h/p?q", "http://[::1", "http://h:"})
    EXPECT_THROW(parse_url(bad), std::invalid_argument) << bad;
}
