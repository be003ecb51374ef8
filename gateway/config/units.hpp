// Durations ("500ms", "30s", "5m", "24h", "36d") and sizes (12345, "25MiB") as the config writes them.
#pragma once
#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

namespace gw::config {

using Duration = std::chrono::milliseconds;

// nullopt when the text is not a number followed by one of ms, s, m, h, d.
std::optional<Duration> parse_duration(std::string_view text);
// nullopt when the text is not a number optionally followed by B, KiB, MiB, GiB, KB, MB, GB.
std::optional<std::uint64_t> parse_size(std::string_view text);

}  // namespace gw::config
