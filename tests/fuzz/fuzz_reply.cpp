// Upstream reply lines: no crash; an accepted code is a real SMTP code.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "gateway/net/reply.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view line(reinterpret_cast<const char*>(data), size);
  int code = 0;
  bool last = false;
  std::string_view text;
  if (gw::net::parse_reply_line(line, code, last, text)) {
    if (code < 200 || code > 599) std::abort();
    std::string enh;
    std::string_view rest;
    if (gw::net::split_enhanced(text, code / 100, enh, rest) && enh[0] - '0' != code / 100) std::abort();
  }
  return 0;
}
