// DNS answers come from the network: parse_response and read_name must never read out of bounds, loop
// or crash on any packet, and what they accept must keep their documented shape (gateway/dns/wire.hpp).
// The input is one response packet; it is parsed for the question it carries (so the CNAME chain, the
// record types and the SOA rule all get exercised), and the input read as a name must survive
// normalize_name -> build_query -> parse_response.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "gateway/dns/wire.hpp"

namespace {

using gw::dns::Type;

bool known_type(std::uint16_t t) {
  switch (t) {
    case 1: case 2: case 5: case 12: case 15: case 16: case 28: case 99: return true;
    default: return false;
  }
}

void check_name(const std::string& n) {
  // At most 255 octets on the wire (RFC 1035 §3.1): 253 characters of text. (A label may itself hold
  // a '.', RFC 2181 §11, so the text form is not checked for empty labels.)
  if (n.size() > 253) std::abort();
}

void check_parsed(const std::uint8_t* data, std::size_t size, const std::string& qname, Type qtype) {
  auto p = gw::dns::parse_response(data, size, qname, qtype);
  if (!p) return;
  if (p->rcode > 15) std::abort();
  if (p->id != ((data[0] << 8) | data[1])) std::abort();
  if (p->truncated) return;
  const auto& a = p->answer;
  if (a.ttl > 0x7FFFFFFF) std::abort();  // RFC 2181 §8: a TTL with the top bit set counts as 0
  if (a.status == gw::dns::Status::ok && a.records.empty()) std::abort();
  if (a.status != gw::dns::Status::ok && !a.records.empty() && a.status != gw::dns::Status::temperror) std::abort();
  if (p->has_soa && a.status == gw::dns::Status::ok) std::abort();
  for (auto& r : a.records) {
    if (qtype == Type::A && r.find('.') == std::string::npos) std::abort();
    if (qtype == Type::AAAA && r.find(':') == std::string::npos) std::abort();
    if (qtype == Type::PTR || qtype == Type::NS || qtype == Type::CNAME) check_name(r);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // 1. The packet's own question (or a fixed one when it has none) decides what is asked for.
  std::string qname = "example.com";
  Type qtype = Type::A;
  std::size_t pos = 12;
  if (size > 12) {
    if (auto n = gw::dns::read_name(data, size, pos)) {
      if (pos > size) std::abort();
      check_name(*n);
      if (!n->empty()) qname = *n;
      if (pos + 2 <= size) {
        std::uint16_t t = static_cast<std::uint16_t>((data[pos] << 8) | data[pos + 1]);
        if (known_type(t)) qtype = static_cast<Type>(t);
      }
    }
  }
  if (size >= 2) check_parsed(data, size, qname, qtype);

  // 2. A name read at every offset: bounded, and `pos` stays inside the packet.
  for (std::size_t off = 0; off < size && off < 64; ++off) {
    std::size_t p = off;
    if (auto n = gw::dns::read_name(data, size, p)) {
      if (p <= off || p > size) std::abort();
      check_name(*n);
    }
  }

  // 3. Round trip: a name normalize_name accepts makes a query whose echo parses and matches.
  std::string text(reinterpret_cast<const char*>(data), std::min<std::size_t>(size, 300));
  if (auto norm = gw::dns::normalize_name(text)) {
    auto q = gw::dns::build_query(0x4242, *norm, Type::TXT, 0);
    q[2] |= 0x80;  // QR: the query echoed back as an empty answer
    auto p = gw::dns::parse_response(q.data(), q.size(), *norm, Type::TXT);
    if (!p || !p->question_matches || p->id != 0x4242 || p->answer.status != gw::dns::Status::nodata) std::abort();
  }
  return 0;
}
