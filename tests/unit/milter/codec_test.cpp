#include <gtest/gtest.h>

#include "plugins/milter/client.hpp"
#include "plugins/milter/codec.hpp"
#include "plugins/milter/edits.hpp"

using namespace gw::milter;

namespace {
std::string be32(std::uint32_t v) {
  return std::string{static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}
}  // namespace

TEST(MilterCodec, EncodesCommands) {
  EXPECT_EQ(packet(cmd::abort, {}), std::string("\0\0\0\1A", 5));
  EXPECT_EQ(optneg(0x31, 0x3f), be32(13) + "O" + be32(6) + be32(0x31) + be32(0x3f));
  EXPECT_EQ(connect("mx.test", '4', 2525, "192.0.2.1"),
            be32(1 + 8 + 1 + 2 + 10) + "C" + std::string("mx.test\0" "4\x09\xdd" "192.0.2.1\0", 21));
  EXPECT_EQ(connect("unknown", 'U', 0, ""), be32(1 + 8 + 1) + "C" + std::string("unknown\0U", 9));
  EXPECT_EQ(envelope(cmd::mail, {"<a@b>", "SIZE=10"}), be32(15) + "M" + std::string("<a@b>\0SIZE=10\0", 14));
  EXPECT_EQ(macros(cmd::rcpt, {{"{rcpt_addr}", "x@y"}}), be32(1 + 1 + 12 + 4) + "D" + std::string("R{rcpt_addr}\0x@y\0", 17));
  EXPECT_EQ(header("Subject", "hi"), be32(12) + "L" + std::string("Subject\0hi\0", 11));
  // a NUL inside a value ends it on our side, never shifting the fields that follow
  EXPECT_EQ(helo(std::string_view("a\0b", 3)), be32(3) + "H" + std::string("a\0", 2));
  EXPECT_EQ(packet_head(cmd::body, 65535), be32(65536) + "B");
}

TEST(MilterCodec, DecodesIncrementallyAndBoundsLengths) {
  Decoder d;
  std::string two = packet(rep::cont, {}) + packet(rep::replycode, std::string("550 5.7.1 no\0", 13));
  for (char c : two) d.feed(&c, 1);
  auto a = d.next();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->command, 'c');
  auto b = d.next();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->command, 'y');
  EXPECT_FALSE(d.next());
  EXPECT_FALSE(d.error());

  Decoder huge;
  std::string h = be32(0xffffffff) + "c";
  huge.feed(h.data(), h.size());
  EXPECT_FALSE(huge.next());
  EXPECT_TRUE(huge.error());
  Decoder zero;
  std::string z = be32(0);
  zero.feed(z.data(), z.size());
  EXPECT_FALSE(zero.next());
  EXPECT_TRUE(zero.error());
  Decoder partial;  // a length just under the bound waits for data, never errors
  std::string p = be32(kMaxPacket) + "b";
  partial.feed(p.data(), p.size());
  EXPECT_FALSE(partial.next());
  EXPECT_FALSE(partial.error());
}

TEST(MilterCodec, ParsesOptnegWithSymlists) {
  std::string d = be32(6) + be32(0x11) + be32(0x400) + be32(1) + std::string("{tls_version} j\0", 16);
  auto o = parse_optneg(d);
  ASSERT_TRUE(o);
  EXPECT_EQ(o->version, 6u);
  EXPECT_EQ(o->actions, 0x11u);
  EXPECT_EQ(o->protocol, 0x400u);
  ASSERT_EQ(o->symlists.size(), 1u);
  EXPECT_EQ(o->symlists[0].second, (std::vector<std::string>{"{tls_version}", "j"}));
  EXPECT_FALSE(parse_optneg("short"));
  EXPECT_FALSE(parse_optneg(be32(6) + be32(0) + be32(0) + be32(1) + "no-nul"));
}

TEST(MilterCodec, ReplyCodes) {
  auto r = parse_replycode(std::string("554 5.7.0 go away\0", 18));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->code, 554);
  EXPECT_EQ(r->enhanced, "5.7.0");
  EXPECT_EQ(r->text, "go away");
  auto ml = parse_replycode("451-4.7.1 first\r\n451 4.7.1 second");
  ASSERT_TRUE(ml);
  EXPECT_EQ(ml->code, 451);
  EXPECT_EQ(ml->text, "first second");
  auto plain = parse_replycode("550 no enhanced code");
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->enhanced, "");
  EXPECT_FALSE(parse_replycode("250 2.0.0 ok"));  // only 4xx/5xx
  EXPECT_FALSE(parse_replycode("650 nope"));
  EXPECT_FALSE(parse_replycode("55x 5.7.1 x"));
  EXPECT_FALSE(parse_replycode("550x"));
  EXPECT_FALSE(parse_replycode(""));
  EXPECT_FALSE(parse_replycode("550-5.7.1 a\r\n450 4.7.1 b"));  // mixed codes
  auto cls = parse_replycode("550 4.7.1 wrong class");           // enhanced class must match
  ASSERT_TRUE(cls);
  EXPECT_EQ(cls->enhanced, "");
}

