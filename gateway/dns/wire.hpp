// DNS wire format (RFC 1035): building one query and parsing its answer. Pure functions, no I/O, so
// the parser can be tested and fuzzed on hostile packets: every read is bounds-checked, compression
// pointers must point backwards (no loops), labels are at most 63 octets and names at most 255.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/ip/address.hpp>

#include "gateway/dns/resolver.hpp"

namespace gw::dns {

// Lower-cases `name`, drops one final dot and checks the syntax a query name needs (labels 1..63
// octets, whole name at most 253 octets, no empty label). nullopt for a name that cannot be queried.
std::optional<std::string> normalize_name(std::string_view name);

// A query with RD set and an EDNS0 OPT record advertising `udp_size` (0 = no OPT).
std::vector<std::uint8_t> build_query(std::uint16_t id, const std::string& name, Type type, std::uint16_t udp_size = 1232);

struct Parsed {
  std::uint16_t id = 0;
  bool truncated = false;
  unsigned rcode = 0;
  bool question_matches = false;  // exactly one question, same name (case-insensitive), type, class IN
  Answer answer;                  // status from rcode and records; ttl = min TTL (negative: SOA rule)
  bool has_soa = false;           // a negative answer carried an SOA (its TTL rule was applied)
};

// Parses a response to a query for (name, type). nullopt for a malformed packet. Answer records are
// collected along the CNAME chain starting at `name` (at most 16 links). For NXDOMAIN/NODATA the TTL
// is min(SOA TTL, SOA MINIMUM) from the authority section (RFC 2308 §5) when an SOA is present.
std::optional<Parsed> parse_response(const std::uint8_t* data, std::size_t size, const std::string& name, Type type);

// Reads the (possibly compressed) name at `pos`; advances `pos` past it in the record. Exposed for tests.
std::optional<std::string> read_name(const std::uint8_t* data, std::size_t size, std::size_t& pos);

// "4.3.2.1.in-addr.arpa" / nibble form under ip6.arpa, for PTR lookups.
std::string reverse_name(const boost::asio::ip::address& addr);

const char* status_name(Status s);

}  // namespace gw::dns
