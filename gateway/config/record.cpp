#include "gateway/config/record.hpp"

#include <cstdio>

namespace gw::config {

std::string format_duration(Duration d) {
  const std::int64_t ms = d.count();
  if (ms == 0) return "0s";
  struct Unit { std::int64_t ms; const char* name; };
  for (Unit u : {Unit{86'400'000, "d"}, Unit{3'600'000, "h"}, Unit{60'000, "m"}, Unit{1000, "s"}})
    if (ms % u.ms == 0) return std::to_string(ms / u.ms) + u.name;
  return std::to_string(ms) + "ms";
}

Recorded format_size(std::uint64_t bytes) {
  if (bytes == 0) return std::int64_t{0};
  struct Unit { std::uint64_t n; const char* name; };
  for (Unit u : {Unit{1ull << 30, "GiB"}, Unit{1ull << 20, "MiB"}, Unit{1ull << 10, "KiB"}})
    if (bytes % u.n == 0) return std::to_string(bytes / u.n) + u.name;
  return static_cast<std::int64_t>(bytes);
}

void RecordNode::set(std::string_view key, Recorded v) {
  std::erase(unset, std::string(key));
  for (auto& [k, old] : values)
    if (k == key) {
      old = std::move(v);
      return;
    }
  values.emplace_back(std::string(key), std::move(v));
}

void RecordNode::absent(std::string_view key) {
  for (auto& [k, v] : values)
    if (k == key) return;
  for (auto& k : unset)
    if (k == key) return;
  unset.emplace_back(key);
}

RecordNode& RecordNode::table(std::string_view key) {
  for (auto& [k, t] : tables)
    if (k == key) return *t;
  tables.emplace_back(std::string(key), std::make_unique<RecordNode>());
  return *tables.back().second;
}

std::vector<std::unique_ptr<RecordNode>>& RecordNode::array(std::string_view key) {
  std::erase(unset, std::string(key));
  for (auto& [k, a] : arrays)
    if (k == key) return a;
  arrays.emplace_back(std::string(key), std::vector<std::unique_ptr<RecordNode>>{});
  return arrays.back().second;
}

namespace {

bool bare(std::string_view k) {
  if (k.empty()) return false;
  for (unsigned char c : k)
    if (!(std::isalnum(c) || c == '_' || c == '-')) return false;
  return true;
}

void quoted(std::string& out, std::string_view s) {
  out += '"';
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", c);
      out += b;
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
}

void key(std::string& out, std::string_view k) {
  if (bare(k)) out += k;
  else quoted(out, k);
}

void value(std::string& out, const Recorded& v) {
  if (auto* s = std::get_if<std::string>(&v)) quoted(out, *s);
  else if (auto* i = std::get_if<std::int64_t>(&v)) out += std::to_string(*i);
  else if (auto* b = std::get_if<bool>(&v)) out += *b ? "true" : "false";
  else {
    out += '[';
    bool first = true;
    for (auto& s : std::get<std::vector<std::string>>(v)) {
      out += first ? "" : ", ";
      first = false;
      quoted(out, s);
    }
    out += ']';
  }
}

std::string child(const std::string& prefix, std::string_view k) {
  std::string p = prefix;
  if (!p.empty()) p += '.';
  key(p, k);
  return p;
}

void emit(std::string& out, const RecordNode& n, const std::string& prefix) {
  for (auto& [k, v] : n.values) {
    key(out, k);
    out += " = ";
    value(out, v);
    out += '\n';
  }
  for (auto& [k, a] : n.arrays)
    if (a.empty()) {
      key(out, k);
      out += " = []\n";
    }
  for (auto& k : n.unset) out += "# " + k + ": not set; the reader's own default applies\n";
  for (auto& [k, t] : n.tables) {
    std::string p = child(prefix, k);
    out += "\n[" + p + "]\n";
    emit(out, *t, p);
  }
  for (auto& [k, a] : n.arrays)
    for (auto& el : a) {
      std::string p = child(prefix, k);
      out += "\n[[" + p + "]]\n";
      emit(out, *el, p);
    }
}

}  // namespace

std::string to_toml(const RecordNode& root) {
  std::string out = "# The effective configuration (smtp-gateway --dump-config): every key with its value, defaults included.\n";
  emit(out, root, "");
  return out;
}

}  // namespace gw::config
