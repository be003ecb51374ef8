#include "plugins/dmarc/from_domain.hpp"

#include <algorithm>
#include <cctype>

namespace gw::dmarc {
namespace {

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

// The domain of one addr-spec ("local@domain"): after the last '@' outside quotes, lower case, no
// trailing dot; "" when there is none or it is not a plausible host name.
std::string domain_of(const std::string& addr) {
  size_t at = std::string::npos;
  bool quoted = false;
  for (size_t i = 0; i < addr.size(); ++i) {
    if (addr[i] == '\\' && quoted) { ++i; continue; }
    if (addr[i] == '"') quoted = !quoted;
    else if (addr[i] == '@' && !quoted) at = i;
  }
  if (at == std::string::npos) return "";
  std::string d = trim(std::string_view(addr).substr(at + 1));
  while (!d.empty() && d.back() == '.') d.pop_back();
  if (d.empty() || d.size() > 253) return "";
  for (char& c : d) {
    unsigned char u = static_cast<unsigned char>(c);
    if (!(std::isalnum(u) || c == '-' || c == '.' || c == '_' || u >= 0x80)) return "";  // a domain literal too
    c = static_cast<char>(std::tolower(u));
  }
  return d;
}

}  // namespace

std::vector<std::string> address_domains(std::string_view v) {
  // One pass: comments dropped, quoted strings kept as is, an angle address replaces what preceded it
  // in its mailbox; ',' ends a mailbox, ':' (outside <>) opens a group (its display name is dropped),
  // ';' closes it.
  std::vector<std::string> out;
  std::string cur, angle;
  bool in_angle = false, have_angle = false;
  auto finish = [&] {
    std::string addr = have_angle ? angle : trim(cur);
    if (!addr.empty()) out.push_back(domain_of(addr));
    cur.clear();
    angle.clear();
    have_angle = false;
  };
  for (size_t i = 0; i < v.size(); ++i) {
    char c = v[i];
    if (c == '(') {  // comment, nested
      int depth = 1;
      for (++i; i < v.size() && depth > 0; ++i) {
        if (v[i] == '\\') ++i;
        else if (v[i] == '(') ++depth;
        else if (v[i] == ')') --depth;
      }
      --i;
      cur += ' ';
      continue;
    }
    if (c == '"') {
      std::string q = "\"";
      for (++i; i < v.size() && v[i] != '"'; ++i) {
        if (v[i] == '\\' && i + 1 < v.size()) q += v[i++];
        q += v[i];
      }
      q += '"';
      (in_angle ? angle : cur) += q;
      continue;
    }
    if (in_angle) {
      if (c == '>') in_angle = false;
      else angle += c;
      continue;
    }
    if (c == '<') {
      in_angle = true;
      have_angle = true;
      angle.clear();
    } else if (c == ',') {
      finish();
    } else if (c == ':') {
      cur.clear();  // group display name
    } else if (c == ';') {
      finish();
    } else {
      cur += c;
    }
  }
  finish();
  // an angle address may carry a source route: "@a,@b:user@dom" -> the part after the last ':'
  return out;
}

FromDomain from_domain(const std::vector<std::string>& fields) {
  FromDomain r;
  if (fields.empty()) {
    r.problem = "no From field";
    return r;
  }
  if (fields.size() > 1) {
    r.problem = "several From fields";
    return r;
  }
  auto domains = address_domains(fields[0]);
  if (domains.empty()) {
    r.problem = "no address in the From field";
    return r;
  }
  for (auto& d : domains) {
    if (d.empty()) {
      r.problem = "an address of the From field has no usable domain";
      return r;
    }
    if (d != domains[0]) {
      r.problem = "the From field holds addresses in several domains";
      return r;
    }
  }
  r.domain = domains[0];
  return r;
}

}  // namespace gw::dmarc
