// The pure parts of the dnsbl plugin (RFC 5782): the names queried, which answers count, and the
// score of a client. No I/O here, so each rule is unit-tested on its own (tests/unit/dnsbl).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/ip/address.hpp>

#include "gateway/dns/resolver.hpp"

namespace gw::plugins::dnsbl {

// An inclusive range of IPv4 answers, e.g. 127.0.0.4-127.0.0.7 (a single code is a range of one).
struct CodeRange {
  std::uint32_t first = 0;
  std::uint32_t last = 0;
  bool contains(std::uint32_t a) const { return a >= first && a <= last; }
};

// "127.0.0.2" or "127.0.0.4-127.0.0.7"; nullopt with `error` set for anything else.
std::optional<CodeRange> parse_code_range(std::string_view text, std::string& error);

// A dotted-quad IPv4 address as a number; nullopt for anything else (an AAAA answer, garbage).
std::optional<std::uint32_t> parse_ipv4(std::string_view text);

// Whether one A answer counts for a list with these `codes` (empty = any): only 127.0.0.0/8 counts,
// and never 127.255.255.0/24, the lists' own error answers (RFC 5782 §2.1 keeps 127.0.0.0/8 for
// list entries; e.g. 127.255.255.254 = "query refused"), even when `codes` names one.
bool counts(std::uint32_t answer, const std::vector<CodeRange>& codes);
// An answer in 127.255.255.0/24.
bool is_list_error(std::uint32_t answer);

// The client list query name: reversed IPv4 octets or reversed IPv6 nibbles (RFC 5782 §2.1, §2.4)
// under `zone`, e.g. 2.0.0.127.zen.example. nullopt when the name would be too long for DNS.
std::optional<std::string> client_query_name(const boost::asio::ip::address& addr, std::string_view zone);

// The domain of a sender address (after the last '@'), lower-cased, without a final dot; empty for
// the null sender, an address without a domain, an address literal or a domain that is not a plain
// ASCII host name (it could not be queried as such).
std::string sender_domain(std::string_view sender);

// The domain list query name <domain>.<zone> (RFC 5782 §2.2); nullopt when too long for DNS.
std::optional<std::string> domain_query_name(std::string_view domain, std::string_view zone);

// A zone as configured: lower-cased, without a final dot; nullopt for a name that is not a host name.
std::optional<std::string> normalize_zone(std::string_view zone);

// What one list's lookup gave.
struct Outcome {
  enum class Kind { pending, hit, miss, error };
  Kind kind = Kind::pending;
  std::string code;        // hit: the first answer that counted
  std::string list_error;  // miss: the first 127.255.255.x answer, when the list sent one
  std::string error;       // error: "temperror", "permerror" or "timeout"
};

// The outcome of an answer to the A query of a list with these `codes`.
Outcome classify(const dns::Answer& answer, const std::vector<CodeRange>& codes);

// One list's part in a score.
struct Scored {
  std::string zone;
  int weight = 0;
  bool domain = false;  // a sender-domain list
  const Outcome* outcome = nullptr;
};

struct Score {
  int score = 0;        // sum of the weights of the lists that hit
  int certain = 0;      // score with every failed list of negative weight counted as a hit
  bool errors = false;  // a list lookup failed or timed out
  const Scored* top = nullptr;  // the hit with the largest weight (first of equals), for the reply
  std::vector<const Scored*> hits;
  std::vector<const Scored*> failed;
};

Score score(const std::vector<Scored>& lists);

// What the client gets at RCPT.
enum class Decision { pass, reject, tempfail };
// Refused when the score reaches `threshold` for sure (a failed allow list could have lowered it:
// then on_error decides); a failed lookup with `tempfail_on_error` tempfails, else it counts as no hit.
Decision decide(const Score& s, int threshold, bool tempfail_on_error);

}  // namespace gw::plugins::dnsbl
