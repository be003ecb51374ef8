// PROXY v1/v2 headers: no crash; an accepted header never claims more bytes than were given.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "gateway/smtp/proxy_protocol.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto h = gw::smtp::parse_proxy_header(in);
  if (h.status == gw::smtp::ProxyHeader::Status::ok && (h.length == 0 || h.length > size)) std::abort();
  return 0;
}
