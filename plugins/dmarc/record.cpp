#include "plugins/dmarc/record.hpp"

#include <charconv>
#include <string_view>

namespace gw::dmarc {
namespace {

std::string enc(std::string_view v) {
  static const char* hex = "0123456789ABCDEF";
  std::string o;
  for (char c : v) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || c == '%' || c == '=') {
      o += '%';
      o += hex[u >> 4];
      o += hex[u & 15];
    } else {
      o += c;
    }
  }
  return o;
}

std::optional<std::string> dec(std::string_view v) {
  std::string o;
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] != '%') {
      o += v[i];
      continue;
    }
    if (i + 2 >= v.size()) return std::nullopt;
    unsigned x = 0;
    auto [p, ec] = std::from_chars(v.data() + i + 1, v.data() + i + 3, x, 16);
    if (ec != std::errc() || p != v.data() + i + 3) return std::nullopt;
    o += static_cast<char>(x);
    i += 2;
  }
  return o;
}

}  // namespace

std::string ReportRecord::encode() const {
  std::string o = "v=1\n";
  auto kv = [&](const char* k, std::string_view v) {
    o += k;
    o += '=';
    o += enc(v);
    o += '\n';
  };
  kv("t", std::to_string(time));
  kv("ip", source_ip);
  kv("from", header_from);
  kv("mf", envelope_from);
  kv("scope", spf_scope);
  kv("spf", spf_result);
  for (auto& d : dkim) kv("dkim", enc(d.domain) + " " + enc(d.selector) + " " + enc(d.result));
  kv("pd", policy_domain);
  kv("adkim", std::string(1, adkim));
  kv("aspf", std::string(1, aspf));
  kv("p", std::string(1, p));
  kv("sp", std::string(1, sp));
  kv("pct", std::to_string(pct));
  kv("fo", fo);
  for (auto& u : rua) kv("rua", u);
  kv("dis", disposition);
  kv("dkim_al", dkim_aligned ? "1" : "0");
  kv("spf_al", spf_aligned ? "1" : "0");
  kv("sampled", sampled_out ? "1" : "0");
  return o;
}

std::optional<ReportRecord> ReportRecord::decode(const std::string& text) {
  ReportRecord r;
  bool versioned = false;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    std::string_view line(text.data() + pos, nl - pos);
    pos = nl + 1;
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) return std::nullopt;
    std::string_view k = line.substr(0, eq);
    auto vo = dec(line.substr(eq + 1));
    if (!vo) return std::nullopt;
    const std::string& v = *vo;
    auto ch = [&](char& c) { if (v.size() == 1) c = v[0]; };
    auto num = [&](auto& n) { std::from_chars(v.data(), v.data() + v.size(), n); };
    if (k == "v") versioned = v == "1";
    else if (k == "t") num(r.time);
    else if (k == "ip") r.source_ip = v;
    else if (k == "from") r.header_from = v;
    else if (k == "mf") r.envelope_from = v;
    else if (k == "scope") r.spf_scope = v;
    else if (k == "spf") r.spf_result = v;
    else if (k == "dkim") {
      Dkim d;
      size_t a = v.find(' '), b = a == std::string::npos ? a : v.find(' ', a + 1);
      if (b == std::string::npos) return std::nullopt;
      auto d1 = dec(v.substr(0, a)), d2 = dec(v.substr(a + 1, b - a - 1)), d3 = dec(v.substr(b + 1));
      if (!d1 || !d2 || !d3) return std::nullopt;
      r.dkim.push_back({*d1, *d2, *d3});
    } else if (k == "pd") r.policy_domain = v;
    else if (k == "adkim") ch(r.adkim);
    else if (k == "aspf") ch(r.aspf);
    else if (k == "p") ch(r.p);
    else if (k == "sp") ch(r.sp);
    else if (k == "pct") num(r.pct);
    else if (k == "fo") r.fo = v;
    else if (k == "rua") r.rua.push_back(v);
    else if (k == "dis") r.disposition = v;
    else if (k == "dkim_al") r.dkim_aligned = v == "1";
    else if (k == "spf_al") r.spf_aligned = v == "1";
    else if (k == "sampled") r.sampled_out = v == "1";
  }
  if (!versioned || r.header_from.empty() || r.policy_domain.empty()) return std::nullopt;
  return r;
}

}  // namespace gw::dmarc
