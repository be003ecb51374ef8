// AUTH decoding: strict base64 never crashes; what it accepts survives an encode/decode round trip.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "gateway/smtp/auth.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto decoded = gw::smtp::auth::base64_decode(in);
  if (decoded && gw::smtp::auth::base64_decode(gw::smtp::auth::base64_encode(*decoded)) != decoded) std::abort();
  auto round = gw::smtp::auth::base64_decode(gw::smtp::auth::base64_encode(in));
  if (!round || *round != in) std::abort();
  return 0;
}
