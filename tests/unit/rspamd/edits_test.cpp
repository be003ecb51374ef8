// rspamd's header edits on a Message (plugins/rspamd/edits.hpp).
#include <gtest/gtest.h>

#include "plugins/rspamd/edits.hpp"

using namespace gw::plugins::rspamd;
using gw::Message;

namespace {
Message msg(std::string text) {
  Message m;
  m.buffer() = std::move(text);
  return m;
}
Answer answer(std::vector<RemoveHeader> rm, std::vector<AddHeader> add) {
  Answer a;
  a.remove_headers = std::move(rm);
  a.add_headers = std::move(add);
  return a;
}
const char* kMsg = "A: 1\r\nX: a\r\nB: 2\r\nx: b\r\nX: c\r\n\r\nbody\r\n";
}  // namespace

TEST(RspamdEdits, RemoveCounts) {
  struct Case {
    std::int64_t count;
    const char* want;
  } cases[] = {
      {0, "A: 1\r\nB: 2\r\n\r\nbody\r\n"},
      {1, "A: 1\r\nB: 2\r\nx: b\r\nX: c\r\n\r\nbody\r\n"},
      {2, "A: 1\r\nX: a\r\nB: 2\r\nX: c\r\n\r\nbody\r\n"},
      {-1, "A: 1\r\nX: a\r\nB: 2\r\nx: b\r\n\r\nbody\r\n"},
      {-3, "A: 1\r\nB: 2\r\nx: b\r\nX: c\r\n\r\nbody\r\n"},
      {4, kMsg},
      {-4, kMsg},
  };
  for (auto& c : cases) {
    Message m = msg(kMsg);
    auto n = apply_edits(answer({{"X", c.count}}, {}), m);
    m.append_field("Z", "z");  // an edit rebuilds the buffer: removed fields are gone from it
    EXPECT_EQ(m.data(), std::string(c.want).insert(std::string(c.want).find("\r\n\r\n") + 2, "Z: z\r\n")) << c.count;
    EXPECT_EQ(n.removed, c.count == 0 ? 3u : (c.count == 4 || c.count == -4 ? 0u : 1u)) << c.count;
  }
}

TEST(RspamdEdits, AddOrders) {
  struct Case {
    std::optional<std::int64_t> order;
    const char* want;
  } cases[] = {
      {std::nullopt, "A: 1\r\nB: 2\r\nC: 3\r\nN: v\r\n\r\nbody\r\n"},
      {0, "N: v\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\nbody\r\n"},
      {2, "A: 1\r\nB: 2\r\nN: v\r\nC: 3\r\n\r\nbody\r\n"},
      {3, "A: 1\r\nB: 2\r\nC: 3\r\nN: v\r\n\r\nbody\r\n"},
      {99, "A: 1\r\nB: 2\r\nC: 3\r\nN: v\r\n\r\nbody\r\n"},
      {-1, "A: 1\r\nB: 2\r\nC: 3\r\nN: v\r\n\r\nbody\r\n"},
      {-2, "A: 1\r\nB: 2\r\nN: v\r\nC: 3\r\n\r\nbody\r\n"},
      {-3, "A: 1\r\nN: v\r\nB: 2\r\nC: 3\r\n\r\nbody\r\n"},
      {-4, "A: 1\r\nB: 2\r\nC: 3\r\nN: v\r\n\r\nbody\r\n"},  // past the top: after the last, as rspamd does
  };
  for (auto& c : cases) {
    Message m = msg("A: 1\r\nB: 2\r\nC: 3\r\n\r\nbody\r\n");
    apply_edits(answer({}, {{"N", "v", c.order}}), m);
    EXPECT_EQ(m.data(), c.want) << (c.order ? *c.order : 12345);
  }
}

TEST(RspamdEdits, RemoveFirstThenAddCountingKeptFieldsOnly) {
  Message m = msg("A: 1\r\nX: a\r\nB: 2\r\n\r\nbody\r\n");
  m.remove_field(0);  // an earlier plugin removed A
  apply_edits(answer({{"X", 0}}, {{"N", "top", 0}, {"M", "second", 1}, {"X", "new", std::nullopt}}), m);
  EXPECT_EQ(m.data(), "N: top\r\nM: second\r\nB: 2\r\nX: new\r\n\r\nbody\r\n");
}

TEST(RspamdEdits, SubjectReplacedInPlaceOrAdded) {
  Answer a;
  a.action = Action::rewrite_subject;
  a.subject = "[SPAM] hi";
  Message m = msg("A: 1\r\nSubject: hi\r\nB: 2\r\nSubject: second\r\n\r\nbody\r\n");
  EXPECT_TRUE(apply_edits(a, m).subject);
  EXPECT_EQ(m.data(), "A: 1\r\nSubject: [SPAM] hi\r\nB: 2\r\nSubject: second\r\n\r\nbody\r\n");
  Message none = msg("A: 1\r\n\r\nbody\r\n");
  apply_edits(a, none);
  EXPECT_EQ(none.data(), "A: 1\r\nSubject: [SPAM] hi\r\n\r\nbody\r\n");
  a.action = Action::no_action;  // a subject without the action changes nothing
  Message same = msg("Subject: hi\r\n\r\nbody\r\n");
  EXPECT_FALSE(apply_edits(a, same).subject);
  EXPECT_EQ(same.data(), "Subject: hi\r\n\r\nbody\r\n");
}

TEST(RspamdEdits, MessageWithoutHeaders) {
  Message m = msg("no header here\r\n");
  apply_edits(answer({{"X", 0}}, {{"N", "v", 5}}), m);
  EXPECT_EQ(m.header("N").value(), "v");
  EXPECT_EQ(m.body(), "no header here\r\n");
}

TEST(RspamdEdits, SpamHeaderOnlyOnce) {
  Answer a;
  a.action = Action::add_header;
  EXPECT_TRUE(needs_spam_header(a));
  a.add_headers.push_back({"x-spam", "Yes", std::nullopt});
  EXPECT_FALSE(needs_spam_header(a));
  a.add_headers.clear();
  a.action = Action::rewrite_subject;
  EXPECT_FALSE(needs_spam_header(a));
}
