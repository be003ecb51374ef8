#include "plugins/spf/spf_record.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <cstdio>

namespace gw::spf {
namespace {

bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alnum(char c) { return is_alpha(c) || is_digit(c); }

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

struct Token {
  bool macro = false;     // %{...}, %%, %_ or %-
  char letter = 0;        // for %{...}: the letter as written (upper case = URL-escape)
  int digits = -1;        // -1: none
  bool reverse = false;
  std::string delimiters;
  std::string literal;    // literal text, or the expansion of %% %_ %-
};

// Splits a macro-string into tokens; false on a syntax error.
bool tokenize(std::string_view s, bool exp, std::vector<Token>& out) {
  const std::string_view letters = exp ? "slodiphcrtv" : "slodiphv";
  for (std::size_t i = 0; i < s.size();) {
    char c = s[i];
    if (c != '%') {
      unsigned char u = static_cast<unsigned char>(c);
      // macro-literal is %x21-24 / %x26-7E; an explanation may also hold spaces
      if (!((u >= 0x21 && u <= 0x7e) || (exp && u == ' '))) return false;
      if (out.empty() || out.back().macro) out.push_back(Token{});
      out.back().literal += c;
      ++i;
      continue;
    }
    if (i + 1 >= s.size()) return false;
    char n = s[i + 1];
    if (n == '%' || n == '_' || n == '-') {
      Token t;
      t.macro = true;
      t.literal = n == '%' ? "%" : n == '_' ? " " : "%20";
      out.push_back(t);
      i += 2;
      continue;
    }
    if (n != '{') return false;
    std::size_t j = i + 2;
    if (j >= s.size()) return false;
    Token t;
    t.macro = true;
    t.letter = s[j];
    if (letters.find(static_cast<char>(std::tolower(static_cast<unsigned char>(t.letter)))) == std::string_view::npos) return false;
    ++j;
    std::string digits;
    while (j < s.size() && is_digit(s[j])) digits += s[j++];
    if (!digits.empty()) {
      if (digits.size() > 3) return false;
      t.digits = std::stoi(digits);
      if (t.digits == 0) return false;
    }
    if (j < s.size() && (s[j] == 'r' || s[j] == 'R')) {
      t.reverse = true;
      ++j;
    }
    while (j < s.size() && std::string_view(".-+,/_=").find(s[j]) != std::string_view::npos) t.delimiters += s[j++];
    if (j >= s.size() || s[j] != '}') return false;
    out.push_back(t);
    i = j + 1;
  }
  return true;
}

bool valid_toplabel(std::string_view l) {
  if (l.empty()) return false;
  bool alpha = false, hyphen = false;
  for (char c : l) {
    if (is_alpha(c)) alpha = true;
    else if (c == '-') hyphen = true;
    else if (!is_digit(c)) return false;
  }
  if (!hyphen) return alpha;
  return is_alnum(l.front()) && is_alnum(l.back());
}

// domain-spec = macro-string domain-end; domain-end = ( "." toplabel [ "." ] ) / macro-expand
bool valid_domain_spec(std::string_view s) {
  if (s.empty()) return false;
  std::vector<Token> tokens;
  if (!tokenize(s, false, tokens)) return false;
  if (tokens.back().macro) return true;
  std::string_view tail = tokens.back().literal;
  if (!tail.empty() && tail.back() == '.') tail.remove_suffix(1);
  auto dot = tail.rfind('.');
  if (dot == std::string_view::npos) return false;
  return valid_toplabel(tail.substr(dot + 1));
}

// "0" / %x31-39 0*N DIGIT, value <= max
bool parse_cidr(std::string_view d, int max, int& out) {
  if (d.empty() || d.size() > 3) return false;
  for (char c : d)
    if (!is_digit(c)) return false;
  if (d.size() > 1 && d[0] == '0') return false;
  out = std::stoi(std::string(d));
  return out <= max;
}

bool valid_ip4(const std::string& s) {
  // strict dotted quad: four 1-3 digit groups
  int groups = 0;
  std::size_t i = 0;
  while (i <= s.size()) {
    std::size_t j = i;
    while (j < s.size() && is_digit(s[j])) ++j;
    if (j == i || j - i > 3) return false;
    if (std::stoi(s.substr(i, j - i)) > 255) return false;
    ++groups;
    if (j == s.size()) break;
    if (s[j] != '.') return false;
    i = j + 1;
  }
  in_addr a;
  return groups == 4 && inet_pton(AF_INET, s.c_str(), &a) == 1;
}

bool valid_ip6(const std::string& s) {
  in6_addr a;
  return inet_pton(AF_INET6, s.c_str(), &a) == 1;
}

// Splits "[domain][/c4][//c6]" from the end. false on a malformed length.
bool split_dual_cidr(std::string_view rest, std::string_view& domain, int& c4, int& c6) {
  auto take = [](std::string_view s, std::string_view sep, std::string_view& digits) {
    auto p = s.rfind(sep);
    if (p == std::string_view::npos) return std::string_view::npos;
    auto d = s.substr(p + sep.size());
    if (d.empty()) return std::string_view::npos;
    for (char c : d)
      if (!is_digit(c)) return std::string_view::npos;
    if (sep == "/" && p > 0 && s[p - 1] == '/') return std::string_view::npos;
    digits = d;
    return p;
  };
  std::string_view digits;
  auto p6 = take(rest, "//", digits);
  if (p6 != std::string_view::npos) {
    if (!parse_cidr(digits, 128, c6)) return false;
    rest = rest.substr(0, p6);
  }
  auto p4 = take(rest, "/", digits);
  if (p4 != std::string_view::npos) {
    if (!parse_cidr(digits, 32, c4)) return false;
    rest = rest.substr(0, p4);
  }
  domain = rest;
  return true;
}

std::string url_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += c;
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", static_cast<unsigned char>(c));
      out += buf;
    }
  }
  return out;
}

