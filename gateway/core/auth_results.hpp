// Authentication-Results fields (RFC 8601) that arrive with a message: the ones that claim our
// authserv-id are forgeries (§5: a border MTA removes them) and are dropped before the plugins run.
#pragma once
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "gateway/core/message.hpp"

namespace gw {

// The authserv-id of an Authentication-Results value (comments skipped, quotes removed).
std::optional<std::string> authserv_id_of(std::string_view value);

// Marks removed every Authentication-Results field whose authserv-id equals `authserv_id`
// (case-insensitive). Returns how many were removed.
std::size_t remove_forged_auth_results(Message& msg, std::string_view authserv_id);

}  // namespace gw
