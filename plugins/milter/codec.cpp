#include "plugins/milter/codec.hpp"

#include <cctype>

namespace gw::milter {

namespace {
void put32(std::string& out, std::uint32_t v) {
  out += static_cast<char>((v >> 24) & 0xff);
  out += static_cast<char>((v >> 16) & 0xff);
  out += static_cast<char>((v >> 8) & 0xff);
  out += static_cast<char>(v & 0xff);
}
std::uint32_t get32(std::string_view d, std::size_t at) {
  auto b = [&](std::size_t i) { return static_cast<std::uint32_t>(static_cast<unsigned char>(d[at + i])); };
  return b(0) << 24 | b(1) << 16 | b(2) << 8 | b(3);
}
void put_cstr(std::string& out, std::string_view s) {
  // A NUL inside a value would end it early on the milter side: cut it there ourselves.
  out += s.substr(0, s.find('\0'));
  out += '\0';
}
}  // namespace

std::string packet_head(char command, std::size_t n) {
  std::string out;
  put32(out, static_cast<std::uint32_t>(n + 1));
  out += command;
  return out;
}

std::string packet(char command, std::string_view data) {
  std::string out = packet_head(command, data.size());
  out += data;
  return out;
}

std::string optneg(std::uint32_t actions, std::uint32_t protocol) {
  std::string d;
  put32(d, kVersion);
  put32(d, actions);
  put32(d, protocol);
  return packet(cmd::optneg, d);
}

std::string connect(std::string_view hostname, char family, std::uint16_t port, std::string_view address) {
  std::string d;
  put_cstr(d, hostname);
  d += family;
  if (family != 'U') {
    d += static_cast<char>((port >> 8) & 0xff);
    d += static_cast<char>(port & 0xff);
    put_cstr(d, address);
  }
  return packet(cmd::connect, d);
}

std::string helo(std::string_view name) {
  std::string d;
  put_cstr(d, name);
  return packet(cmd::helo, d);
}

std::string envelope(char command, const std::vector<std::string>& args) {
  std::string d;
  for (auto& a : args) put_cstr(d, a);
  return packet(command, d);
}

std::string header(std::string_view name, std::string_view value) {
  std::string d;
  put_cstr(d, name);
  put_cstr(d, value);
  return packet(cmd::header, d);
}

std::string macros(char stage, const std::vector<std::pair<std::string, std::string>>& values) {
  std::string d(1, stage);
  for (auto& [k, v] : values) {
    put_cstr(d, k);
    put_cstr(d, v);
  }
  return packet(cmd::macro, d);
}

void Decoder::feed(const char* p, std::size_t n) {
  if (error_) return;
  if (pos_ > 0 && pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  } else if (pos_ > 65536) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  buf_.append(p, n);
}

std::optional<Packet> Decoder::next() {
  if (error_) return std::nullopt;
  std::string_view d(buf_);
  d.remove_prefix(pos_);
  if (d.size() < 4) return std::nullopt;
  std::uint32_t len = get32(d, 0);
  if (len == 0 || len > kMaxPacket) {
    error_ = true;
    error_text_ = "bad packet length " + std::to_string(len);
    return std::nullopt;
  }
  if (d.size() < 4 + static_cast<std::size_t>(len)) return std::nullopt;
  Packet p;
  p.command = d[4];
  p.data.assign(d.substr(5, len - 1));
  pos_ += 4 + len;
  return p;
}

std::optional<OptNeg> parse_optneg(std::string_view data) {
  if (data.size() < 12) return std::nullopt;
  OptNeg o;
  o.version = get32(data, 0);
  o.actions = get32(data, 4);
  o.protocol = get32(data, 8);
  std::size_t at = 12;
  // SETSYMLIST: (uint32 stage, "name name ...\0") pairs
  while (at + 4 < data.size()) {
    std::uint32_t stage = get32(data, at);
    at += 4;
    std::string_view rest = data.substr(at);
    std::size_t nul = rest.find('\0');
    if (nul == std::string_view::npos) return std::nullopt;
    std::vector<std::string> names;
    std::string_view list = rest.substr(0, nul);
    std::size_t i = 0;
    while (i < list.size()) {
      while (i < list.size() && (list[i] == ' ' || list[i] == ',')) ++i;
      std::size_t j = i;
      while (j < list.size() && list[j] != ' ' && list[j] != ',') ++j;
      if (j > i) names.emplace_back(list.substr(i, j - i));
      i = j;
    }
    if (o.symlists.size() < 16) o.symlists.emplace_back(stage, std::move(names));
    at += nul + 1;
  }
  if (at != data.size()) return std::nullopt;
  return o;
}

std::string_view cstring(std::string_view data) { return data.substr(0, data.find('\0')); }

std::optional<HeaderEdit> parse_header_edit(char command, std::string_view data) {
  HeaderEdit e;
  if (command == rep::insheader || command == rep::chgheader) {
    if (data.size() < 4) return std::nullopt;
    e.index = get32(data, 0);
    data.remove_prefix(4);
  } else if (command != rep::addheader) {
    return std::nullopt;
  }
  std::size_t nul = data.find('\0');
  if (nul == std::string_view::npos) return std::nullopt;
  e.name.assign(data.substr(0, nul));
  data.remove_prefix(nul + 1);
  // The value must be NUL-terminated too; chgheader with an empty value deletes.
  std::size_t end = data.find('\0');
  if (end == std::string_view::npos) return std::nullopt;
  e.value.assign(data.substr(0, end));
  if (!valid_field_name(e.name)) return std::nullopt;
  return e;
}

bool valid_field_name(std::string_view name) {
  if (name.empty() || name.size() > 998) return false;
  for (unsigned char c : name)
    if (c <= ' ' || c >= 0x7f || c == ':') return false;
  return true;
}

std::string fold_value(std::string_view v) {
  std::string out;
  out.reserve(v.size() + 8);
  for (std::size_t i = 0; i < v.size(); ++i) {
    char c = v[i];
    if (c == '\0') continue;
    if (c == '\r') {
      if (i + 1 < v.size() && v[i + 1] == '\n') continue;  // the LF makes the break
      continue;                                           // bare CR: dropped
    }
    if (c == '\n') {
      // drop a trailing line break; an empty continuation line would end the header section
      std::size_t k = i + 1;
      while (k < v.size() && (v[k] == '\r' || v[k] == '\n')) ++k;
      if (k >= v.size()) break;
      out += "\r\n";
      if (v[k] != ' ' && v[k] != '\t') out += '\t';
      i = k - 1;
      continue;
    }
    out += c;
  }
  return out;
}

std::optional<ReplyCode> parse_replycode(std::string_view data) {
  data = cstring(data);
  ReplyCode r;
  std::string text;
  bool first = true;
  while (!data.empty()) {
    std::size_t eol = data.find('\n');
    std::string_view line = data.substr(0, eol);
    data = eol == std::string_view::npos ? std::string_view{} : data.substr(eol + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.size() < 3 || !std::isdigit(static_cast<unsigned char>(line[0])) ||
        !std::isdigit(static_cast<unsigned char>(line[1])) || !std::isdigit(static_cast<unsigned char>(line[2])))
      return std::nullopt;
    int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    if (line.size() > 3 && line[3] != ' ' && line[3] != '-') return std::nullopt;
    if (first) r.code = code;
    else if (code != r.code) return std::nullopt;
    std::string_view rest = line.size() > 4 ? line.substr(4) : std::string_view{};
    // enhanced status code: class.subject.detail, class equal to the reply's first digit
    std::size_t sp = rest.find(' ');
    std::string_view word = rest.substr(0, sp);
    bool enhanced = word.size() >= 5 && word[0] == line[0] && word[1] == '.';
    for (char c : word)
      if (!std::isdigit(static_cast<unsigned char>(c)) && c != '.') enhanced = false;
    if (enhanced) {
      if (first) r.enhanced = std::string(word);
      rest = sp == std::string_view::npos ? std::string_view{} : rest.substr(sp + 1);
    }
    if (!text.empty() && !rest.empty()) text += ' ';
    text += rest;
    first = false;
  }
  if (first || r.code < 400 || r.code > 599) return std::nullopt;
  for (char& c : text)
    if (static_cast<unsigned char>(c) < ' ' || c == 0x7f) c = ' ';
  if (text.size() > 400) text.resize(400);
  r.text = std::move(text);
  return r;
}

}  // namespace gw::milter
