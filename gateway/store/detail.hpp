// Small helpers the store backends share.
#pragma once
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "gateway/store/store.hpp"

namespace gw::store::detail {

using gw::store::now_ms;
using gw::store::parse_int;
inline std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}


// Lower-case hex SHA-1 / SHA-256 of `data`.
std::string sha1_hex(std::string_view data);
std::string sha256_hex(std::string_view data);

// Keys longer than `max` bytes keep a readable prefix and end in a SHA-256 of the whole key.
std::string bound_key(std::string key, std::size_t max);

}  // namespace gw::store::detail
