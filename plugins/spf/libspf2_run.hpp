// The libspf2 side of an SPF check (see spf_check.hpp for the whole design): the per-check state
// the DNS layer serves answers from, the limits enforced before libspf2 sees DNS data, and one
// synchronous libspf2 run. spf_check.cpp holds the asynchronous re-run loop around it.
#pragma once
#include <netinet/in.h>

#include <cstddef>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/ip/address.hpp>

#include "gateway/dns/resolver.hpp"
#include "gateway/dns/wire.hpp"
#include "plugins/spf/spf_check.hpp"
#include "plugins/spf/spf_record.hpp"

namespace gw::spf::detail {

// Limits checked before libspf2 sees DNS data (docs/spf.md, "libspf2 and its CVEs").
inline constexpr std::size_t kMaxRecord = 2048;     // whole SPF record
inline constexpr std::size_t kMaxTerm = 255;        // one mechanism or modifier
inline constexpr std::size_t kMaxPercents = 32;     // macro segments in one term
inline constexpr std::size_t kMaxExplanation = 512; // exp= TXT text
inline constexpr int kMaxTerms = 10;                // RFC 7208 §4.6.4
inline constexpr int kMaxVoids = 2;
inline constexpr std::size_t kMaxNamesPerAnswer = 10;  // MX (more is a permerror in libspf2) and PTR (first 10 used)

// A term or explanation libspf2 1.2.10 could mis-compile (CVE-2023-42118 class: ds_avail underflow
// when a term's compiled data nearly fills its 511-octet buffer): too long, or too many macros.
bool unsafe_for_compile(std::string_view record, std::size_t max_total);

// The key of an answer in CheckState::answers.
std::string key_of(const std::string& name, dns::Type t);

// State of one check, shared by its runs. The DNS layer reaches it through a thread-local pointer:
// a run is synchronous, so nothing else runs on this thread meanwhile.
struct CheckState {
  dns::Type addr_type = dns::Type::A;  // A for an IPv4 client, AAAA for IPv6
  std::map<std::string, dns::Answer> answers;
  std::vector<std::pair<std::string, dns::Type>> missing;
  std::set<std::string> missing_keys;
  // per run
  int get_spf_calls = 0;
  int terms = 0;
  int voids = 0;
  bool limit_exceeded = false;
  std::string limit_problem;
  std::set<std::string> sub_targets;  // names an MX/PTR answer just listed: their A lookups are not terms
  std::optional<std::string> top;     // result decided at the top-level record fetch
  std::string top_problem;
  // The client's real address while libspf2 is shown a stand-in (see run_libspf2: loopback clients).
  std::optional<in_addr> real_v4;
  std::optional<in6_addr> real_v6;
  // macro context (domain set per record), names handed to libspf2 for expanded domain-specs that
  // are not plain host names, and the names whose addresses stand in for a /0 prefix
  MacroContext ctx;
  std::map<std::string, std::string> alias;  // alias -> expanded name
  std::set<std::string> zero_a, zero_mx;     // libspf2-visible names
  std::set<std::string> zero_targets;        // MX targets of a zero_mx name
  // the records of the redirect chain from the top (the last one gives exp=)
  struct Link {
    std::string domain;
    Record record;
    std::string next;  // expanded redirect target, normalised; "" when none
  };
  std::vector<Link> chain;

  void new_run() {
    get_spf_calls = terms = voids = 0;
    limit_exceeded = false;
    limit_problem.clear();
    sub_targets.clear();
    top.reset();
    top_problem.clear();
    zero_a.clear();
    zero_mx.clear();
    zero_targets.clear();
    chain.clear();
  }
  // %{p} (RFC 7208 §7.3): a PTR name of the client whose addresses include it, one in the current
  // domain preferred, else "unknown". Answers not yet fetched are noted as missing.
  boost::asio::ip::address ip;
  std::string validated_p() {
    const dns::Answer* ptr = find(dns::reverse_name(ip), dns::Type::PTR);
    if (!ptr || ptr->status != dns::Status::ok) return "unknown";
    std::string best;
    std::size_t k = 0;
    for (auto& rec : ptr->records) {
      if (k++ >= kMaxNamesPerAnswer) break;
      auto n = dns::normalize_name(rec);
      if (!n) continue;
      const dns::Answer* a = find(*n, addr_type);
      if (!a || a->status != dns::Status::ok) continue;
      if (std::find(a->records.begin(), a->records.end(), ctx.ip) == a->records.end()) continue;
      const std::string d = ctx.domain;
      if (*n == d || (n->size() > d.size() && n->compare(n->size() - d.size() - 1, d.size() + 1, "." + d) == 0)) return *n;
      if (best.empty()) best = *n;
    }
    return best.empty() ? "unknown" : best;
  }
  static bool uses_p(std::string_view s) {
    for (std::size_t i = 0; i + 2 < s.size(); ++i)
      if (s[i] == '%' && s[i + 1] == '{' && (s[i + 2] == 'p' || s[i + 2] == 'P')) return true;
    return false;
  }
  // the name libspf2 gave back to us -> the name to query
  std::string real(const std::string& seen) const {
    auto it = alias.find(seen);
    return it == alias.end() ? seen : it->second;
  }
  // The resolver whose cache answers a name at once (no extra libspf2 run for it); may be null.
  dns::Resolver* resolver = nullptr;
  const dns::Answer* find(const std::string& name, dns::Type t) {
    auto k = key_of(name, t);
    auto it = answers.find(k);
    if (it != answers.end()) return &it->second;
    dns::Answer cached;
    if (resolver && resolver->cached_answer(name, t, cached)) return &(answers[k] = std::move(cached));
    if (missing_keys.insert(k).second) missing.emplace_back(name, t);
    return nullptr;
  }
  void count_term() {
    if (++terms > kMaxTerms && !limit_exceeded) {
      limit_exceeded = true;
      limit_problem = "more than 10 DNS-querying terms";
    }
  }
  void count_void() {
    if (++voids > kMaxVoids && !limit_exceeded) {
      limit_exceeded = true;
      limit_problem = "more than 2 void lookups";
    }
  }
};

struct RunOutcome {
  std::string result;
  std::string problem;
};

// One synchronous libspf2 run over the answers gathered so far (libspf2's server object is per
// thread). Names it needed and did not find are left in st.missing.
RunOutcome run_libspf2(CheckState& st, const Request& req);

}  // namespace gw::spf::detail
