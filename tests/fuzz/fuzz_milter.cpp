// Replies from an untrusted milter: the decoder fed in random splits, every reply parser, and the
// end-of-message edits applied to a message. No crash, no packet above the bound, a reply code only
// when it is a real 4xx/5xx, and the edited message stays parseable.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "gateway/core/message.hpp"
#include "plugins/milter/codec.hpp"
#include "plugins/milter/edits.hpp"

using namespace gw::milter;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::size_t split = data[0];
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  Decoder d;
  std::vector<Packet> edits;
  std::size_t at = 0;
  while (at < in.size()) {
    std::size_t n = std::min(in.size() - at, split + 1);
    d.feed(in.data() + at, n);
    at += n;
    while (auto p = d.next()) {
      if (p->data.size() + 1 > kMaxPacket) std::abort();
      if (p->command == rep::optneg) (void)parse_optneg(p->data);
      if (p->command == rep::replycode) {
        if (auto rc = parse_replycode(p->data)) {
          if (rc->code < 400 || rc->code > 599) std::abort();
          if (rc->text.find_first_of("\r\n") != std::string::npos) std::abort();
        }
      }
      if (p->command == rep::addheader || p->command == rep::insheader || p->command == rep::chgheader ||
          p->command == rep::replbody || p->command == rep::quarantine)
        edits.push_back(*p);
    }
    if (d.error()) break;
  }
  if (d.buffered() > kMaxPacket + 4 + 65536) std::abort();
  gw::Message m;
  m.buffer() = "From: a@b.test\r\nSubject: s\r\nX-A: 1\r\nX-A: 2\r\n\r\nbody\r\n";
  auto r = apply_edits(m, edits, (split & 1) != 0, 1 << 20);
  if (r.ok) {
    // every field still parses as a field, the body is separated by an empty line
    for (auto& f : m.fields())
      if (m.field_raw(f).size() < 3 || m.field_raw(f).substr(m.field_raw(f).size() - 2) != "\r\n") std::abort();
    if (m.size() > (1u << 21) + 2 * in.size() + 4096) std::abort();
  }
  return 0;
}
