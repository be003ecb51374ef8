#include "gateway/smtp/parser.hpp"

#include <cctype>
#include <cstring>

#include <boost/asio/ip/address.hpp>

namespace gw::smtp {
namespace {

bool ieq_prefix(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i)
    if (std::toupper(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
  return true;
}

bool is_atext(unsigned char c, bool utf8) {
  if (c >= 0x80) return utf8;
  // not strchr: it finds the terminating NUL, which would make NUL an atext character
  static constexpr std::string_view specials = "!#$%&'*+-/=?^_`{|}~";
  return std::isalnum(c) || specials.find(static_cast<char>(c)) != std::string_view::npos;
}

bool valid_dot_string(std::string_view s, bool utf8) {
  if (s.empty() || s.front() == '.' || s.back() == '.') return false;
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '.') {
      if (s[i - 1] == '.') return false;
    } else if (!is_atext(c, utf8)) {
      return false;
    }
  }
  return true;
}

bool valid_quoted_string(std::string_view s, bool utf8) {
  if (s.size() < 2 || s.front() != '"' || s.back() != '"') return false;
  for (size_t i = 1; i + 1 < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '\\') {
      if (i + 2 >= s.size()) return false;
      unsigned char n = static_cast<unsigned char>(s[++i]);
      if (n < 32 || n > 126) return false;
    } else if (c == '"' || c < 32 || c == 127 || (c >= 0x80 && !utf8)) {
      return false;
    }
  }
  return true;
}

bool valid_address_literal(std::string_view s) {
  if (s.size() < 3 || s.front() != '[' || s.back() != ']') return false;
  std::string_view inner = s.substr(1, s.size() - 2);
  boost::system::error_code ec;
  if (ieq_prefix(inner, "IPV6:")) {
    boost::asio::ip::make_address_v6(std::string(inner.substr(5)), ec);
    return !ec;
  }
  boost::asio::ip::make_address_v4(std::string(inner), ec);
  return !ec;
}

}  // namespace

bool valid_domain(std::string_view d, bool allow_utf8) {
  if (d.empty() || d.size() > 255) return false;
  if (d.front() == '[') return valid_address_literal(d);
  size_t label = 0;
  for (size_t i = 0; i <= d.size(); ++i) {
    if (i == d.size() || d[i] == '.') {
      if (label == 0 || label > 63) return false;
      if (d[i - 1] == '-') return false;
      label = 0;
      continue;
    }
    unsigned char c = static_cast<unsigned char>(d[i]);
    bool ok = std::isalnum(c) || (c == '-' && label > 0) || (c >= 0x80 && allow_utf8);
    if (!ok) return false;
    ++label;
  }
  return true;
}

bool valid_helo(std::string_view name) {
  if (name.empty() || name.size() > 255) return false;
  for (unsigned char c : name)
    if (c <= ' ' || c == 0x7f) return false;
  return true;
}

Command parse_command(std::string_view line) {
  Command cmd;
  size_t sp = line.find(' ');
  std::string_view verb = line.substr(0, sp);
  std::string_view rest = sp == std::string_view::npos ? std::string_view{} : line.substr(sp + 1);
  struct Entry { const char* name; Verb verb; };
  static constexpr Entry table[] = {
      {"HELO", Verb::helo}, {"EHLO", Verb::ehlo}, {"MAIL", Verb::mail}, {"RCPT", Verb::rcpt},
      {"DATA", Verb::data}, {"RSET", Verb::rset}, {"NOOP", Verb::noop}, {"QUIT", Verb::quit},
      {"VRFY", Verb::vrfy}, {"EXPN", Verb::expn}, {"HELP", Verb::help}, {"STARTTLS", Verb::starttls},
      {"AUTH", Verb::auth}, {"BDAT", Verb::bdat},
  };
  for (auto& e : table) {
    if (verb.size() == std::strlen(e.name) && ieq_prefix(verb, e.name)) {
      cmd.verb = e.verb;
      break;
    }
  }
  if (cmd.verb == Verb::mail || cmd.verb == Verb::rcpt) {
    std::string_view kw = cmd.verb == Verb::mail ? "FROM:" : "TO:";
    if (!ieq_prefix(rest, kw)) {
      cmd.bad_form = true;
      cmd.arg = rest;
      return cmd;
    }
    rest.remove_prefix(kw.size());
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);  // tolerated: "MAIL FROM: <a@b>"
  }
  cmd.arg = rest;
  return cmd;
}

