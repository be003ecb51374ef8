#include "gateway/smtp/edge.hpp"

#include "gateway/observe/log.hpp"
#include "gateway/observe/metrics.hpp"

namespace gw::smtp::edge {

boost::asio::awaitable<bool> before_greeting(net::Stream& stream, net::Deadline& deadline,
                                             const config::ListenerConfig& listener, const config::Config& cfg,
                                             ServerState& server, Connection& conn) {
  if (listener.tls == config::ListenerTls::implicit) {
    auto ctx = server.server_tls();
    if (!ctx) co_return false;
    deadline.expires_after(cfg.server.command_timeout);
    auto ec = co_await stream.handshake_server(*ctx);
    auto& counter = observe::Metrics::instance().counter("smtpgw_tls_handshakes_total", "TLS handshakes by result",
                                                         ec ? R"(result="failed")" : R"(result="ok")");
    counter.inc();
    if (ec) {
      log::warn("tls_handshake_failed", {{"client", conn.client.ip}, {"error", ec.message()}});
      co_return false;
    }
    conn.tls = true;
    conn.tls_version = stream.tls_version();
    conn.tls_cipher = stream.tls_cipher();
  }
  co_return true;
}

}  // namespace gw::smtp::edge
