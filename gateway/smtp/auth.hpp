// SMTP AUTH (RFC 4954) for submission listeners: PLAIN and LOGIN, only over TLS, checked against the
// crypt(3) hashes of [auth] users_file. crypt() is slow by design, so it runs on a small worker pool
// and the session's coroutine resumes on its own executor: the event loop never waits for a hash.
#pragma once
#include <chrono>
#include <optional>
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

// AUTH exists on this listener at all: [auth] users_file is set and the listener has require_auth
// or is a submission listener. It is advertised (and accepted) only once the session has TLS.
bool available(const config::ListenerConfig& listener, const config::Config& cfg);

// The "250-AUTH ..." EHLO line, or "" when AUTH is not offered here (no users_file, or no TLS yet).
std::string advertisement(const config::ListenerConfig& listener, const config::Config& cfg, const Connection& conn);

// Runs one AUTH exchange (`arg` is what followed "AUTH "); sets conn.auth_user on success.
// Replies already queued by the session must be flushed before (the 334 prompts go out directly).
boost::asio::awaitable<Outcome> run(std::string_view arg, net::Stream& stream, net::Deadline& deadline,
                                    const config::ListenerConfig& listener, const config::Config& cfg,
                                    Connection& conn);

// --- pieces, exposed for unit tests ---
// Strict RFC 4648 base64 (padding required, no whitespace); nullopt when malformed.
std::optional<std::string> base64_decode(std::string_view in);
std::string base64_encode(std::string_view in);
// The pause before the n-th consecutive 535 to one client IP (n >= 1): 500 ms doubling, at most 5 s.
std::chrono::milliseconds failure_delay(unsigned n);
// crypt(3) check of `password` against `hash`, constant-time compare. Blocking: call off the event loop.
bool check_password(const std::string& password, const std::string& hash);

}  // namespace gw::smtp::auth
