#include "gateway/config/table.hpp"

#include <toml++/toml.h>

namespace gw::config {
namespace {
const toml::table* tbl(const void* p) { return static_cast<const toml::table*>(p); }

std::string location(const std::string& path, const toml::source_region& src) {
  return path + ":" + std::to_string(src.begin.line) + ":" + std::to_string(src.begin.column);
}
}  // namespace

Table::Table(const void* toml_table, std::string path, std::string name)
    : table_(toml_table), path_(std::move(path)), name_(std::move(name)) {}

const void* Table::node(std::string_view key) const {
  if (!table_) return nullptr;
  return tbl(table_)->get(key);
}

bool Table::has(std::string_view key) const { return node(key) != nullptr; }

std::string Table::where(std::string_view key) const {
  if (table_) {
    if (auto* n = static_cast<const toml::node*>(node(key))) return location(path_, n->source());
    return location(path_, tbl(table_)->source());
  }
  return path_ + ":1:1";
}

void Table::fail(std::string_view key, const std::string& message) const {
  std::string full = name_.empty() ? std::string(key) : (key.empty() ? name_ : name_ + "." + std::string(key));
  throw ConfigError(where(key) + ": " + (full.empty() ? "" : full + ": ") + message);
}

void Table::allow_only(std::initializer_list<std::string_view> keys) const {
  allow_only(std::vector<std::string>(keys.begin(), keys.end()));
}

void Table::allow_only(const std::vector<std::string>& keys) const {
  if (!table_) return;
  for (auto&& [k, v] : *tbl(table_)) {
    bool ok = false;
    for (auto allowed : keys)
      if (k.str() == allowed) ok = true;
    if (!ok) {
      std::string full = name_.empty() ? std::string(k.str()) : name_ + "." + std::string(k.str());
      throw ConfigError(location(path_, v.source()) + ": unknown key '" + full + "'");
    }
  }
}

std::optional<std::string> Table::string(std::string_view key) const {
  auto* n = static_cast<const toml::node*>(node(key));
  if (!n) return std::nullopt;
  if (auto v = n->value<std::string>(); v && n->is_string()) return *v;
  fail(key, "expected a string");
}

std::optional<std::int64_t> Table::integer(std::string_view key) const {
  auto* n = static_cast<const toml::node*>(node(key));
  if (!n) return std::nullopt;
  if (n->is_integer()) return *n->value<std::int64_t>();
  fail(key, "expected an integer");
}

std::optional<bool> Table::boolean(std::string_view key) const {
  auto* n = static_cast<const toml::node*>(node(key));
  if (!n) return std::nullopt;
  if (n->is_boolean()) return *n->value<bool>();
  fail(key, "expected true or false");
}

std::optional<Duration> Table::duration(std::string_view key) const {
  auto* n = static_cast<const toml::node*>(node(key));
  if (!n) return std::nullopt;
  if (n->is_string()) {
    if (auto d = parse_duration(*n->value<std::string>())) return d;
  }
  fail(key, "expected a duration such as \"500ms\", \"30s\", \"5m\", \"24h\" or \"36d\"");
}

std::optional<std::uint64_t> Table::size(std::string_view key) const {
  auto* n = static_cast<const toml::node*>(node(key));
  if (!n) return std::nullopt;
  if (n->is_integer()) {
    auto v = *n->value<std::int64_t>();
    if (v >= 0) return static_cast<std::uint64_t>(v);
  } else if (n->is_string()) {
    if (auto s = parse_size(*n->value<std::string>())) return s;
  }
  fail(key, "expected a size: bytes as an integer, or a string such as \"25MiB\"");
}

std::optional<std::vector<std::string>> Table::strings(std::string_view key) const {
  auto* n = static_cast<const toml::node*>(node(key));
  if (!n) return std::nullopt;
  auto* arr = n->as_array();
  if (!arr) fail(key, "expected an array of strings");
  std::vector<std::string> out;
  for (auto& el : *arr) {
    if (!el.is_string()) throw ConfigError(location(path_, el.source()) + ": " + name_ + "." + std::string(key) + ": expected a string");
    out.push_back(*el.value<std::string>());
  }
  return out;
}

std::optional<std::string> Table::choice(std::string_view key, std::initializer_list<std::string_view> choices) const {
  auto v = string(key);
  if (!v) return v;
  for (auto c : choices)
    if (*v == c) return v;
  std::string list;
  for (auto c : choices) list += (list.empty() ? "\"" : ", \"") + std::string(c) + "\"";
  fail(key, "must be one of " + list + " (got \"" + *v + "\")");
}

Table Table::table(std::string_view key) const {
  auto* n = static_cast<const toml::node*>(node(key));
  std::string child = name_.empty() ? std::string(key) : name_ + "." + std::string(key);
  if (!n) return Table(nullptr, path_, child);
  if (!n->is_table()) fail(key, "expected a table");
  return Table(n->as_table(), path_, child);
}

std::vector<Table> Table::tables(std::string_view key) const {
  auto* n = static_cast<const toml::node*>(node(key));
  std::vector<Table> out;
  if (!n) return out;
  auto* arr = n->as_array();
  if (!arr) fail(key, "expected an array of tables ([[" + (name_.empty() ? "" : name_ + ".") + std::string(key) + "]])");
  std::string child = name_.empty() ? std::string(key) : name_ + "." + std::string(key);
  for (auto& el : *arr) {
    if (!el.is_table()) throw ConfigError(location(path_, el.source()) + ": " + child + ": expected a table");
    out.emplace_back(el.as_table(), path_, child);
  }
  return out;
}

}  // namespace gw::config
