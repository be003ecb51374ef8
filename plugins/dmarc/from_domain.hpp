// The RFC5322.From domain of a message (RFC 7489 §6.6.1): the domain of the address(es) of its one
// From field, lower case, without a trailing dot.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gw::dmarc {

struct FromDomain {
  std::optional<std::string> domain;  // set when there is exactly one From field whose addresses share one domain
  std::string problem;                // else why not: "no From field", "several From fields", ...
};

FromDomain from_domain(const std::vector<std::string>& from_fields);

// The domains of the addresses in one address-list value (display names, comments, quoted strings,
// angle addresses and groups understood), lower case; an address without a domain gives "".
std::vector<std::string> address_domains(std::string_view value);

}  // namespace gw::dmarc
