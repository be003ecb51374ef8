// RFC 7208 record syntax (§4.6, §5, §6, §12 ABNF) and macro expansion (§7), independent of libspf2.
//
// Every record is parsed here before libspf2 compiles it: a record that is not valid RFC 7208 is a
// permerror without libspf2 ever seeing it (libspf2 1.2.10 implements RFC 4408 and is lax), and
// what libspf2 gets is a normalised record it evaluates as RFC 7208 says (see libspf2_record()).
// The explanation (exp=) is expanded here too: libspf2 1.2.10's explanation expansion is broken.
#pragma once
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gw::spf {

struct Term {
  char qualifier = '+';
  std::string mechanism;    // all include a mx ptr ip4 ip6 exists (lower case)
  std::string domain_spec;  // may be empty (a, mx, ptr: the current domain)
  std::string ip;           // ip4 / ip6
  int cidr4 = -1;           // -1: not given
  int cidr6 = -1;
};

struct Record {
  std::vector<Term> terms;
  std::optional<std::string> redirect;  // domain-spec
  std::optional<std::string> exp;       // domain-spec
  bool has_all = false;
};

// nullopt and `error` set for a record that is not RFC 7208 syntax (a permerror). `text` must be
// the record itself, starting with "v=spf1".
std::optional<Record> parse_record(std::string_view text, std::string& error);

// The record as handed to libspf2 for a client of the given family:
//  - unknown modifiers and exp= dropped (exp= is ours), redirect= dropped when "all" is present
//    (RFC 7208 §6.1) and otherwise placed last;
//  - ip4:x/0 and ip6:x/0 as two /1 halves (libspf2 reads a 0 prefix as "no prefix");
//  - a/mx prefix lengths of 0: dropped for the other family; for the client's family set to 1, and
//    `zero_cidr` gets the mechanism's domain ("" = the current domain) so the DNS layer can
//    answer that name's addresses with the client's own (every address is inside a /0).
//  - every domain-spec replaced by `name_for(domain_spec)`: the caller expands the macros itself,
//    so libspf2 never expands a macro (its expansion is where its CVEs live).
struct ZeroCidr {
  std::string mechanism;  // "a" or "mx"
  std::string domain;     // name_for() of its domain-spec, "" for the current domain
};
std::string libspf2_record(const Record& r, bool client_v4, const std::function<std::string(const std::string&)>& name_for,
                           std::vector<ZeroCidr>& zero_cidr);

struct MacroContext {
  std::string sender;    // local@domain (postmaster@helo for the HELO identity)
  std::string local;
  std::string sender_domain;
  std::string domain;    // current domain
  std::string ip;        // textual client address
  bool v4 = true;
  std::string helo;
  std::string receiver;
  long long timestamp = 0;
  std::string p = "unknown";  // the validated name of the client (%{p}), found by the caller
};

// Expands a macro-string. `exp` allows the c, r and t letters (explanation text). nullopt for a
// syntax error. A domain-spec expansion longer than 253 octets loses labels from the left (§7.3).
std::optional<std::string> expand(std::string_view macro_string, const MacroContext& ctx, bool exp, bool domain = true);

// True when the whole string is valid macro-string syntax (letters per `exp`).
bool valid_macro_string(std::string_view s, bool exp);

}  // namespace gw::spf
