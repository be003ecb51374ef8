// A read-only view of one TOML table of the config file. Every accessor validates the value's type
// and throws ConfigError carrying "PATH:LINE:COL: message" for the offending key, so plugins report
// errors exactly like the core does. toml++ itself is only included by the config .cpp files.
//
// Every Table made from one loaded file shares a Context: the warnings (`warn`) and the errors that
// did not stop the reading (unknown keys, collected so the admin sees all of them at once), and, for
// `--dump-config`, a record of every key read with its effective value. A value a plugin reads with
// a default (`t.duration("delay", default)` or `t.duration("delay").value_or(default)`) is recorded
// with that default, so the dump covers plugins the core does not know.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/config/record.hpp"
#include "gateway/config/units.hpp"

namespace gw::config {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Context {
  std::vector<std::string> warnings;  // "PATH:LINE:COL: warning: text"
  std::vector<std::string> errors;    // "PATH:LINE:COL: message", collected while reading goes on
  std::unique_ptr<RecordNode> record;  // set when the effective config is being recorded
};

// An optional value read from a table; value_or() records its default for --dump-config.
template <typename T>
class Read : public std::optional<T> {
 public:
  Read(std::optional<T> v, RecordNode* rec, std::string_view key) : std::optional<T>(std::move(v)), rec_(rec), key_(key) {}
  template <typename U>
  T value_or(U&& def) const {
    if (this->has_value()) return **this;
    T d(std::forward<U>(def));
    if (rec_) rec_->set(key_, to_recorded(d));
    return d;
  }

 private:
  RecordNode* rec_;
  std::string key_;
};

class Table {
 public:
  Table() = default;  // an absent table: every lookup finds nothing
  Table(const void* toml_table, std::string path, std::string name, std::shared_ptr<Context> ctx = nullptr,
        RecordNode* rec = nullptr);

  bool present() const { return table_ != nullptr; }
  const std::string& path() const { return path_; }
  const std::string& name() const { return name_; }
  bool has(std::string_view key) const;
  std::vector<std::string> keys() const;  // in file order

  // Unknown keys are config errors: call once with every key the table may hold.
  void allow_only(std::initializer_list<std::string_view> keys) const;
  void allow_only(const std::vector<std::string>& keys) const;
  // The same, but the errors are kept in the context and the reading goes on (the core's sections:
  // load_config throws them all at the end).
  void allow_only_and_go_on(std::initializer_list<std::string_view> keys) const;

  Read<std::string> string(std::string_view key) const;
  Read<std::int64_t> integer(std::string_view key) const;
  Read<bool> boolean(std::string_view key) const;
  Read<Duration> duration(std::string_view key) const;
  Read<std::uint64_t> size(std::string_view key) const;
  Read<std::vector<std::string>> strings(std::string_view key) const;
  // one of `choices`, else an error listing them
  Read<std::string> choice(std::string_view key, std::initializer_list<std::string_view> choices) const;
  // The same with the default that applies when the key is absent.
  std::string string(std::string_view key, std::string def) const { return string(key).value_or(std::move(def)); }
  std::int64_t integer(std::string_view key, std::int64_t def) const { return integer(key).value_or(def); }
  bool boolean(std::string_view key, bool def) const { return boolean(key).value_or(def); }
  Duration duration(std::string_view key, Duration def) const { return duration(key).value_or(def); }
  std::uint64_t size(std::string_view key, std::uint64_t def) const { return size(key).value_or(def); }
  std::vector<std::string> strings(std::string_view key, std::vector<std::string> def) const {
    return strings(key).value_or(std::move(def));
  }
  std::string choice(std::string_view key, std::initializer_list<std::string_view> choices, std::string def) const {
    return choice(key, choices).value_or(std::move(def));
  }
  Table table(std::string_view key) const;
  std::vector<Table> tables(std::string_view key) const;  // an array of tables ([[x]])

  // Error located at `key` (or at the table itself when key is empty).
  [[noreturn]] void fail(std::string_view key, const std::string& message) const;
  // A warning for --check-config (and the log at start), located like fail().
  void warn(std::string_view key, const std::string& message) const;
  // Keeps an error for later (the reading goes on); throw_errors() throws them all at once.
  void add_error(const std::string& located_message) const;
  void throw_errors() const;
  // Records `value` as the effective value of `key` for --dump-config (for a default no accessor saw).
  void record(std::string_view key, const Recorded& value) const;
  std::string where(std::string_view key) const;  // "PATH:LINE:COL"

  const std::shared_ptr<Context>& context() const { return ctx_; }

 private:
  const void* node(std::string_view key) const;
  template <typename T>
  Read<T> read(std::string_view key, std::optional<T> v) const;
  const void* table_ = nullptr;  // const toml::table*
  std::string path_;
  std::string name_;  // dotted name for messages, e.g. "plugins.spf"
  std::shared_ptr<Context> ctx_;
  RecordNode* rec_ = nullptr;  // where this table's keys are recorded, when recording
};

}  // namespace gw::config