std::string dotted_ip(const MacroContext& ctx) {
  if (ctx.v4) return ctx.ip;
  in6_addr a;
  if (inet_pton(AF_INET6, ctx.ip.c_str(), &a) != 1) return ctx.ip;
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (int i = 0; i < 16; ++i) {
    if (i) out += '.';
    out += hex[a.s6_addr[i] >> 4];
    out += '.';
    out += hex[a.s6_addr[i] & 0xF];
  }
  return out;
}

}  // namespace

bool valid_macro_string(std::string_view s, bool exp) {
  std::vector<Token> t;
  return tokenize(s, exp, t);
}

std::optional<std::string> expand(std::string_view s, const MacroContext& ctx, bool exp, bool domain) {
  std::vector<Token> tokens;
  if (!tokenize(s, exp, tokens)) return std::nullopt;
  std::string out;
  for (auto& t : tokens) {
    if (!t.macro || !t.letter) {
      out += t.literal;
      continue;
    }
    std::string v;
    switch (std::tolower(static_cast<unsigned char>(t.letter))) {
      case 's': v = ctx.sender; break;
      case 'l': v = ctx.local; break;
      case 'o': v = ctx.sender_domain; break;
      case 'd': v = ctx.domain; break;
      case 'i': v = dotted_ip(ctx); break;
      case 'p': v = ctx.p; break;
      case 'v': v = ctx.v4 ? "in-addr" : "ip6"; break;
      case 'h': v = ctx.helo; break;
      case 'c': v = ctx.ip; break;
      case 'r': v = ctx.receiver.empty() ? "unknown" : ctx.receiver; break;
      case 't': v = std::to_string(ctx.timestamp); break;
    }
    // split on the delimiters, reverse and keep the rightmost N parts, join with "."
    const std::string delims = t.delimiters.empty() ? "." : t.delimiters;
    std::vector<std::string> parts;
    std::string cur;
    for (char c : v) {
      if (delims.find(c) != std::string::npos) {
        parts.push_back(cur);
        cur.clear();
      } else {
        cur += c;
      }
    }
    parts.push_back(cur);
    if (t.reverse) std::reverse(parts.begin(), parts.end());
    if (t.digits > 0 && static_cast<std::size_t>(t.digits) < parts.size())
      parts.erase(parts.begin(), parts.end() - t.digits);
    std::string joined;
    for (std::size_t i = 0; i < parts.size(); ++i) joined += (i ? "." : "") + parts[i];
    if (std::isupper(static_cast<unsigned char>(t.letter))) joined = url_escape(joined);
    out += joined;
  }
  if (domain) {
    while (out.size() > 253) {  // §7.3: drop labels from the left
      auto dot = out.find('.');
      if (dot == std::string::npos) break;
      out.erase(0, dot + 1);
    }
  }
  return out;
}

