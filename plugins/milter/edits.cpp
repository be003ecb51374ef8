#include "plugins/milter/edits.hpp"

namespace gw::milter {

std::vector<std::size_t> visible_fields(const Message& message) {
  std::vector<std::size_t> out;
  const auto& fields = message.fields();
  out.reserve(fields.size());
  for (std::size_t i = 0; i < fields.size(); ++i)
    if (!fields[i].removed) out.push_back(i);
  return out;
}

std::string milter_value(const Message& message, const HeaderField& f, bool leadspc) {
  std::string_view raw = message.field_raw(f).substr(f.name_length + 1);
  if (raw.size() >= 2 && raw.substr(raw.size() - 2) == "\r\n") raw.remove_suffix(2);
  if (!leadspc)
    while (!raw.empty() && (raw.front() == ' ' || raw.front() == '\t')) raw.remove_prefix(1);
  std::string out;
  out.reserve(raw.size());
  for (std::size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '\r' && i + 1 < raw.size() && raw[i + 1] == '\n') continue;
    out += raw[i];
  }
  return out;
}

namespace {

std::string value_in(std::string_view v, bool leadspc) {
  // With HDR_LEADSPC the milter's value carries the space that follows the colon; Message writes
  // "Name: " itself.
  if (leadspc && !v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  return fold_value(v);
}

std::string crlf_body(std::string_view in) {
  std::string out;
  out.reserve(in.size() + in.size() / 32 + 2);
  for (std::size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '\r') {
      out += "\r\n";
      if (i + 1 < in.size() && in[i + 1] == '\n') ++i;
    } else if (c == '\n') {
      out += "\r\n";
    } else {
      out += c;
    }
  }
  if (!out.empty() && (out.size() < 2 || out.compare(out.size() - 2, 2, "\r\n") != 0)) out += "\r\n";
  return out;
}

}  // namespace

EditOutcome apply_edits(Message& m, const std::vector<Packet>& edits, bool leadspc, std::size_t max_size) {
  EditOutcome r;
  auto bad = [&](std::string e) {
    r.ok = false;
    r.error = std::move(e);
    return r;
  };
  // Validate everything first: a broken list leaves the message untouched (on_error decides).
  bool replace = false;
  std::string body;
  for (auto& p : edits) {
    if (p.command == rep::addheader || p.command == rep::insheader || p.command == rep::chgheader) {
      if (!parse_header_edit(p.command, p.data)) return bad(std::string("malformed header modification '") + p.command + "'");
    } else if (p.command == rep::replbody) {
      replace = true;
      if (body.size() + p.data.size() > max_size) return bad("replaced body larger than the message size limit");
      body += p.data;
    } else if (p.command != rep::quarantine) {
      return bad(std::string("modification '") + p.command + "' was not offered");
    }
  }
  if (replace) {
    body = crlf_body(body);
    if (body.size() > max_size) return bad("replaced body larger than the message size limit");
  }
  for (auto& p : edits) {
    switch (p.command) {
      case rep::addheader: {
        auto e = parse_header_edit(p.command, p.data);
        m.append_field(e->name, value_in(e->value, leadspc));
        break;
      }
      case rep::insheader: {
        auto e = parse_header_edit(p.command, p.data);
        auto vis = visible_fields(m);
        if (e->index < vis.size()) m.insert_field(vis[e->index], e->name, value_in(e->value, leadspc));
        else m.append_field(e->name, value_in(e->value, leadspc));
        break;
      }
      case rep::chgheader: {
        auto e = parse_header_edit(p.command, p.data);
        std::uint32_t want = e->index == 0 ? 1 : e->index;
        std::uint32_t seen = 0;
        std::optional<std::size_t> at;
        const auto& fields = m.fields();
        for (std::size_t i = 0; i < fields.size() && !at; ++i)
          if (!fields[i].removed && iequals(m.field_name(fields[i]), e->name) && ++seen == want) at = i;
        if (e->value.empty()) {
          if (at) m.remove_field(*at);
        } else if (at) {
          m.set_field_value(*at, value_in(e->value, leadspc));
        } else {
          m.append_field(e->name, value_in(e->value, leadspc));
        }
        break;
      }
      case rep::replbody:
        break;  // collected above, applied once at the end
      case rep::quarantine: {
        std::string reason(cstring(p.data));
        for (char& c : reason)
          if (static_cast<unsigned char>(c) < ' ' || c == 0x7f) c = ' ';
        if (reason.size() > 400) reason.resize(400);
        r.quarantine.push_back(reason.empty() ? std::string("quarantined") : reason);
        break;
      }
      default:
        break;
    }
    ++r.applied;
  }
  if (replace) m.replace_body(body);
  return r;
}

}  // namespace gw::milter
