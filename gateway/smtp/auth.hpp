// SMTP AUTH (RFC 4954) for submission listeners.
#pragma once
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "gateway/config/config.hpp"
#include "gateway/core/transaction.hpp"
#include "gateway/net/deadline.hpp"
#include "gateway/net/stream.hpp"

namespace gw::smtp::auth {

struct Outcome {
  std::string reply;   // wire form, CRLF-terminated
  bool ok = false;
  bool close = false;
};

// The "250-AUTH ..." EHLO line, or "" when AUTH is not offered here (no users_file, or no TLS yet).
std::string advertisement(const config::ListenerConfig& listener, const config::Config& cfg, const Connection& conn);

// Runs one AUTH exchange (`arg` is what followed "AUTH "); sets conn.auth_user on success.
boost::asio::awaitable<Outcome> run(std::string_view arg, net::Stream& stream, net::Deadline& deadline,
                                    const config::ListenerConfig& listener, const config::Config& cfg,
                                    Connection& conn);

}  // namespace gw::smtp::auth
