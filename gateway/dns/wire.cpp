#include "gateway/dns/wire.hpp"

#include <algorithm>
#include <cstdio>

namespace gw::dns {
namespace {

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string lowered(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = lower(c);
  return out;
}

struct Reader {
  const std::uint8_t* d;
  std::size_t n;
  std::size_t pos = 0;
  bool u16(std::uint16_t& v) {
    if (pos + 2 > n) return false;
    v = static_cast<std::uint16_t>((d[pos] << 8) | d[pos + 1]);
    pos += 2;
    return true;
  }
  bool u32(std::uint32_t& v) {
    if (pos + 4 > n) return false;
    v = (std::uint32_t(d[pos]) << 24) | (std::uint32_t(d[pos + 1]) << 16) | (std::uint32_t(d[pos + 2]) << 8) | d[pos + 3];
    pos += 4;
    return true;
  }
};

void put16(std::vector<std::uint8_t>& out, unsigned v) {
  out.push_back(static_cast<std::uint8_t>(v >> 8));
  out.push_back(static_cast<std::uint8_t>(v & 0xff));
}

}  // namespace

const char* status_name(Status s) {
  switch (s) {
    case Status::ok: return "ok";
    case Status::nodata: return "nodata";
    case Status::nxdomain: return "nxdomain";
    case Status::temperror: return "temperror";
    case Status::permerror: return "permerror";
  }
  return "?";
}

std::optional<std::string> normalize_name(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  if (name.empty() || name.size() > 253) return std::nullopt;
  std::size_t label = 0;
  for (char c : name) {
    if (c == '.') {
      if (label == 0) return std::nullopt;
      label = 0;
    } else if (++label > 63) {
      return std::nullopt;
    }
  }
  if (label == 0) return std::nullopt;
  return lowered(name);
}

std::vector<std::uint8_t> build_query(std::uint16_t id, const std::string& name, Type type, std::uint16_t udp_size) {
  std::vector<std::uint8_t> out;
  out.reserve(name.size() + 40);
  put16(out, id);
  put16(out, 0x0100);  // RD
  put16(out, 1);       // QDCOUNT
  put16(out, 0);
  put16(out, 0);
  put16(out, udp_size ? 1 : 0);  // ARCOUNT
  std::size_t start = 0;
  while (start <= name.size()) {
    auto dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    std::size_t len = dot - start;
    if (len) {
      out.push_back(static_cast<std::uint8_t>(len));
      out.insert(out.end(), name.begin() + start, name.begin() + dot);
    }
    start = dot + 1;
  }
  out.push_back(0);
  put16(out, static_cast<unsigned>(type));
  put16(out, 1);  // IN
  if (udp_size) {
    out.push_back(0);  // root
    put16(out, 41);    // OPT
    put16(out, udp_size);
    put16(out, 0);
    put16(out, 0);  // extended rcode, version, flags
    put16(out, 0);  // rdlen
  }
  return out;
}

std::optional<std::string> read_name(const std::uint8_t* data, std::size_t size, std::size_t& pos) {
  std::string out;
  std::size_t p = pos;
  std::size_t end_in_record = 0;  // where the name ends in the record (after the first pointer)
  bool jumped = false;
  int hops = 0;
  std::size_t wire_len = 1;
  for (;;) {
    if (p >= size) return std::nullopt;
    std::uint8_t len = data[p];
    if ((len & 0xC0) == 0xC0) {
      if (p + 1 >= size) return std::nullopt;
      std::size_t target = (std::size_t(len & 0x3F) << 8) | data[p + 1];
      if (!jumped) end_in_record = p + 2;
      // only backwards: a pointer to itself or forward could loop
      if (target >= p || ++hops > 64) return std::nullopt;
      jumped = true;
      p = target;
      continue;
    }
    if (len & 0xC0) return std::nullopt;  // 0x40 / 0x80: extended / reserved label types
    if (len == 0) {
      if (!jumped) end_in_record = p + 1;
      break;
    }
    if (p + 1 + len > size) return std::nullopt;
    wire_len += len + 1;
    if (wire_len > 255) return std::nullopt;
    if (!out.empty()) out += '.';
    for (std::size_t i = 0; i < len; ++i) {
      char c = static_cast<char>(data[p + 1 + i]);
      out += lower(c);
    }
    p += 1 + len;
  }
  pos = end_in_record;
  return out;
}

std::optional<Parsed> parse_response(const std::uint8_t* data, std::size_t size, const std::string& qname, Type qtype) {
  Reader r{data, size};
  Parsed out;
  std::uint16_t flags, qd, an, ns, ar;
  if (!r.u16(out.id) || !r.u16(flags) || !r.u16(qd) || !r.u16(an) || !r.u16(ns) || !r.u16(ar)) return std::nullopt;
  if (!(flags & 0x8000)) return std::nullopt;  // not a response
  out.truncated = flags & 0x0200;
  out.rcode = flags & 0x000F;
  const std::string want = lowered(qname);
  out.question_matches = qd == 1;
  for (unsigned i = 0; i < qd; ++i) {
    auto n = read_name(data, size, r.pos);
    std::uint16_t t, c;
    if (!n || !r.u16(t) || !r.u16(c)) return std::nullopt;
    if (*n != want || t != static_cast<std::uint16_t>(qtype) || c != 1) out.question_matches = false;
  }
  if (out.truncated) return out;  // the rest may be cut anywhere: the caller retries over TCP

  struct Rr {
    std::string owner;
    std::uint16_t type;
    std::uint32_t ttl;
    std::size_t rdata;
    std::uint16_t rdlen;
  };
  std::vector<Rr> answers, authority;
  for (unsigned sec = 0; sec < 2; ++sec) {
    unsigned count = sec == 0 ? an : ns;
    for (unsigned i = 0; i < count; ++i) {
      auto n = read_name(data, size, r.pos);
      std::uint16_t t, c, len;
      std::uint32_t ttl;
      if (!n || !r.u16(t) || !r.u16(c) || !r.u32(ttl) || !r.u16(len)) return std::nullopt;
      if (r.pos + len > size) return std::nullopt;
      if (ttl > 0x7FFFFFFF) ttl = 0;  // RFC 2181 §8
      if (c == 1) (sec == 0 ? answers : authority).push_back({*n, t, ttl, r.pos, len});
      r.pos += len;
    }
  }
  // additional section is ignored (not even parsed: nothing we use lives there)

  Answer& a = out.answer;
  a.records.clear();
  std::uint32_t min_ttl = 0x7FFFFFFF;
  std::string current = want;
  // follow the CNAME chain
  for (int link = 0; link < 16; ++link) {
    bool followed = false;
    for (auto& rr : answers) {
      if (rr.owner != current || rr.type != static_cast<std::uint16_t>(Type::CNAME) || qtype == Type::CNAME) continue;
      std::size_t p = rr.rdata;
      auto target = read_name(data, size, p);
      if (!target || p != rr.rdata + rr.rdlen) return std::nullopt;
      min_ttl = std::min(min_ttl, rr.ttl);
      current = *target;
      followed = true;
      break;
    }
    if (!followed) break;
  }
  for (auto& rr : answers) {
    if (rr.owner != current || rr.type != static_cast<std::uint16_t>(qtype)) continue;
    const std::uint8_t* d = data + rr.rdata;
    std::string value;
    switch (qtype) {
      case Type::A: {
        if (rr.rdlen != 4) return std::nullopt;
        boost::asio::ip::address_v4::bytes_type b;
        std::copy(d, d + 4, b.begin());
        value = boost::asio::ip::address_v4(b).to_string();
        break;
      }
      case Type::AAAA: {
        if (rr.rdlen != 16) return std::nullopt;
        boost::asio::ip::address_v6::bytes_type b;
        std::copy(d, d + 16, b.begin());
        value = boost::asio::ip::address_v6(b).to_string();
        break;
      }
      case Type::MX: {
        if (rr.rdlen < 3) return std::nullopt;
        unsigned pref = (d[0] << 8) | d[1];
        std::size_t p = rr.rdata + 2;
        auto n = read_name(data, size, p);
        if (!n || p != rr.rdata + rr.rdlen) return std::nullopt;
        value = std::to_string(pref) + " " + *n;
        break;
      }
      case Type::PTR:
      case Type::NS:
      case Type::CNAME: {
        std::size_t p = rr.rdata;
        auto n = read_name(data, size, p);
        if (!n || p != rr.rdata + rr.rdlen) return std::nullopt;
        value = *n;
        break;
      }
      case Type::TXT:
      case Type::SPF: {
        std::size_t p = 0;
        while (p < rr.rdlen) {
          std::size_t l = d[p];
          if (p + 1 + l > rr.rdlen) return std::nullopt;
          value.append(reinterpret_cast<const char*>(d + p + 1), l);
          p += 1 + l;
        }
        break;
      }
    }
    min_ttl = std::min(min_ttl, rr.ttl);
    a.records.push_back(std::move(value));
  }

  if (out.rcode == 0 || out.rcode == 3) {
    if (!a.records.empty()) {
      a.status = Status::ok;
      a.ttl = min_ttl;
    } else {
      a.status = out.rcode == 3 ? Status::nxdomain : Status::nodata;
      a.ttl = 0;
      for (auto& rr : authority) {
        if (rr.type != 6) continue;  // SOA
        std::size_t p = rr.rdata;
        auto mname = read_name(data, size, p);
        auto rname = mname ? read_name(data, size, p) : std::nullopt;
        if (!rname || p + 20 != rr.rdata + rr.rdlen) return std::nullopt;
        Reader s{data, size, p + 16};
        std::uint32_t minimum;
        s.u32(minimum);
        a.ttl = std::min(rr.ttl, minimum);
        out.has_soa = true;
        break;
      }
    }
  } else {
    a.status = Status::temperror;
  }
  return out;
}

std::string reverse_name(const boost::asio::ip::address& addr) {
  std::string out;
  if (addr.is_v4()) {
    auto b = addr.to_v4().to_bytes();
    for (int i = 3; i >= 0; --i) out += std::to_string(b[i]) + ".";
    return out + "in-addr.arpa";
  }
  auto b = addr.to_v6().to_bytes();
  static const char* hex = "0123456789abcdef";
  for (int i = 15; i >= 0; --i) {
    out += hex[b[i] & 0xF];
    out += '.';
    out += hex[b[i] >> 4];
    out += '.';
  }
  return out + "ip6.arpa";
}

}  // namespace gw::dns
