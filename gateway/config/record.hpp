// The effective configuration as read (--dump-config): every key a reader asked for, with the value
// from the file or the default that applied, kept in reading order and printed back as TOML.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "gateway/config/units.hpp"

namespace gw::config {

using Recorded = std::variant<std::string, std::int64_t, bool, std::vector<std::string>>;

// Durations and sizes are recorded in one canonical spelling ("5m", "25MiB"), so a dump read back
// dumps the same text.
std::string format_duration(Duration d);
Recorded format_size(std::uint64_t bytes);

inline Recorded to_recorded(const std::string& v) { return v; }
inline Recorded to_recorded(std::int64_t v) { return v; }
inline Recorded to_recorded(bool v) { return v; }
inline Recorded to_recorded(Duration v) { return format_duration(v); }
inline Recorded to_recorded(std::uint64_t v) { return format_size(v); }
inline Recorded to_recorded(const std::vector<std::string>& v) { return v; }

struct RecordNode {
  std::vector<std::pair<std::string, Recorded>> values;
  std::vector<std::pair<std::string, std::unique_ptr<RecordNode>>> tables;
  std::vector<std::pair<std::string, std::vector<std::unique_ptr<RecordNode>>>> arrays;
  std::vector<std::string> unset;  // keys read, absent, and no default given by the reader

  void set(std::string_view key, Recorded v);
  void absent(std::string_view key);
  RecordNode& table(std::string_view key);
  std::vector<std::unique_ptr<RecordNode>>& array(std::string_view key);
};

// TOML text: each table's keys, then its sub-tables ([a.b]) and arrays of tables ([[a.b]]).
std::string to_toml(const RecordNode& root);

}  // namespace gw::config
