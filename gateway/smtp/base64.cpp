// Strict RFC 4648 base64 for AUTH (padding required, no whitespace). Kept apart from auth.cpp so the
// fuzzer (tests/fuzz/fuzz_auth.cpp) builds it without the session machinery.
#include <array>
#include <cstdint>

#include "gateway/smtp/auth.hpp"

namespace gw::smtp::auth {

std::optional<std::string> base64_decode(std::string_view in) {
  static const auto table = [] {
    std::array<signed char, 256> t{};
    t.fill(-1);
    const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(a[i])] = static_cast<signed char>(i);
    return t;
  }();
  if (in.size() % 4 != 0) return std::nullopt;
  std::string out;
  out.reserve(in.size() / 4 * 3);
  for (std::size_t i = 0; i < in.size(); i += 4) {
    int v[4];
    int pad = 0;
    for (int j = 0; j < 4; ++j) {
      char c = in[i + j];
      if (c == '=') {
        if (i + 4 != in.size() || j < 2) return std::nullopt;
        v[j] = 0;
        ++pad;
        continue;
      }
      if (pad) return std::nullopt;  // data after '='
      v[j] = table[static_cast<unsigned char>(c)];
      if (v[j] < 0) return std::nullopt;
    }
    std::uint32_t n = (static_cast<std::uint32_t>(v[0]) << 18) | (static_cast<std::uint32_t>(v[1]) << 12) |
                      (static_cast<std::uint32_t>(v[2]) << 6) | static_cast<std::uint32_t>(v[3]);
    out += static_cast<char>((n >> 16) & 0xff);
    if (pad < 2) out += static_cast<char>((n >> 8) & 0xff);
    if (pad < 1) out += static_cast<char>(n & 0xff);
  }
  return out;
}

std::string base64_encode(std::string_view in) {
  static const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    std::uint32_t n = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8) |
                      static_cast<unsigned char>(in[i + 2]);
    out += a[(n >> 18) & 63];
    out += a[(n >> 12) & 63];
    out += a[(n >> 6) & 63];
    out += a[n & 63];
  }
  if (i < in.size()) {
    std::uint32_t n = static_cast<unsigned char>(in[i]) << 16;
    if (i + 1 < in.size()) n |= static_cast<unsigned char>(in[i + 1]) << 8;
    out += a[(n >> 18) & 63];
    out += a[(n >> 12) & 63];
    out += i + 1 < in.size() ? a[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

}  // namespace gw::smtp::auth
