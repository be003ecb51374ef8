// Small helpers the store backends share.
#pragma once
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace gw::store::detail {

inline std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}
inline std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Whole decimal integer (optional leading '-'), nothing else.
std::optional<std::int64_t> parse_int(std::string_view s);

// Lower-case hex SHA-1 / SHA-256 of `data`.
std::string sha1_hex(std::string_view data);
std::string sha256_hex(std::string_view data);

// Keys longer than `max` bytes keep a readable prefix and end in a SHA-256 of the whole key.
std::string bound_key(std::string key, std::size_t max);

}  // namespace gw::store::detail
