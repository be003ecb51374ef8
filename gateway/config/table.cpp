#include "gateway/config/table.hpp"

#include <toml++/toml.h>

namespace gw::config {
namespace {
const toml::table* tbl(const void* p) { return static_cast<const toml::table*>(p); }

std::string location(const std::string& path, const toml::source_region& src) {
  return path + ":" + std::to_string(src.begin.line) + ":" + std::to_string(src.begin.column);
}
}  // namespace

Table::Table(const void* toml_table, std::string path, std::string name, std::shared_ptr<Context> ctx, RecordNode* rec)
    : table_(toml_table), path_(std::move(path)), name_(std::move(name)), ctx_(std::move(ctx)), rec_(rec) {}

const void* Table::node(std::string_view key) const {
  if (!table_) return nullptr;
  return tbl(table_)->get(key);
}

bool Table::has(std::string_view key) const { return node(key) != nullptr; }

std::vector<std::string> Table::keys() const {
  std::vector<std::string> out;
  if (table_)
    for (auto&& [k, v] : *tbl(table_)) out.emplace_back(k.str());
  return out;
}

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

void Table::warn(std::string_view key, const std::string& message) const {
  if (ctx_) ctx_->warnings.push_back(where(key) + ": warning: " + message);
}

void Table::add_error(const std::string& located_message) const {
  if (!ctx_) throw ConfigError(located_message);
  ctx_->errors.push_back(located_message);
}

void Table::throw_errors() const {
  if (!ctx_ || ctx_->errors.empty()) return;
  std::string all;
  for (auto& e : ctx_->errors) all += (all.empty() ? "" : "\n") + e;
  ctx_->errors.clear();
  throw ConfigError(all);
}

void Table::record(std::string_view key, const Recorded& value) const {
  if (rec_) rec_->set(key, value);
}

void Table::allow_only(std::initializer_list<std::string_view> keys) const {
  allow_only(std::vector<std::string>(keys.begin(), keys.end()));
}

void Table::allow_only(const std::vector<std::string>& keys) const {
  if (!table_) return;
  std::string unknown;  // every unknown key of the table, one line each
  for (auto&& [k, v] : *tbl(table_)) {
    bool ok = false;
    for (auto allowed : keys)
      if (k.str() == allowed) ok = true;
    if (!ok) {
      std::string full = name_.empty() ? std::string(k.str()) : name_ + "." + std::string(k.str());
      unknown += (unknown.empty() ? "" : "\n") + location(path_, v.source()) + ": unknown key '" + full + "'";
    }
  }
  if (!unknown.empty()) throw ConfigError(unknown);
}

void Table::allow_only_and_go_on(std::initializer_list<std::string_view> keys) const {
  try {
    allow_only(keys);
  } catch (const ConfigError& e) {
    add_error(e.what());
  }
}

template <typename T>
Read<T> Table::read(std::string_view key, std::optional<T> v) const {
  if (rec_) {
    if (v) rec_->set(key, to_recorded(*v));
    else rec_->absent(key);
  }
  return Read<T>(std::move(v), rec_, key);
}

Read<std::string> Table::string(std::string_view key) const {
  auto* n = static_cast<const toml::node*>(node(key));
  if (!n) return read<std::string>(key, std::nullopt);
  if (auto v = n->value<std::string>(); v && n->is_string()) return read<std::string>(key, *v);
  fail(key, "expected a string");
}

Read<std::int64_t> Table::integer(std::string_view key) const {
  auto* n = static_cast<const toml::node*>(node(key));
  if (!n) return read<std::int64_t>(key, std::nullopt);
  if (n->is_integer()) return read<std::int64_t>(key, *n->value<std::int64_t>());
  fail(key, "expected an integer");
}

Read<bool> Table::boolean(std::string_view key) const {
  auto* n = static_cast<const toml::node*>(node(key));
  if (!n) return read<bool>(key, std::nullopt);
  if (n->is_boolean()) return read<bool>(key, *n->value<bool>());
  fail(key, "expected true or false");
}

Read<Duration> Table::duration(std::string_view key) const {
  auto* n = static_cast<const toml::node*>(node(key));
  if (!n) return read<Duration>(key, std::nullopt);
  if (n->is_string()) {
    if (auto d = parse_duration(*n->value<std::string>())) return read<Duration>(key, *d);
  }
  fail(key, "expected a duration such as \"500ms\", \"30s\", \"5m\", \"24h\" or \"36d\"");
}

Read<std::uint64_t> Table::size(std::string_view key) const {
  auto* n = static_cast<const toml::node*>(node(key));
  if (!n) return read<std::uint64_t>(key, std::nullopt);
  if (n->is_integer()) {
    auto v = *n->value<std::int64_t>();
    if (v >= 0) return read<std::uint64_t>(key, static_cast<std::uint64_t>(v));
  } else if (n->is_string()) {
    if (auto s = parse_size(*n->value<std::string>())) return read<std::uint64_t>(key, *s);
  }
  fail(key, "expected a size: bytes as an integer, or a string such as \"25MiB\"");
}

Read<std::vector<std::string>> Table::strings(std::string_view key) const {
  auto* n = static_cast<const toml::node*>(node(key));
  if (!n) return read<std::vector<std::string>>(key, std::nullopt);
  auto* arr = n->as_array();
  if (!arr) fail(key, "expected an array of strings");
  std::vector<std::string> out;
  for (auto& el : *arr) {
    if (!el.is_string()) throw ConfigError(location(path_, el.source()) + ": " + name_ + "." + std::string(key) + ": expected a string");
    out.push_back(*el.value<std::string>());
  }
  return read<std::vector<std::string>>(key, std::move(out));
}

Read<std::string> Table::choice(std::string_view key, std::initializer_list<std::string_view> choices) const {
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
  RecordNode* rec = rec_ ? &rec_->table(key) : nullptr;
  if (!n) return Table(nullptr, path_, child, ctx_, rec);
  if (!n->is_table()) fail(key, "expected a table");
  return Table(n->as_table(), path_, child, ctx_, rec);
}

std::vector<Table> Table::tables(std::string_view key) const {
  auto* n = static_cast<const toml::node*>(node(key));
  std::vector<Table> out;
  auto* recs = rec_ ? &rec_->array(key) : nullptr;
  if (!n) return out;
  auto* arr = n->as_array();
  if (!arr) fail(key, "expected an array of tables ([[" + (name_.empty() ? "" : name_ + ".") + std::string(key) + "]])");
  std::string child = name_.empty() ? std::string(key) : name_ + "." + std::string(key);
  std::size_t i = 0;
  for (auto& el : *arr) {
    if (!el.is_table()) throw ConfigError(location(path_, el.source()) + ": " + child + ": expected a table");
    RecordNode* rec = nullptr;
    if (recs) {
      if (recs->size() <= i) recs->push_back(std::make_unique<RecordNode>());
      rec = (*recs)[i].get();
    }
    out.emplace_back(el.as_table(), path_, child, ctx_, rec);
    ++i;
  }
  return out;
}

}  // namespace gw::config