std::optional<Record> parse_record(std::string_view text, std::string& error) {
  Record r;
  if (text.size() < 6 || lower(text.substr(0, 6)) != "v=spf1" || (text.size() > 6 && text[6] != ' ')) {
    error = "not an SPF record";
    return std::nullopt;
  }
  std::size_t i = 6;
  while (i < text.size()) {
    if (text[i] == ' ') {
      ++i;
      continue;
    }
    auto end = text.find(' ', i);
    if (end == std::string_view::npos) end = text.size();
    std::string_view term = text.substr(i, end - i);
    i = end;
    auto bad = [&](const char* what) {
      error = std::string(what) + ": \"" + std::string(term.substr(0, 64)) + "\"";
      return std::nullopt;
    };

    Term t;
    std::string_view body = term;
    bool qualified = false;
    if (std::string_view("+-?~").find(body.front()) != std::string_view::npos) {
      t.qualifier = body.front();
      body.remove_prefix(1);
      qualified = true;
    }
    std::size_t w = 0;
    while (w < body.size() && is_alnum(body[w])) ++w;
    const std::string word = lower(body.substr(0, w));
    const std::string_view rest = body.substr(w);
    static const std::vector<std::string> mechanisms = {"all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists"};
    const bool is_mech = std::find(mechanisms.begin(), mechanisms.end(), word) != mechanisms.end() &&
                         (rest.empty() || rest.front() == ':' || rest.front() == '/');
    if (!is_mech) {
      // modifier: name "=" macro-string
      auto eq = body.find('=');
      if (eq == std::string_view::npos || qualified) return bad("unknown mechanism");
      std::string_view name = body.substr(0, eq), value = body.substr(eq + 1);
      if (name.empty() || !is_alpha(name.front())) return bad("bad modifier name");
      for (char c : name)
        if (!(is_alnum(c) || c == '-' || c == '_' || c == '.')) return bad("bad modifier name");
      const std::string n = lower(name);
      if (n == "redirect" || n == "exp") {
        auto& slot = n == "redirect" ? r.redirect : r.exp;
        if (slot) return bad("modifier given twice");
        if (!valid_domain_spec(value)) return bad("bad domain-spec");
        slot = std::string(value);
      } else if (!valid_macro_string(value, false)) {
        return bad("bad macro-string");
      }
      continue;
    }
    t.mechanism = word;
    if (word == "all") {
      if (!rest.empty()) return bad("\"all\" takes no argument");
      r.has_all = true;
    } else if (word == "include" || word == "exists") {
      if (rest.empty() || rest.front() != ':' || !valid_domain_spec(rest.substr(1))) return bad("bad domain-spec");
      t.domain_spec = std::string(rest.substr(1));
    } else if (word == "ptr") {
      if (!rest.empty()) {
        if (rest.front() != ':' || !valid_domain_spec(rest.substr(1))) return bad("bad domain-spec");
        t.domain_spec = std::string(rest.substr(1));
      }
    } else if (word == "a" || word == "mx") {
      std::string_view domain;
      if (!split_dual_cidr(rest, domain, t.cidr4, t.cidr6)) return bad("bad prefix length");
      if (!domain.empty()) {
        if (domain.front() != ':' || !valid_domain_spec(domain.substr(1))) return bad("bad domain-spec");
        t.domain_spec = std::string(domain.substr(1));
      }
    } else {  // ip4 / ip6
      if (rest.empty() || rest.front() != ':') return bad("missing address");
      std::string_view addr = rest.substr(1);
      auto slash = addr.find('/');
      if (slash != std::string_view::npos) {
        if (!parse_cidr(addr.substr(slash + 1), word == "ip4" ? 32 : 128, word == "ip4" ? t.cidr4 : t.cidr6))
          return bad("bad prefix length");
        addr = addr.substr(0, slash);
      }
      t.ip = std::string(addr);
      if (word == "ip4" ? !valid_ip4(t.ip) : !valid_ip6(t.ip)) return bad("bad address");
    }
    r.terms.push_back(std::move(t));
  }
  return r;
}

std::string libspf2_record(const Record& r, bool client_v4, const std::function<std::string(const std::string&)>& name_for,
                           std::vector<ZeroCidr>& zero_cidr) {
  std::string out = "v=spf1";
  for (auto& t : r.terms) {
    std::string q = t.qualifier == '+' ? "" : std::string(1, t.qualifier);
    if (t.mechanism == "ip4" || t.mechanism == "ip6") {
      const bool v4 = t.mechanism == "ip4";
      const int len = v4 ? t.cidr4 : t.cidr6;
      if (len == 0) {
        out += v4 ? " " + q + "ip4:0.0.0.0/1 " + q + "ip4:128.0.0.0/1" : " " + q + "ip6:::/1 " + q + "ip6:8000::/1";
        continue;
      }
      out += " " + q + t.mechanism + ":" + t.ip + (len >= 0 ? "/" + std::to_string(len) : "");
      continue;
    }
    out += " " + q + t.mechanism;
    const std::string name = t.domain_spec.empty() ? std::string() : name_for(t.domain_spec);
    if (!name.empty()) out += ":" + name;
    if (t.mechanism == "a" || t.mechanism == "mx") {
      int c4 = t.cidr4, c6 = t.cidr6;
      if (c4 == 0) {
        if (client_v4) {
          c4 = 1;
          zero_cidr.push_back({t.mechanism, name});
        } else {
          c4 = -1;
        }
      }
      if (c6 == 0) {
        if (!client_v4) {
          c6 = 1;
          zero_cidr.push_back({t.mechanism, name});
        } else {
          c6 = -1;
        }
      }
      if (c4 >= 0) out += "/" + std::to_string(c4);
      if (c6 >= 0) out += "//" + std::to_string(c6);
    }
  }
  if (r.redirect && !r.has_all) out += " redirect=" + name_for(*r.redirect);
  return out;
}

}  // namespace gw::spf
