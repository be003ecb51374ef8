// DMARC records and their evaluation (RFC 7489 §6.3, §6.6): record selection, parsing (libopendmarc),
// organizational domains (libpsl), identifier alignment, result, policy and pct. No I/O here: the
// plugin fetches the TXT records through the gateway's resolver and hands them in.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gateway/dns/resolver.hpp"

struct psl_ctx_st;

namespace gw::dmarc {

// The public suffix list, loaded once (libpsl); lookups are thread-safe.
class OrgDomains {
 public:
  explicit OrgDomains(const std::string& path);  // throws std::runtime_error when unreadable
  ~OrgDomains();
  OrgDomains(const OrgDomains&) = delete;
  OrgDomains& operator=(const OrgDomains&) = delete;
  // The organizational domain of `domain` (RFC 7489 §3.2): the public suffix plus one label; a
  // domain that is itself a public suffix is its own.
  std::string of(const std::string& domain) const;

 private:
  const psl_ctx_st* psl_ = nullptr;
};

struct Record {
  std::string domain;            // where it was found
  char p = 'n', sp = 'n';        // 'n' none, 'q' quarantine, 'r' reject (sp defaults to p)
  bool sp_given = false;
  int pct = 100;
  char adkim = 'r', aspf = 'r';  // 'r' relaxed, 's' strict
  std::string fo = "0";
  std::vector<std::string> rua;  // the URIs as published
};

// Among the TXT strings at _dmarc.<domain>, the DMARC records (RFC 7489 §6.6.3 step 3).
std::vector<std::string> dmarc_records(const std::vector<std::string>& txt);
// Parses one record with libopendmarc; nullopt for a record that is no valid policy (bad or missing
// p=, a bad tag value).
std::optional<Record> parse_record(const std::string& text, const std::string& domain);

// Outcome of policy discovery (RFC 7489 §6.6.3).
struct Discovery {
  enum class Kind { found, none, temperror } kind = Kind::none;
  Record record;
  std::string problem;  // for none/temperror, for logs
};
// One lookup's answer -> found (one valid record), none (no record, or several, or an invalid one:
// no policy), temperror, or nullopt = nothing here, look further (no DMARC record at this name).
std::optional<Discovery> discover_at(const dns::Answer& a, const std::string& domain);

const char* policy_word(char p);  // "none" "quarantine" "reject"

struct Identifiers {
  std::string from_domain;
  std::string spf_result;  // RFC 8601 word, "" when SPF did not run
  std::string spf_domain;  // MAIL FROM domain, or the HELO name for the null sender
  struct Dkim {
    std::string domain, selector, result;
  };
  std::vector<Dkim> dkim;
};

struct Evaluation {
  std::string result;       // pass fail (policy found)
  bool spf_aligned = false;  // an aligned SPF pass
  bool dkim_aligned = false;  // an aligned DKIM pass
  char policy = 'n';        // p or sp as it applies to the From domain, before pct
  char applied = 'n';       // after pct (for fail); 'n' for pass
  bool sampled_out = false;  // pct lowered the policy
};

// `roll` is a number in [0, 100): the message is sampled in when roll < pct.
Evaluation evaluate(const Record& rec, const Identifiers& ids, const OrgDomains& org, int roll);

}  // namespace gw::dmarc