TEST(MilterCodec, HeaderEditsAndFolding) {
  auto e = parse_header_edit(rep::chgheader, be32(2) + std::string("X-A\0\0", 5));
  ASSERT_TRUE(e);
  EXPECT_EQ(e->index, 2u);
  EXPECT_EQ(e->value, "");
  EXPECT_FALSE(parse_header_edit(rep::addheader, std::string("Bad Name\0v\0", 11)));
  EXPECT_FALSE(parse_header_edit(rep::addheader, std::string("X-A\0unterminated", 16)));
  EXPECT_FALSE(parse_header_edit(rep::insheader, "ab"));
  EXPECT_EQ(fold_value("a\nb"), "a\r\n\tb");
  EXPECT_EQ(fold_value("a\r\n c\n"), "a\r\n c");
  EXPECT_EQ(fold_value("a\n\n\nb"), "a\r\n\tb");  // never an empty line inside the header
  EXPECT_EQ(fold_value("x\ry"), "xy");
}

TEST(MilterCodec, Addresses) {
  auto u = Address::parse("unix:/run/m.sock");
  ASSERT_TRUE(u);
  EXPECT_TRUE(u->unix_socket);
  auto i = Address::parse("inet:127.0.0.1:7357");
  ASSERT_TRUE(i);
  EXPECT_EQ(i->host, "127.0.0.1");
  EXPECT_EQ(i->port, 7357);
  auto v6 = Address::parse("inet6:[::1]:8891");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  auto sm = Address::parse("inet:8891@localhost");
  ASSERT_TRUE(sm);
  EXPECT_EQ(sm->host, "localhost");
  EXPECT_FALSE(Address::parse("inet:127.0.0.1"));
  EXPECT_FALSE(Address::parse("inet:127.0.0.1:0"));
  EXPECT_FALSE(Address::parse("inet:127.0.0.1:70000"));
  EXPECT_FALSE(Address::parse("tcp:1.2.3.4:5"));
  EXPECT_FALSE(Address::parse("unix:"));
}

namespace {
Packet pk(char c, std::string d) { return Packet{c, std::move(d)}; }
std::string head(const gw::Message& m) { return m.data().substr(0, m.body_offset()); }
}  // namespace

TEST(MilterEdits, IndicesCountTheFieldsTheMilterSaw) {
  gw::Message m;
  m.buffer() = "A: 1\r\nForged: x\r\nB: 2\r\nB: 3\r\n\r\nbody\r\n";
  m.remove_field(1);  // removed before the milter ran: not shown, not counted
  auto r = apply_edits(m,
                       {pk(rep::insheader, be32(0) + std::string("Top\0t\0", 6)),
                        pk(rep::insheader, be32(2) + std::string("Mid\0m\0", 6)),
                        pk(rep::chgheader, be32(2) + std::string("b\0three\0", 8)),
                        pk(rep::chgheader, be32(5) + std::string("B\0\0", 3)),  // past the last: nothing
                        pk(rep::chgheader, be32(1) + std::string("New\0n\0", 6)),  // absent: added
                        pk(rep::addheader, std::string("End\0e\0", 6))},
                       false, 1 << 20);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(head(m), "Top: t\r\nA: 1\r\nMid: m\r\nB: 2\r\nB: three\r\nNew: n\r\nEnd: e\r\n\r\n");
  EXPECT_EQ(m.body(), "body\r\n");
}

TEST(MilterEdits, DeleteBodyQuarantineAndLeadingSpace) {
  gw::Message m;
  m.buffer() = "A: 1\r\nA: 2\r\n\r\nold\r\n";
  auto r = apply_edits(m,
                       {pk(rep::chgheader, be32(1) + std::string("A\0\0", 3)),
                        pk(rep::addheader, std::string("L\0 spaced\0", 10)),
                        pk(rep::replbody, "new\nbody"), pk(rep::replbody, " more\n"),
                        pk(rep::quarantine, std::string("bad\r\nthing\0", 11))},
                       true, 1 << 20);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(m.data(), "A: 2\r\nL: spaced\r\n\r\nnew\r\nbody more\r\n");
  ASSERT_EQ(r.quarantine.size(), 1u);
  EXPECT_EQ(r.quarantine[0], "bad  thing");
}

TEST(MilterEdits, ABrokenListLeavesTheMessageUntouched) {
  gw::Message m;
  m.buffer() = "A: 1\r\n\r\nbody\r\n";
  const std::string before = m.data();
  auto r = apply_edits(m, {pk(rep::addheader, std::string("X\0v\0", 4)), pk(rep::chgfrom, "<x@y>")}, false, 1 << 20);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(m.data(), before);
  auto big = apply_edits(m, {pk(rep::replbody, std::string(100, 'x'))}, false, 50);
  EXPECT_FALSE(big.ok);
  EXPECT_EQ(m.data(), before);
}

TEST(MilterEdits, ValuesAsTheMilterGetsThem) {
  gw::Message m;
  m.buffer() = "Subject:  two\r\n\tlines\r\n\r\n";
  const auto& f = m.fields()[0];
  EXPECT_EQ(milter_value(m, f, false), "two\n\tlines");
  EXPECT_EQ(milter_value(m, f, true), "  two\n\tlines");
}
