#include "gateway/core/auth_results.hpp"

namespace gw {
namespace {

// Skips whitespace and (nested) comments from `i`.
void skip_cfws(std::string_view v, std::size_t& i) {
  int depth = 0;
  while (i < v.size()) {
    char c = v[i];
    if (depth == 0 && (c == ' ' || c == '\t' || c == '\r' || c == '\n')) {
      ++i;
    } else if (c == '(') {
      ++depth;
      ++i;
    } else if (depth > 0) {
      if (c == ')') --depth;
      else if (c == '\\') ++i;
      ++i;
    } else {
      break;
    }
  }
}

}  // namespace

std::optional<std::string> authserv_id_of(std::string_view v) {
  std::size_t i = 0;
  skip_cfws(v, i);
  if (i >= v.size()) return std::nullopt;
  std::string id;
  if (v[i] == '"') {
    for (++i; i < v.size() && v[i] != '"'; ++i) {
      if (v[i] == '\\' && i + 1 < v.size()) ++i;
      id += v[i];
    }
  } else {
    while (i < v.size() && v[i] != ';' && v[i] != ' ' && v[i] != '\t' && v[i] != '(' && v[i] != '\r' && v[i] != '\n') id += v[i++];
  }
  if (id.empty()) return std::nullopt;
  return id;
}

std::size_t remove_forged_auth_results(Message& msg, std::string_view authserv_id) {
  std::size_t removed = 0;
  const auto& fields = msg.fields();
  for (std::size_t i = 0; i < fields.size(); ++i) {
    const auto& f = fields[i];
    if (f.removed || !iequals(msg.field_name(f), "Authentication-Results")) continue;
    auto id = authserv_id_of(msg.field_value(f));
    if (id && iequals(*id, authserv_id)) {
      msg.remove_field(i);
      ++removed;
    }
  }
  return removed;
}

}  // namespace gw
