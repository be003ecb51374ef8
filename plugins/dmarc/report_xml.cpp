#include "plugins/dmarc/report_xml.hpp"

#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <tuple>

#include "plugins/dmarc/policy.hpp"

namespace gw::dmarc {
namespace {

std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (c == '&') o += "&amp;";
    else if (c == '<') o += "&lt;";
    else if (c == '>') o += "&gt;";
    else if (c == '"') o += "&quot;";
    else if (u < 0x20 && c != '\t') continue;  // not allowed in XML 1.0
    else o += c;
  }
  return o;
}

std::string el(const char* name, const std::string& v) { return std::string("<") + name + ">" + esc(v) + "</" + name + ">"; }

// The values one row shows; equal keys are counted together.
struct RowKey {
  std::string ip, dis, dkim_al, spf_al, sampled, header_from, envelope_from, scope, spf, dkim;
  auto tie() const { return std::tie(ip, dis, dkim_al, spf_al, sampled, header_from, envelope_from, scope, spf, dkim); }
  bool operator<(const RowKey& o) const { return tie() < o.tie(); }
};

const char* spf_result_word(const std::string& r) {
  // SPFResultType has no "policy"; anything unknown reads as permerror
  for (const char* w : {"none", "neutral", "pass", "fail", "softfail", "temperror", "permerror"})
    if (r == w) return w;
  return "permerror";
}

const char* dkim_result_word(const std::string& r) {
  for (const char* w : {"none", "pass", "fail", "policy", "neutral", "temperror", "permerror"})
    if (r == w) return w;
  return "permerror";
}

}  // namespace

std::string report_file_name(const ReportMeta& m, const std::string& domain) {
  return m.receiver + "!" + domain + "!" + std::to_string(m.begin) + "!" + std::to_string(m.end) + ".xml.gz";
}

std::string report_xml(const ReportMeta& m, const std::string& domain, const std::vector<ReportRecord>& records) {
  const ReportRecord& newest = records.back();
  std::map<RowKey, std::pair<std::int64_t, const ReportRecord*>> rows;
  for (auto& r : records) {
    RowKey k{r.source_ip, r.disposition, r.dkim_aligned ? "pass" : "fail", r.spf_aligned ? "pass" : "fail",
             r.sampled_out ? "1" : "0", r.header_from, r.envelope_from, r.spf_scope, r.spf_result, ""};
    for (auto& d : r.dkim) k.dkim += d.domain + "\x1f" + d.selector + "\x1f" + d.result + "\x1e";
    auto& slot = rows[k];
    ++slot.first;
    slot.second = &r;
  }
  std::string x = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback>\n";
  x += "  <version>1.0</version>\n";
  x += "  <report_metadata>\n";
  x += "    " + el("org_name", m.org_name) + "\n";
  x += "    " + el("email", m.email) + "\n";
  x += "    " + el("report_id", std::to_string(m.begin) + "." + std::to_string(m.end) + "." + domain + "@" + m.receiver) + "\n";
  x += "    <date_range><begin>" + std::to_string(m.begin) + "</begin><end>" + std::to_string(m.end) + "</end></date_range>\n";
  x += "  </report_metadata>\n";
  x += "  <policy_published>\n";
  x += "    " + el("domain", newest.policy_domain) + "\n";
  x += "    " + el("adkim", std::string(1, newest.adkim)) + "\n";
  x += "    " + el("aspf", std::string(1, newest.aspf)) + "\n";
  x += "    " + el("p", policy_word(newest.p)) + "\n";
  x += "    " + el("sp", policy_word(newest.sp)) + "\n";
  x += "    " + el("pct", std::to_string(newest.pct)) + "\n";
  x += "    " + el("fo", newest.fo) + "\n";
  x += "  </policy_published>\n";
  for (auto& [k, v] : rows) {
    const ReportRecord& r = *v.second;
    x += "  <record>\n    <row>\n";
    x += "      " + el("source_ip", k.ip) + "\n";
    x += "      " + el("count", std::to_string(v.first)) + "\n";
    x += "      <policy_evaluated>" + el("disposition", k.dis) + el("dkim", k.dkim_al) + el("spf", k.spf_al);
    if (r.sampled_out) x += "<reason><type>sampled_out</type></reason>";
    x += "</policy_evaluated>\n    </row>\n";
    x += "    <identifiers>" + el("envelope_from", r.envelope_from) + el("header_from", r.header_from) + "</identifiers>\n";
    x += "    <auth_results>\n";
    for (auto& d : r.dkim) {
      x += "      <dkim>" + el("domain", d.domain);
      if (!d.selector.empty()) x += el("selector", d.selector);
      x += el("result", dkim_result_word(d.result)) + "</dkim>\n";
    }
    x += "      <spf>" + el("domain", r.envelope_from) + el("scope", r.spf_scope == "helo" ? "helo" : "mfrom") +
         el("result", spf_result_word(r.spf_result)) + "</spf>\n";
    x += "    </auth_results>\n  </record>\n";
  }
  x += "</feedback>\n";
  return x;
}

bool write_gzip(const std::string& path, const std::string& data, std::string& error) {
  const std::string tmp = path + ".tmp";
  gzFile f = gzopen(tmp.c_str(), "wb9");
  if (!f) {
    error = "cannot create " + tmp;
    return false;
  }
  bool ok = data.empty() || gzwrite(f, data.data(), static_cast<unsigned>(data.size())) == static_cast<int>(data.size());
  ok = gzclose(f) == Z_OK && ok;
  std::error_code ec;
  if (ok) std::filesystem::rename(tmp, path, ec);
  if (!ok || ec) {
    std::filesystem::remove(tmp, ec);
    error = "cannot write " + path;
    return false;
  }
  return true;
}

}  // namespace gw::dmarc
