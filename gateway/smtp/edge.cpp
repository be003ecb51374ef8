#include "gateway/smtp/edge.hpp"

#include "gateway/dns/wire.hpp"
#include "gateway/observe/log.hpp"
#include "gateway/observe/metrics.hpp"

namespace gw::smtp::edge {
namespace {

// The client's PTR name (no trailing dot) into conn.client.rdns, or rdns_tempfail when the lookup
// failed temporarily. Loopback clients are not looked up.
boost::asio::awaitable<void> lookup_rdns(ServerState& server, Connection& conn) {
  if (!server.resolver) co_return;
  const auto& a = conn.client.address;
  if (a.is_loopback() || (a.is_v4() && (a.to_v4().to_uint() >> 24) == 127) || a.is_unspecified()) co_return;
  auto ans = co_await server.resolver->query(dns::reverse_name(a), dns::Type::PTR);
  if (ans.status == dns::Status::ok && !ans.records.empty()) conn.client.rdns = ans.records.front();
  else if (ans.status == dns::Status::temperror) conn.client.rdns_tempfail = true;
}

}  // namespace

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
  co_await lookup_rdns(server, conn);
  co_return true;
}

}  // namespace gw::smtp::edge
