#include "gateway/config/network.hpp"

#include <charconv>

namespace gw::config {
namespace asio_ip = boost::asio::ip;

namespace {
std::array<std::uint8_t, 16> to_bytes(const asio_ip::address& addr, bool& v6) {
  std::array<std::uint8_t, 16> out{};
  if (addr.is_v4()) {
    v6 = false;
    auto b = addr.to_v4().to_bytes();
    std::copy(b.begin(), b.end(), out.begin());
  } else {
    v6 = true;
    out = addr.to_v6().to_bytes();
  }
  return out;
}
}  // namespace

asio_ip::address unmap(const asio_ip::address& addr) {
  if (addr.is_v6() && addr.to_v6().is_v4_mapped())
    return asio_ip::make_address_v4(asio_ip::v4_mapped, addr.to_v6());
  return addr;
}

std::optional<Network> Network::parse(std::string_view text) {
  std::string_view host = text;
  std::optional<unsigned> prefix;
  if (auto slash = text.find('/'); slash != std::string_view::npos) {
    host = text.substr(0, slash);
    unsigned p = 0;
    auto tail = text.substr(slash + 1);
    auto [ptr, ec] = std::from_chars(tail.data(), tail.data() + tail.size(), p);
    if (ec != std::errc() || ptr != tail.data() + tail.size() || tail.empty()) return std::nullopt;
    prefix = p;
  }
  boost::system::error_code ec;
  auto addr = asio_ip::make_address(std::string(host), ec);
  if (ec) return std::nullopt;
  Network n;
  n.bytes_ = to_bytes(unmap(addr), n.v6_);
  const unsigned max = n.v6_ ? 128 : 32;
  n.prefix_ = prefix.value_or(max);
  if (n.prefix_ > max) return std::nullopt;
  return n;
}

bool Network::contains(const asio_ip::address& addr) const {
  bool v6 = false;
  auto b = to_bytes(unmap(addr), v6);
  if (v6 != v6_) return false;
  unsigned full = prefix_ / 8, rest = prefix_ % 8;
  for (unsigned i = 0; i < full; ++i)
    if (b[i] != bytes_[i]) return false;
  if (rest) {
    std::uint8_t mask = static_cast<std::uint8_t>(0xff << (8 - rest));
    if ((b[full] & mask) != (bytes_[full] & mask)) return false;
  }
  return true;
}

std::string Network::to_string() const {
  asio_ip::address addr;
  if (v6_) addr = asio_ip::address_v6(bytes_);
  else addr = asio_ip::address_v4({bytes_[0], bytes_[1], bytes_[2], bytes_[3]});
  return addr.to_string() + "/" + std::to_string(prefix_);
}

std::optional<Endpoint> Endpoint::parse(std::string_view text) {
  Endpoint e;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') return std::nullopt;
    e.host = std::string(text.substr(1, close - 1));
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos || text.find(':') != colon) return std::nullopt;
    e.host = std::string(text.substr(0, colon));
    port = text.substr(colon + 1);
  }
  if (e.host.empty()) return std::nullopt;
  unsigned p = 0;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (ec != std::errc() || ptr != port.data() + port.size() || port.empty() || p > 65535) return std::nullopt;
  e.port = static_cast<std::uint16_t>(p);
  return e;
}

std::string Endpoint::to_string() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

}  // namespace gw::config
