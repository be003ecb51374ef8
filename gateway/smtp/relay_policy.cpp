#include "gateway/smtp/relay_policy.hpp"

namespace gw::smtp {

bool relay_allowed(const std::vector<std::string>& domains, bool outbound_client, const Path& rcpt) {
  if (domains.empty() || outbound_client) return true;
  if (rcpt.domain.empty()) return true;  // <postmaster>
  if (!rcpt.source_route.empty()) return false;
  if (rcpt.local_part.find_first_of("%!") != std::string::npos && rcpt.local_part.front() != '"') return false;
  if (rcpt.local_part.front() == '"' && rcpt.local_part.find_first_of("%!@") != std::string::npos) return false;
  for (auto& d : domains) {
    if (d.front() == '.') {
      if (rcpt.domain.size() > d.size() && rcpt.domain.compare(rcpt.domain.size() - d.size(), d.size(), d) == 0)
        return true;
    } else if (rcpt.domain == d) {
      return true;
    }
  }
  return false;
}

}  // namespace gw::smtp
