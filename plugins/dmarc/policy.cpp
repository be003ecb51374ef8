#include "plugins/dmarc/policy.hpp"

#include <libpsl.h>
#include <sys/types.h>

#include <cctype>
#include <cstring>
#include <mutex>
#include <stdexcept>

extern "C" {
#include <opendmarc/dmarc.h>
}

namespace gw::dmarc {

OrgDomains::OrgDomains(const std::string& path) {
  psl_ = psl_load_file(path.c_str());
  if (!psl_) throw std::runtime_error("cannot read the public suffix list " + path);
}

OrgDomains::~OrgDomains() {
  if (psl_) psl_free(const_cast<psl_ctx_t*>(psl_));
}

std::string OrgDomains::of(const std::string& domain) const {
  const char* r = psl_registrable_domain(psl_, domain.c_str());
  return r ? std::string(r) : domain;
}

std::vector<std::string> dmarc_records(const std::vector<std::string>& txt) {
  // dmarc-version = "v" *WSP "=" *WSP "DMARC1" (the tag name is case-insensitive, the value is not),
  // then the end, WSP or ';'.
  std::vector<std::string> out;
  for (auto& t : txt) {
    size_t i = 0;
    auto ws = [&] { while (i < t.size() && (t[i] == ' ' || t[i] == '\t')) ++i; };
    if (t.empty() || (t[0] != 'v' && t[0] != 'V')) continue;
    i = 1;
    ws();
    if (i >= t.size() || t[i] != '=') continue;
    ++i;
    ws();
    if (t.compare(i, 6, "DMARC1") != 0) continue;
    i += 6;
    if (i < t.size() && t[i] != ';' && t[i] != ' ' && t[i] != '\t') continue;
    out.push_back(t);
  }
  return out;
}

namespace {
void library_init() {
  static std::once_flag once;
  std::call_once(once, [] {
    static OPENDMARC_LIB_T lib;
    std::memset(&lib, 0, sizeof lib);
    lib.tld_type = OPENDMARC_TLD_TYPE_NONE;  // organizational domains come from libpsl
    opendmarc_policy_library_init(&lib);
  });
}
}  // namespace

std::optional<Record> parse_record(const std::string& text, const std::string& domain) {
  library_init();
  // The context wants a client address; parsing does not use it.
  DMARC_POLICY_T* ctx = opendmarc_policy_connect_init(reinterpret_cast<u_char*>(const_cast<char*>("0.0.0.0")),
                                                      DMARC_POLICY_IP_TYPE_IPV4);
  if (!ctx) return std::nullopt;
  std::string rec = text, dom = domain;
  OPENDMARC_STATUS_T st = opendmarc_policy_parse_dmarc(ctx, reinterpret_cast<u_char*>(dom.data()),
                                                       reinterpret_cast<u_char*>(rec.data()));
  std::optional<Record> out;
  int p = 0, sp = 0, pct = 100, adkim = 0, aspf = 0;
  if (st == DMARC_PARSE_OKAY && opendmarc_policy_fetch_p(ctx, &p) == DMARC_PARSE_OKAY &&
      (p == DMARC_RECORD_P_NONE || p == DMARC_RECORD_P_QUARANTINE || p == DMARC_RECORD_P_REJECT)) {
    Record r;
    r.domain = domain;
    r.p = static_cast<char>(p);
    opendmarc_policy_fetch_sp(ctx, &sp);
    r.sp_given = sp == DMARC_RECORD_P_NONE || sp == DMARC_RECORD_P_QUARANTINE || sp == DMARC_RECORD_P_REJECT;
    r.sp = r.sp_given ? static_cast<char>(sp) : r.p;
    if (opendmarc_policy_fetch_pct(ctx, &pct) == DMARC_PARSE_OKAY) r.pct = pct < 0 ? 100 : pct > 100 ? 100 : pct;
    if (opendmarc_policy_fetch_adkim(ctx, &adkim) == DMARC_PARSE_OKAY && adkim == DMARC_RECORD_A_STRICT) r.adkim = 's';
    if (opendmarc_policy_fetch_aspf(ctx, &aspf) == DMARC_PARSE_OKAY && aspf == DMARC_RECORD_A_STRICT) r.aspf = 's';
    if (u_char** rua = opendmarc_policy_fetch_rua(ctx, nullptr, 0, 1))
      for (int i = 0; rua[i]; ++i) r.rua.emplace_back(reinterpret_cast<char*>(rua[i]));
    // fo= for the report's policy_published: the library keeps it as a bit set
    for (size_t at = 0; (at = text.find("fo", at)) != std::string::npos; at += 2) {
      size_t b = at == 0 ? 0 : text.find_last_not_of(" \t", at - 1);
      if (at != 0 && (b == std::string::npos || text[b] != ';')) continue;
      size_t eq = text.find_first_not_of(" \t", at + 2);
      if (eq == std::string::npos || text[eq] != '=') continue;
      size_t end = text.find(';', eq);
      std::string v = text.substr(eq + 1, end == std::string::npos ? std::string::npos : end - eq - 1);
      std::string clean;
      for (char c : v)
        if (c != ' ' && c != '\t') clean += c;
      if (!clean.empty()) r.fo = clean;
      break;
    }
    out = std::move(r);
  }
  opendmarc_policy_connect_shutdown(ctx);
  return out;
}

std::optional<Discovery> discover_at(const dns::Answer& a, const std::string& domain) {
  Discovery d;
  if (a.status == dns::Status::temperror) {
    d.kind = Discovery::Kind::temperror;
    d.problem = "DNS lookup of _dmarc." + domain + " failed";
    return d;
  }
  if (a.status != dns::Status::ok) return std::nullopt;  // nxdomain, nodata, malformed: nothing here
  auto recs = dmarc_records(a.records);
  if (recs.empty()) return std::nullopt;
  if (recs.size() > 1) {
    d.problem = "several DMARC records at _dmarc." + domain;
    return d;
  }
  auto rec = parse_record(recs[0], domain);
  if (!rec) {
    d.problem = "invalid DMARC record at _dmarc." + domain;
    return d;
  }
  d.kind = Discovery::Kind::found;
  d.record = std::move(*rec);
  return d;
}

const char* policy_word(char p) {
  switch (p) {
    case 'q': return "quarantine";
    case 'r': return "reject";
    default: return "none";
  }
}

namespace {
std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  while (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}
bool aligned(const std::string& a_in, const std::string& b_in, char mode, const OrgDomains& org) {
  std::string a = lower(a_in), b = lower(b_in);
  if (a.empty() || b.empty()) return false;
  if (a == b) return true;
  return mode != 's' && org.of(a) == org.of(b);
}
}  // namespace

Evaluation evaluate(const Record& rec, const Identifiers& ids, const OrgDomains& org, int roll) {
  Evaluation e;
  e.spf_aligned = ids.spf_result == "pass" && aligned(ids.spf_domain, ids.from_domain, rec.aspf, org);
  for (auto& d : ids.dkim)
    if (d.result == "pass" && aligned(d.domain, ids.from_domain, rec.adkim, org)) e.dkim_aligned = true;
  // sp= applies below the domain whose record was used (the organizational domain's)
  e.policy = lower(ids.from_domain) != lower(rec.domain) ? rec.sp : rec.p;
  if (e.spf_aligned || e.dkim_aligned) {
    e.result = "pass";
    e.applied = 'n';
    return e;
  }
  e.result = "fail";
  e.applied = e.policy;
  if (e.policy != 'n' && roll >= rec.pct) {  // sampled out: the next lower policy
    e.sampled_out = true;
    e.applied = e.policy == 'r' ? 'q' : 'n';
  }
  return e;
}

}  // namespace gw::dmarc
