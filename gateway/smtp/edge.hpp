// What happens on a new connection before the banner: the PROXY protocol header on listeners that
// take one, the implicit-TLS handshake on "implicit" listeners, and the client's reverse DNS.
#pragma once
#include <boost/asio/awaitable.hpp>

#include "gateway/config/config.hpp"
#include "gateway/core/transaction.hpp"
#include "gateway/net/deadline.hpp"
#include "gateway/net/stream.hpp"
#include "gateway/smtp/server_state.hpp"

namespace gw::smtp::edge {

// Fills or replaces the connection's client facts. false: close the connection (already logged).
boost::asio::awaitable<bool> before_greeting(net::Stream& stream, net::Deadline& deadline,
                                             const config::ListenerConfig& listener, const config::Config& cfg,
                                             ServerState& server, Connection& conn);

}  // namespace gw::smtp::edge
