#include "gateway/smtp/proxy_protocol.hpp"

#include <charconv>
#include <cstring>

namespace gw::smtp {
namespace {

constexpr char kV2Signature[12] = {'\r', '\n', '\r', '\n', '\0', '\r', '\n', 'Q', 'U', 'I', 'T', '\n'};
constexpr std::size_t kV1Max = 107;

ProxyHeader invalid(std::string why) {
  ProxyHeader h;
  h.status = ProxyHeader::Status::invalid;
  h.error = std::move(why);
  return h;
}

bool parse_port(std::string_view s, std::uint16_t& port) {
  if (s.empty() || s.size() > 5 || (s.size() > 1 && s[0] == '0')) return false;
  unsigned v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v > 65535) return false;
  port = static_cast<std::uint16_t>(v);
  return true;
}

ProxyHeader parse_v1(std::string_view data) {
  std::size_t eol = data.find("\r\n");
  if (eol == std::string_view::npos) {
    if (data.size() >= kV1Max) return invalid("PROXY v1 line too long");
    return {};
  }
  if (eol + 2 > kV1Max) return invalid("PROXY v1 line too long");
  std::string_view line = data.substr(0, eol);
  // "PROXY" SP proto SP src SP dst SP sport SP dport, or "PROXY UNKNOWN ..."
  std::string_view parts[6];
  std::size_t n = 0, pos = 0;
  while (n < 6) {
    std::size_t sp = line.find(' ', pos);
    parts[n++] = line.substr(pos, sp == std::string_view::npos ? std::string_view::npos : sp - pos);
    if (sp == std::string_view::npos) break;
    pos = sp + 1;
  }
  ProxyHeader h;
  h.length = eol + 2;
  if (n >= 2 && parts[1] == "UNKNOWN") {
    h.status = ProxyHeader::Status::ok;
    return h;
  }
  if (n != 6 || pos == 0 || line.find(' ', pos) != std::string_view::npos) return invalid("malformed PROXY v1 line");
  bool v4 = parts[1] == "TCP4";
  if (!v4 && parts[1] != "TCP6") return invalid("unknown PROXY v1 protocol");
  boost::system::error_code ec;
  auto src = boost::asio::ip::make_address(std::string(parts[2]), ec);
  if (ec || src.is_v4() != v4) return invalid("bad PROXY v1 source address");
  auto dst = boost::asio::ip::make_address(std::string(parts[3]), ec);
  if (ec || dst.is_v4() != v4) return invalid("bad PROXY v1 destination address");
  std::uint16_t sport = 0, dport = 0;
  if (!parse_port(parts[4], sport) || !parse_port(parts[5], dport)) return invalid("bad PROXY v1 port");
  h.status = ProxyHeader::Status::ok;
  h.has_address = true;
  h.source = src;
  h.source_port = sport;
  return h;
}

ProxyHeader parse_v2(std::string_view data) {
  if (data.size() < 16) return {};
  auto byte = [&](std::size_t i) { return static_cast<std::uint8_t>(data[i]); };
  const std::uint8_t ver_cmd = byte(12);
  if ((ver_cmd >> 4) != 2) return invalid("unsupported PROXY v2 version");
  const std::uint8_t cmd = ver_cmd & 0x0f;
  if (cmd > 1) return invalid("unknown PROXY v2 command");
  const std::uint8_t fam = byte(13);
  const std::size_t len = (static_cast<std::size_t>(byte(14)) << 8) | byte(15);
  if (data.size() < 16 + len) return {};
  ProxyHeader h;
  h.length = 16 + len;
  h.status = ProxyHeader::Status::ok;
  if (cmd == 0) return h;  // LOCAL: a health check from the proxy itself
  const std::uint8_t af = fam >> 4, proto = fam & 0x0f;
  if (af == 0 || proto == 0) return h;  // UNSPEC
  if (proto != 1 && proto != 2) return invalid("unknown PROXY v2 transport");
  const char* p = data.data() + 16;
  if (af == 1) {
    if (len < 12) return invalid("short PROXY v2 IPv4 block");
    boost::asio::ip::address_v4::bytes_type b;
    std::memcpy(b.data(), p, 4);
    h.source = boost::asio::ip::address_v4(b);
    h.source_port = static_cast<std::uint16_t>((byte(16 + 8) << 8) | byte(16 + 9));
  } else if (af == 2) {
    if (len < 36) return invalid("short PROXY v2 IPv6 block");
    boost::asio::ip::address_v6::bytes_type b;
    std::memcpy(b.data(), p, 16);
    h.source = boost::asio::ip::address_v6(b);
    h.source_port = static_cast<std::uint16_t>((byte(16 + 32) << 8) | byte(16 + 33));
  } else if (af == 3) {
    return h;  // AF_UNIX: no IP address to take
  } else {
    return invalid("unknown PROXY v2 address family");
  }
  h.has_address = true;
  return h;
}

}  // namespace

std::size_t proxy_bytes_wanted(std::string_view data) {
  constexpr std::size_t v2_fixed = sizeof kV2Signature + 4;
  const std::size_t sig = std::min(data.size(), sizeof kV2Signature);
  if (data.size() >= 8 && std::memcmp(data.data(), kV2Signature, sig) == 0) {
    if (data.size() < v2_fixed) return v2_fixed - data.size();
    const std::size_t len = (static_cast<std::size_t>(static_cast<std::uint8_t>(data[14])) << 8) |
                            static_cast<std::uint8_t>(data[15]);
    return v2_fixed + len > data.size() ? v2_fixed + len - data.size() : 1;
  }
  if (data.size() < 8) return 8 - data.size();  // "PROXY T" or the v2 signature's first 8 bytes
  return 1;                                     // v1: up to its CRLF, a byte at a time (<= 107)
}

ProxyHeader parse_proxy_header(std::string_view data) {
  const std::size_t sig = std::min(data.size(), sizeof kV2Signature);
  if (sig > 0 && std::memcmp(data.data(), kV2Signature, sig) == 0) {
    if (data.size() < sizeof kV2Signature) return {};
    return parse_v2(data);
  }
  static constexpr std::string_view v1 = "PROXY ";
  const std::size_t cmp = std::min(data.size(), v1.size());
  if (data.substr(0, cmp) != v1.substr(0, cmp)) return invalid("no PROXY protocol header");
  if (data.size() < v1.size()) return {};
  return parse_v1(data);
}

}  // namespace gw::smtp
