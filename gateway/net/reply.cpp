#include "gateway/net/reply.hpp"

#include <cctype>

namespace gw::net {

std::string Reply::text() const {
  std::string out;
  for (auto& l : lines) {
    if (!out.empty()) out += " / ";
    out += l;
  }
  return out;
}

std::string Reply::summary() const {
  std::string out = std::to_string(code);
  if (!enhanced.empty()) out += " " + enhanced;
  std::string t = text();
  if (!t.empty()) out += " " + t;
  return out;
}

void Reply::append_to(std::string& out, std::string_view default_enhanced) const {
  std::string_view enh = enhanced.empty() ? default_enhanced : std::string_view(enhanced);
  const std::string code_s = std::to_string(code);
  if (lines.empty()) {
    out += code_s;
    if (!enh.empty()) { out += ' '; out += enh; }
    out += "\r\n";
    return;
  }
  for (size_t i = 0; i < lines.size(); ++i) {
    out += code_s;
    out += i + 1 == lines.size() ? ' ' : '-';
    if (!enh.empty()) {
      out += enh;
      if (!lines[i].empty()) out += ' ';
    }
    out += lines[i];
    out += "\r\n";
  }
}

bool parse_reply_line(std::string_view line, int& code, bool& last, std::string_view& text) {
  if (line.size() < 3) return false;
  for (int i = 0; i < 3; ++i)
    if (!std::isdigit(static_cast<unsigned char>(line[static_cast<size_t>(i)]))) return false;
  code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
  if (code < 200 || code > 599) return false;
  if (line.size() == 3) {
    last = true;
    text = {};
    return true;
  }
  if (line[3] != ' ' && line[3] != '-') return false;
  last = line[3] == ' ';
  text = line.substr(4);
  return true;
}

bool split_enhanced(std::string_view text, int cls, std::string& enhanced, std::string_view& rest) {
  // class "." subject "." detail, subject and detail 1-3 digits
  size_t i = 0;
  if (text.size() < 5 || text[0] - '0' != cls || text[1] != '.') return false;
  i = 2;
  size_t d = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])) && d < 3) { ++i; ++d; }
  if (d == 0 || i >= text.size() || text[i] != '.') return false;
  ++i;
  d = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])) && d < 3) { ++i; ++d; }
  if (d == 0 || (i < text.size() && text[i] != ' ')) return false;
  enhanced = std::string(text.substr(0, i));
  rest = i < text.size() ? text.substr(i + 1) : std::string_view{};
  return true;
}

}  // namespace gw::net
