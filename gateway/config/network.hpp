// CIDR networks ("10.0.0.0/8", "::1/128") and "host:port" / "[v6]:port" endpoints.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/ip/address.hpp>

namespace gw::config {

class Network {
 public:
  static std::optional<Network> parse(std::string_view text);
  bool contains(const boost::asio::ip::address& addr) const;
  std::string to_string() const;

 private:
  bool v6_ = false;
  std::array<std::uint8_t, 16> bytes_{};
  unsigned prefix_ = 0;
};

struct Endpoint {
  std::string host;  // literal IP (v6 without brackets) or a name
  std::uint16_t port = 0;
  static std::optional<Endpoint> parse(std::string_view text);
  std::string to_string() const;
};

// An IPv4-mapped IPv6 address (::ffff:a.b.c.d) becomes the IPv4 address.
boost::asio::ip::address unmap(const boost::asio::ip::address& addr);

}  // namespace gw::config
