// Who may relay where (README "SMTP behaviour"): a recipient outside `relay.domains` is accepted only
// from a trusted or authenticated client.
#pragma once
#include <string>
#include <vector>

#include "gateway/smtp/parser.hpp"

namespace gw::smtp {

// `domains` as configured: "example.test" matches exactly, ".example.test" matches its subdomains.
// Empty = the upstream decides. Source routes and %-hack / bang paths are never relayed for an
// outside client (the upstream could relay them elsewhere).
bool relay_allowed(const std::vector<std::string>& domains, bool outbound_client, const Path& rcpt);

}  // namespace gw::smtp
