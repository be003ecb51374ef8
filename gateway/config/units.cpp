#include "gateway/config/units.hpp"

#include <charconv>
#include <string>

namespace gw::config {
namespace {

struct NumberAndUnit {
  std::uint64_t number;
  std::string_view unit;
};

std::optional<NumberAndUnit> split(std::string_view text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  std::uint64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr == text.data()) return std::nullopt;
  std::string_view unit(ptr, text.data() + text.size() - ptr);
  while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  return NumberAndUnit{value, unit};
}

}  // namespace

std::optional<Duration> parse_duration(std::string_view text) {
  auto parts = split(text);
  if (!parts) return std::nullopt;
  const std::uint64_t n = parts->number;
  const std::string_view u = parts->unit;
  std::uint64_t ms_per_unit = 0;
  if (u == "ms") ms_per_unit = 1;
  else if (u == "s") ms_per_unit = 1000;
  else if (u == "m") ms_per_unit = 60'000;
  else if (u == "h") ms_per_unit = 3'600'000;
  else if (u == "d") ms_per_unit = 86'400'000;
  else return std::nullopt;
  if (n > (UINT64_MAX / 2) / ms_per_unit) return std::nullopt;
  return Duration(static_cast<Duration::rep>(n * ms_per_unit));
}

std::optional<std::uint64_t> parse_size(std::string_view text) {
  auto parts = split(text);
  if (!parts) return std::nullopt;
  std::string unit(parts->unit);
  for (auto& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::uint64_t mult = 0;
  if (unit.empty() || unit == "b") mult = 1;
  else if (unit == "kib" || unit == "k") mult = 1024;
  else if (unit == "mib" || unit == "m") mult = 1024ull * 1024;
  else if (unit == "gib" || unit == "g") mult = 1024ull * 1024 * 1024;
  else if (unit == "kb") mult = 1000;
  else if (unit == "mb") mult = 1000ull * 1000;
  else if (unit == "gb") mult = 1000ull * 1000 * 1000;
  else return std::nullopt;
  if (parts->number > UINT64_MAX / mult) return std::nullopt;
  return parts->number * mult;
}

}  // namespace gw::config
