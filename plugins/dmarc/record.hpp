// One evaluated message as recorded for aggregate reports (RFC 7489 §7.2), and its text form in the
// store's "dmarc" log: "key=value" lines, values percent-encoded, lists as repeated keys.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace gw::dmarc {

struct ReportRecord {
  std::int64_t time = 0;       // seconds since the epoch
  std::string source_ip;
  std::string header_from;
  std::string envelope_from;   // the SPF identity's domain (MAIL FROM, or HELO for the null sender)
  std::string spf_scope;       // "mfrom" | "helo"
  std::string spf_result;
  struct Dkim {
    std::string domain, selector, result;
  };
  std::vector<Dkim> dkim;
  // the policy published
  std::string policy_domain;
  char adkim = 'r', aspf = 'r', p = 'n', sp = 'n';
  int pct = 100;
  std::string fo = "0";
  std::vector<std::string> rua;
  // the policy evaluated
  std::string disposition;     // none quarantine reject
  bool dkim_aligned = false, spf_aligned = false;
  bool sampled_out = false;

  std::string encode() const;
  static std::optional<ReportRecord> decode(const std::string& text);
};

}  // namespace gw::dmarc
