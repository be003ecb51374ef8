#include "plugins/rspamd/edits.hpp"

#include <algorithm>
#include <vector>

namespace gw::plugins::rspamd {

namespace {

// Indices (into m.fields()) of the fields still in the message, optionally only those named `name`.
std::vector<size_t> kept(const Message& m, std::string_view name = {}) {
  std::vector<size_t> out;
  const auto& fields = m.fields();
  for (size_t i = 0; i < fields.size(); ++i) {
    if (fields[i].removed) continue;
    if (!name.empty() && !iequals(m.field_name(fields[i]), name)) continue;
    out.push_back(i);
  }
  return out;
}

}  // namespace

EditCount apply_edits(const Answer& a, Message& m) {
  EditCount n;
  for (auto& r : a.remove_headers) {
    auto idx = kept(m, r.name);
    const auto len = static_cast<std::int64_t>(idx.size());
    if (r.count == 0) {
      for (auto i : idx) m.remove_field(i);
      n.removed += idx.size();
    } else if (r.count > 0 && r.count <= len) {
      m.remove_field(idx[static_cast<size_t>(r.count - 1)]);
      ++n.removed;
    } else if (r.count < 0 && -r.count <= len) {
      m.remove_field(idx[static_cast<size_t>(len + r.count)]);
      ++n.removed;
    }
  }
  for (auto& h : a.add_headers) {
    if (!h.order) {
      m.append_field(h.name, h.value);
    } else {
      auto idx = kept(m);
      const auto len = static_cast<std::int64_t>(idx.size());
      // order >= 0: that many fields above it (0 = the top); order < 0: -1 = after the last field,
      // -2 = above the last one, ...; beyond either end: after the last field.
      std::int64_t pos = *h.order >= 0 ? std::min(*h.order, len) : (-*h.order <= len ? len + *h.order + 1 : len);
      size_t at = pos < len ? idx[static_cast<size_t>(pos)] : m.fields().size();
      m.insert_field(at, h.name, h.value);
    }
    ++n.added;
  }
  if (a.action == Action::rewrite_subject && a.subject) {
    auto idx = kept(m, "Subject");
    if (idx.empty()) m.append_field("Subject", *a.subject);
    else m.set_field_value(idx.front(), *a.subject);
    n.subject = true;
  }
  return n;
}

bool needs_spam_header(const Answer& a) {
  if (a.action != Action::add_header) return false;
  for (auto& h : a.add_headers)
    if (iequals(h.name, "X-Spam")) return false;
  return true;
}

}  // namespace gw::plugins::rspamd
