#include "plugins/dnsbl/rules.hpp"

#include <cctype>

namespace gw::plugins::dnsbl {
namespace {

constexpr std::uint32_t kLoopbackNet = 0x7f000000;  // 127.0.0.0/8
constexpr std::uint32_t kListErrorNet = 0x7fffff00;  // 127.255.255.0/24

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool host_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
}

// Labels of 1..63 octets, at most 253 octets in all (RFC 1035 §2.3.4), no final dot.
bool fits_dns(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  std::size_t label = 0;
  for (char c : name) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
    } else if (++label > 63) {
      return false;
    }
  }
  return label != 0;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

std::optional<std::uint32_t> parse_ipv4(std::string_view text) {
  std::uint32_t out = 0;
  int parts = 0;
  std::size_t i = 0;
  while (parts < 4) {
    if (i >= text.size() || !std::isdigit(static_cast<unsigned char>(text[i]))) return std::nullopt;
    std::uint32_t octet = 0;
    std::size_t digits = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
      octet = octet * 10 + static_cast<std::uint32_t>(text[i] - '0');
      if (++digits > 3 || octet > 255) return std::nullopt;
      ++i;
    }
    out = (out << 8) | octet;
    ++parts;
    if (parts < 4) {
      if (i >= text.size() || text[i] != '.') return std::nullopt;
      ++i;
    }
  }
  if (i != text.size()) return std::nullopt;
  return out;
}

std::optional<CodeRange> parse_code_range(std::string_view text, std::string& error) {
  auto dash = text.find('-');
  auto first = parse_ipv4(trim(text.substr(0, dash)));
  auto last = dash == std::string_view::npos ? first : parse_ipv4(trim(text.substr(dash + 1)));
  if (!first || !last) {
    error = "not an IPv4 answer or range: \"" + std::string(text) + "\" (expected e.g. \"127.0.0.2\" or \"127.0.0.4-127.0.0.7\")";
    return std::nullopt;
  }
  if (*first > *last) {
    error = "range \"" + std::string(text) + "\" ends before it starts";
    return std::nullopt;
  }
  if ((*first >> 24) != 127 || (*last >> 24) != 127) {
    error = "\"" + std::string(text) + "\" is outside 127.0.0.0/8: such answers never count (RFC 5782 §2.1)";
    return std::nullopt;
  }
  return CodeRange{*first, *last};
}

bool is_list_error(std::uint32_t answer) { return (answer & 0xffffff00) == kListErrorNet; }

bool counts(std::uint32_t answer, const std::vector<CodeRange>& codes) {
  if ((answer & 0xff000000) != kLoopbackNet || is_list_error(answer)) return false;
  if (codes.empty()) return true;
  for (auto& r : codes)
    if (r.contains(answer)) return true;
  return false;
}

std::optional<std::string> client_query_name(const boost::asio::ip::address& addr, std::string_view zone) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string name;
  if (addr.is_v4() || (addr.is_v6() && addr.to_v6().is_v4_mapped())) {
    auto v4 = addr.is_v4() ? addr.to_v4() : boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, addr.to_v6());
    auto b = v4.to_bytes();
    for (int i = 3; i >= 0; --i) name += std::to_string(b[static_cast<std::size_t>(i)]) + ".";
  } else {
    auto b = addr.to_v6().to_bytes();
    name.reserve(64 + zone.size());
    for (int i = 15; i >= 0; --i) {
      name += kHex[b[static_cast<std::size_t>(i)] & 0x0f];
      name += '.';
      name += kHex[b[static_cast<std::size_t>(i)] >> 4];
      name += '.';
    }
  }
  name += zone;
  if (!fits_dns(name)) return std::nullopt;
  return name;
}

std::string sender_domain(std::string_view sender) {
  auto at = sender.rfind('@');
  if (at == std::string_view::npos) return {};
  std::string_view d = sender.substr(at + 1);
  if (!d.empty() && d.back() == '.') d.remove_suffix(1);
  if (d.empty() || d.front() == '[') return {};
  for (char c : d)
    if (!host_char(c)) return {};
  if (!fits_dns(d)) return {};
  return lower(d);
}

std::optional<std::string> domain_query_name(std::string_view domain, std::string_view zone) {
  if (domain.empty()) return std::nullopt;
  std::string name;
  name.reserve(domain.size() + 1 + zone.size());
  name += domain;
  name += '.';
  name += zone;
  if (!fits_dns(name)) return std::nullopt;
  return name;
}

std::optional<std::string> normalize_zone(std::string_view zone) {
  if (!zone.empty() && zone.back() == '.') zone.remove_suffix(1);
  for (char c : zone)
    if (!host_char(c)) return std::nullopt;
  // leave room for the longest query prefix: 32 nibbles of an IPv6 address (64 octets)
  if (!fits_dns(zone) || zone.size() > 253 - 64) return std::nullopt;
  return lower(zone);
}

Outcome classify(const dns::Answer& answer, const std::vector<CodeRange>& codes) {
  Outcome o;
  switch (answer.status) {
    case dns::Status::nxdomain:
    case dns::Status::nodata:
      o.kind = Outcome::Kind::miss;
      return o;
    case dns::Status::temperror:
      o.kind = Outcome::Kind::error;
      o.error = "temperror";
      return o;
    case dns::Status::permerror:
      o.kind = Outcome::Kind::error;
      o.error = "permerror";
      return o;
    case dns::Status::ok:
      break;
  }
  o.kind = Outcome::Kind::miss;
  for (auto& r : answer.records) {
    auto a = parse_ipv4(r);
    if (!a) continue;
    if (counts(*a, codes)) {
      o.kind = Outcome::Kind::hit;
      o.code = r;
      o.list_error.clear();
      return o;
    }
    if (is_list_error(*a) && o.list_error.empty()) o.list_error = r;
  }
  return o;
}

Score score(const std::vector<Scored>& lists) {
  Score s;
  for (auto& l : lists) {
    if (!l.outcome) continue;
    if (l.outcome->kind == Outcome::Kind::hit) {
      s.score += l.weight;
      s.certain += l.weight;
      s.hits.push_back(&l);
      if (!s.top || l.weight > s.top->weight) s.top = &l;
    } else if (l.outcome->kind == Outcome::Kind::error || l.outcome->kind == Outcome::Kind::pending) {
      s.errors = true;
      s.failed.push_back(&l);
      if (l.weight < 0) s.certain += l.weight;
    }
  }
  return s;
}

Decision decide(const Score& s, int threshold, bool tempfail_on_error) {
  if (s.certain >= threshold) return Decision::reject;
  if (s.errors && tempfail_on_error) return Decision::tempfail;
  return s.score >= threshold ? Decision::reject : Decision::pass;
}

}  // namespace gw::plugins::dnsbl
