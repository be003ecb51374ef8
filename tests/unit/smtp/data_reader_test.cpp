#include <gtest/gtest.h>

#include "gateway/smtp/data_reader.hpp"

using gw::smtp::DataReader;


static std::string read_all(const std::string& in, bool* done = nullptr, size_t* used = nullptr, size_t chunk = 0,
                            std::uint64_t* normalised = nullptr) {
  std::string out;
  DataReader r(out, 1 << 20);
  size_t pos = 0;
  while (pos < in.size() && !r.done()) {
    size_t n = chunk ? std::min(chunk, in.size() - pos) : in.size() - pos;
    pos += r.feed(in.data() + pos, n);
  }
  if (done) *done = r.done();
  if (used) *used = pos;
  if (normalised) *normalised = r.normalised();
  return out;
}

TEST(DataReader, EndsOnlyAtCrlfDotCrlf) {
  bool done = false;
  size_t used = 0;
  std::string in = "Subject: x\r\n\r\nhello\r\n.\r\nMAIL FROM:<a@b>\r\n";
  EXPECT_EQ(read_all(in, &done, &used), "Subject: x\r\n\r\nhello\r\n");
  EXPECT_TRUE(done);
  EXPECT_EQ(in.substr(used), "MAIL FROM:<a@b>\r\n");
}

TEST(DataReader, EmptyMessage) {
  bool done = false;
  EXPECT_EQ(read_all(".\r\n", &done), "");
  EXPECT_TRUE(done);
}

TEST(DataReader, UnstuffsDots) {
  EXPECT_EQ(read_all("..a\r\n...\r\n.\r\n"), ".a\r\n..\r\n");
}

TEST(DataReader, SmugglingPayloadsAreContent) {
  for (std::string eod : {"\n.\n", "\r.\r", "\n.\r\n", "\r\n.\r", "\r\n.\n"}) {
    bool done = false;
    size_t used = 0;
    std::uint64_t norm = 0;
    std::string in = "a" + eod + "MAIL FROM:<evil@x>\r\n.\r\n";
    std::string out = read_all(in, &done, &used, 0, &norm);
    EXPECT_TRUE(done);
    EXPECT_EQ(used, in.size()) << "payload must not end the data early";
    EXPECT_GT(norm, 0u);
    EXPECT_EQ(out.find('\n') == std::string::npos ? 0 : 1, 1);
    // every LF in the output is preceded by CR, every CR followed by LF
    for (size_t i = 0; i < out.size(); ++i) {
      if (out[i] == '\n') { EXPECT_EQ(out[i - 1], '\r'); }
      if (out[i] == '\r') { EXPECT_EQ(out[i + 1], '\n'); }
    }
    EXPECT_NE(out.find("MAIL FROM:<evil@x>"), std::string::npos);
  }
}

TEST(DataReader, ByteAtATimeSameAsWhole) {
  std::string in = "x\r\n..y\r\nz\rw\nq\r\n\r\n.\r\n";
  EXPECT_EQ(read_all(in, nullptr, nullptr, 1), read_all(in));
}

TEST(DataReader, LineLimitCountsAfterUnstuffing) {
  std::string ok = "." + std::string(998, 'a') + "\r\n.\r\n";  // 999 on the wire, 998 after unstuffing
  std::string out;
  DataReader r(out, 1 << 20);
  r.feed(ok.data(), ok.size());
  EXPECT_TRUE(r.done());
  EXPECT_FALSE(r.line_too_long());
  std::string bad = std::string(999, 'a') + "\r\n.\r\n";
  std::string out2;
  DataReader r2(out2, 1 << 20);
  r2.feed(bad.data(), bad.size());
  EXPECT_TRUE(r2.done());
  EXPECT_TRUE(r2.line_too_long());
}

TEST(DataReader, TooBigKeepsReadingToTheEnd) {
  std::string in = std::string(5000, 'a') + "\r\n.\r\nNEXT";
  std::string out;
  DataReader r(out, 1000, 100000);
  size_t used = r.feed(in.data(), in.size());
  EXPECT_TRUE(r.done());
  EXPECT_TRUE(r.too_big());
  EXPECT_EQ(in.substr(used), "NEXT");
  EXPECT_LE(out.size(), 1000u);
}

// Found by fuzz.data_reader: a line over the limit fed whole or byte by byte kept different content.
TEST(DataReader, OverLongLineKeepsTheSameContentHoweverSplit) {
  const std::string in = "ok\r\n" + std::string(1200, 'x') + "\r\nmore\r\n.\r\n";
  std::string whole, parts;
  DataReader a(whole, 1 << 20), b(parts, 1 << 20);
  a.feed(in.data(), in.size());
  for (std::size_t i = 0; i < in.size() && !b.done(); ++i) b.feed(in.data() + i, 1);
  EXPECT_TRUE(a.line_too_long());
  EXPECT_TRUE(b.line_too_long());
  EXPECT_EQ(whole, parts);
  EXPECT_EQ(whole, "ok\r\n" + std::string(998, 'x'));
}
