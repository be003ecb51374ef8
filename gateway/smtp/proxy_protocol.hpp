// HAProxy PROXY protocol v1 (text) and v2 (binary) header parsing: a pure function over the bytes
// received so far, fuzzable. https://www.haproxy.org/download/2.8/doc/proxy-protocol.txt
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <boost/asio/ip/address.hpp>

namespace gw::smtp {

struct ProxyHeader {
  enum class Status { incomplete, invalid, ok } status = Status::incomplete;
  std::size_t length = 0;        // bytes of the header, to consume
  bool has_address = false;      // false for LOCAL / UNKNOWN / UNSPEC: keep the socket's peer
  boost::asio::ip::address source;
  std::uint16_t source_port = 0;
  std::string error;
};

ProxyHeader parse_proxy_header(std::string_view data);
// For an incomplete header: how many more bytes can be read without reading past its end (>= 1).
std::size_t proxy_bytes_wanted(std::string_view data);

}  // namespace gw::smtp