PathResult parse_path(std::string_view arg, bool null_ok) {
  PathResult r;
  if (arg.empty() || arg.front() != '<') {
    r.error = "address must be enclosed in <>";
    return r;
  }
  // Find the closing '>' that is not inside a quoted local part.
  size_t i = 1;
  bool quoted = false;
  for (; i < arg.size(); ++i) {
    char c = arg[i];
    if (quoted) {
      if (c == '\\') ++i;
      else if (c == '"') quoted = false;
    } else if (c == '"') {
      quoted = true;
    } else if (c == '>') {
      break;
    }
  }
  if (i >= arg.size()) {
    r.error = "missing '>'";
    return r;
  }
  std::string_view inner = arg.substr(1, i - 1);
  std::string_view tail = arg.substr(i + 1);
  Path p;
  bool utf8 = false;
  for (unsigned char c : inner) {
    if (c < 0x20 || c == 0x7f) {  // no control character belongs in a path (RFC 5321 §4.1.2)
      r.error = "control character in address";
      return r;
    }
    if (c >= 0x80) utf8 = true;
  }
  p.utf8 = utf8;

  if (inner.empty()) {
    if (!null_ok) {
      r.error = "empty address";
      return r;
    }
  } else {
    if (inner.front() == '@') {  // source route "@a,@b:mailbox": kept, never rewritten
      size_t colon = inner.find(':');
      if (colon == std::string_view::npos) {
        r.error = "bad source route";
        return r;
      }
      std::string_view route = inner.substr(0, colon);
      size_t start = 0;
      while (start < route.size()) {
        size_t comma = route.find(',', start);
        std::string_view hop = route.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
        if (hop.size() < 2 || hop.front() != '@' || !valid_domain(hop.substr(1), utf8)) {
          r.error = "bad source route";
          return r;
        }
        if (comma == std::string_view::npos) break;
        start = comma + 1;
      }
      p.source_route = std::string(route);
      inner = inner.substr(colon + 1);
    }
    size_t at = inner.rfind('@');
    std::string_view local = at == std::string_view::npos ? inner : inner.substr(0, at);
    std::string_view domain = at == std::string_view::npos ? std::string_view{} : inner.substr(at + 1);
    if (local.size() > 64 * 4 || inner.size() > 254 * 4) {
      r.error = "address too long";
      return r;
    }
    bool local_ok = !local.empty() && (local.front() == '"' ? valid_quoted_string(local, utf8) : valid_dot_string(local, utf8));
    if (!local_ok) {
      r.error = "bad local part";
      return r;
    }
    if (at == std::string_view::npos) {
      // Only <postmaster> may go without a domain (RFC 5321 §4.1.1.3).
      if (!(local.size() == 10 && ieq_prefix(local, "POSTMASTER")) || null_ok) {
        r.error = "address needs a domain";
        return r;
      }
    } else if (!valid_domain(domain, utf8)) {
      r.error = "bad domain";
      return r;
    }
    p.local_part = std::string(local);
    p.domain = std::string(domain);
    for (auto& c : p.domain) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    p.address = std::string(inner);
  }

  // ESMTP parameters: SP-separated keyword[=value] (RFC 5321 §4.1.2).
  while (!tail.empty()) {
    if (tail.front() != ' ') {
      r.error = "garbage after address";
      return r;
    }
    while (!tail.empty() && tail.front() == ' ') tail.remove_prefix(1);
    if (tail.empty()) break;
    size_t end = tail.find(' ');
    std::string_view tok = tail.substr(0, end);
    tail = end == std::string_view::npos ? std::string_view{} : tail.substr(end);
    size_t eq = tok.find('=');
    Param prm;
    prm.keyword = std::string(tok.substr(0, eq));
    if (prm.keyword.empty()) {
      r.error = "bad parameter";
      return r;
    }
    for (auto& c : prm.keyword) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') {
        r.error = "bad parameter";
        return r;
      }
      c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    if (eq != std::string_view::npos) prm.value = std::string(tok.substr(eq + 1));
    p.params.push_back(std::move(prm));
  }
  r.path = std::move(p);
  return r;
}

MailParams parse_mail_params(const std::vector<Param>& params, std::uint64_t max_message_size, bool auth_offered) {
  MailParams out;
  auto refuse = [&](int code, const char* enhanced, std::string text) {
    out.error_code = code;
    out.error_enhanced = enhanced;
    out.error_text = std::move(text);
    return out;
  };
  for (auto& p : params) {
    if (p.keyword == "SIZE") {
      std::uint64_t n = 0;
      bool ok = !p.value.empty() && p.value.size() <= 20;
      for (char c : p.value) {
        if (c < '0' || c > '9') ok = false;
        else n = n * 10 + static_cast<std::uint64_t>(c - '0');
      }
      if (!ok) return refuse(501, "5.5.4", "Bad SIZE parameter");
      if (n > max_message_size) return refuse(552, "5.3.4", "Message size exceeds fixed limit");
      out.size = n;
    } else if (p.keyword == "BODY") {
      std::string v = p.value;
      for (auto& c : v) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      if (v != "7BIT" && v != "8BITMIME") return refuse(501, "5.5.4", "Bad BODY parameter");
      out.body = v;
    } else if (p.keyword == "AUTH" && auth_offered) {
      // RFC 4954 §5: accepted where AUTH is offered; not passed on (the upstream learns the user by XCLIENT LOGIN)
    } else if (p.keyword == "SMTPUTF8" && p.value.empty()) {
      out.smtputf8 = true;
    } else {
      return refuse(555, "5.5.4", "Unsupported parameter " + p.keyword);
    }
  }
  return out;
}

}  // namespace gw::smtp
