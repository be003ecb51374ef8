#include "gateway/core/message.hpp"

#include <algorithm>
#include <cctype>

namespace gw {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  return true;
}

void Message::clear() {
  data_.clear();
  parsed_ = false;
  fields_.clear();
  body_offset_ = 0;
}

void Message::parse() const {
  if (parsed_) return;
  parsed_ = true;
  fields_.clear();
  const std::string& d = data_;
  size_t pos = 0;
  const size_t n = d.size();
  while (pos < n) {
    if (d.compare(pos, 2, "\r\n") == 0) {  // blank line: end of the header section
      body_offset_ = pos + 2;
      return;
    }
    // A field is "name:" then lines until one that does not start with WSP.
    size_t colon = pos;
    while (colon < n && d[colon] != ':' && d[colon] != '\r' && d[colon] > ' ' && d[colon] < 0x7f) ++colon;
    if (colon >= n || d[colon] != ':' || colon == pos) {
      body_offset_ = pos;  // not a header line: the body starts here (no blank line)
      return;
    }
    size_t end = pos;
    for (;;) {
      size_t eol = d.find("\r\n", end);
      if (eol == std::string::npos) { end = n; break; }
      end = eol + 2;
      if (end >= n || (d[end] != ' ' && d[end] != '\t')) break;
    }
    fields_.push_back(HeaderField{pos, end - pos, colon - pos, false});
    pos = end;
  }
  body_offset_ = n;
}

const std::vector<HeaderField>& Message::fields() const {
  parse();
  return fields_;
}

std::string_view Message::field_name(const HeaderField& f) const {
  return std::string_view(data_).substr(f.offset, f.name_length);
}

std::string_view Message::field_raw(const HeaderField& f) const {
  return std::string_view(data_).substr(f.offset, f.length);
}

std::string Message::field_value(const HeaderField& f) const {
  std::string_view raw = field_raw(f).substr(f.name_length + 1);
  std::string out;
  out.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '\r' && i + 1 < raw.size() && raw[i + 1] == '\n') { ++i; continue; }
    out += raw[i];
  }
  size_t b = 0;
  while (b < out.size() && (out[b] == ' ' || out[b] == '\t')) ++b;
  size_t e = out.size();
  while (e > b && (out[e - 1] == ' ' || out[e - 1] == '\t')) --e;
  return out.substr(b, e - b);
}

std::optional<std::string> Message::header(std::string_view name) const {
  for (auto& f : fields())
    if (!f.removed && iequals(field_name(f), name)) return field_value(f);
  return std::nullopt;
}

std::vector<std::string> Message::headers(std::string_view name) const {
  std::vector<std::string> out;
  for (auto& f : fields())
    if (!f.removed && iequals(field_name(f), name)) out.push_back(field_value(f));
  return out;
}

size_t Message::body_offset() const {
  parse();
  return body_offset_;
}

std::string_view Message::body() const { return std::string_view(data_).substr(body_offset()); }

void Message::remove_field(size_t index) {
  parse();
  if (index < fields_.size()) fields_[index].removed = true;
}

void Message::rebuild(size_t at, std::string_view insert, std::string_view body) {
  parse();
  std::string out;
  out.reserve(data_.size() + insert.size() + 2);
  for (size_t i = 0; i <= fields_.size(); ++i) {
    if (i == at) out += insert;
    if (i < fields_.size() && !fields_[i].removed) out += field_raw(fields_[i]);
  }
  out += "\r\n";
  out += body;
  data_ = std::move(out);
  parsed_ = false;
}

namespace {
std::string field_text(std::string_view name, std::string_view value) {
  std::string f;
  f.reserve(name.size() + value.size() + 4);
  f += name;
  f += ": ";
  f += value;
  f += "\r\n";
  return f;
}
}  // namespace

void Message::insert_field(size_t index, std::string_view name, std::string_view value) {
  parse();
  std::string body(this->body());
  rebuild(std::min(index, fields_.size()), field_text(name, value), body);
}

void Message::append_field(std::string_view name, std::string_view value) {
  parse();
  std::string body(this->body());
  rebuild(fields_.size(), field_text(name, value), body);
}

void Message::set_field_value(size_t index, std::string_view value) {
  parse();
  if (index >= fields_.size()) return;
  std::string name(field_name(fields_[index]));
  fields_[index].removed = true;
  std::string body(this->body());
  rebuild(index, field_text(name, value), body);
}

void Message::replace_body(std::string_view body) {
  std::string copy(body);
  rebuild(static_cast<size_t>(-1), {}, copy);
}

}  // namespace gw
