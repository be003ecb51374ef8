// The Received: trace field of our hop (RFC 5321 §4.4), written above the message unless the upstream
// got the client's facts by XCLIENT.
#pragma once
#include <string>

#include "gateway/core/transaction.hpp"

namespace gw::smtp {

// The field's value (without "Received: "), folded with CRLF TAB. `hostname` is server.hostname.
std::string received_header(const Transaction& tx, const std::string& hostname);

// "Wed, 02 Dec 2026 21:00:00 +0000" (RFC 5322 §3.3), now, in UTC.
std::string rfc5322_date();

}  // namespace gw::smtp
