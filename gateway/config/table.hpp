// A read-only view of one TOML table of the config file. Every accessor validates the value's type
// and throws ConfigError carrying "PATH:LINE:COL: message" for the offending key, so plugins report
// errors exactly like the core does. toml++ itself is only included by the config .cpp files.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/config/units.hpp"

namespace gw::config {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Table {
 public:
  Table() = default;  // an absent table: every lookup finds nothing
  Table(const void* toml_table, std::string path, std::string name);

  bool present() const { return table_ != nullptr; }
  const std::string& path() const { return path_; }
  const std::string& name() const { return name_; }
  bool has(std::string_view key) const;

  // Unknown keys are config errors: call once with every key the table may hold.
  void allow_only(std::initializer_list<std::string_view> keys) const;
  void allow_only(const std::vector<std::string>& keys) const;

  std::optional<std::string> string(std::string_view key) const;
  std::optional<std::int64_t> integer(std::string_view key) const;
  std::optional<bool> boolean(std::string_view key) const;
  std::optional<Duration> duration(std::string_view key) const;
  std::optional<std::uint64_t> size(std::string_view key) const;
  std::optional<std::vector<std::string>> strings(std::string_view key) const;
  // one of `choices`, else an error listing them
  std::optional<std::string> choice(std::string_view key, std::initializer_list<std::string_view> choices) const;
  Table table(std::string_view key) const;
  std::vector<Table> tables(std::string_view key) const;  // an array of tables ([[x]])

  // Error located at `key` (or at the table itself when key is empty).
  [[noreturn]] void fail(std::string_view key, const std::string& message) const;
  std::string where(std::string_view key) const;  // "PATH:LINE:COL"

 private:
  const void* node(std::string_view key) const;
  const void* table_ = nullptr;  // const toml::table*
  std::string path_;
  std::string name_;  // dotted name for messages, e.g. "plugins.spf"
};

}  // namespace gw::config
