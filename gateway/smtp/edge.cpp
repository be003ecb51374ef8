#include "gateway/smtp/edge.hpp"

#include <cctype>

#include "gateway/dns/wire.hpp"
#include "gateway/observe/log.hpp"
#include "gateway/observe/metrics.hpp"
#include "gateway/smtp/proxy_protocol.hpp"

namespace gw::smtp::edge {
namespace {

// Registered at start, so /metrics shows every core series (and both TLS results) at 0 before the
// first connection.
[[maybe_unused]] const bool registered = [] {
  observe::CoreMetrics::get();
  return true;
}();

// The PROXY header comes before anything else (before TLS on implicit listeners). A missing or
// malformed one closes the connection: this listener only takes connections from the proxy.
boost::asio::awaitable<bool> read_proxy_header(net::Stream& stream, net::Deadline& deadline, const config::Config& cfg,
                                               Connection& conn) {
  deadline.expires_after(std::min<std::chrono::milliseconds>(cfg.server.command_timeout, std::chrono::seconds(30)));
  for (;;) {
    ProxyHeader h = parse_proxy_header(stream.pending());
    if (h.status == ProxyHeader::Status::ok) {
      stream.consume(h.length);
      if (h.has_address) {
        conn.client.address = config::unmap(h.source);
        conn.client.ip = conn.client.address.to_string();
        conn.client.port = h.source_port;
      }
      co_return true;
    }
    if (h.status == ProxyHeader::Status::invalid) {
      log::warn("proxy_header_invalid", {{"peer", conn.client.ip}, {"error", h.error}});
      co_return false;
    }
    // Never read past the header: on an implicit-TLS listener the ClientHello follows at once, and
    // it belongs to OpenSSL, not to our buffer.
    auto ec = co_await stream.fill_exact(proxy_bytes_wanted(stream.pending()));
    if (ec) {
      log::warn("proxy_header_missing", {{"peer", conn.client.ip}, {"error", deadline.expired() ? "timeout" : ec.message()}});
      co_return false;
    }
  }
}

// The client's PTR name (no trailing dot) into conn.client.rdns, or rdns_tempfail when the lookup
// failed temporarily. Loopback clients are not looked up.
boost::asio::awaitable<void> lookup_rdns(ServerState& server, Connection& conn) {
  if (!server.resolver) co_return;
  const auto& a = conn.client.address;
  if (a.is_loopback() || (a.is_v4() && (a.to_v4().to_uint() >> 24) == 127) || a.is_unspecified()) co_return;
  auto ans = co_await server.resolver->query(dns::reverse_name(a), dns::Type::PTR);
  if (ans.status == dns::Status::temperror) conn.client.rdns_tempfail = true;
  if (ans.status != dns::Status::ok) co_return;
  // A PTR label may hold any octet; only a host name (letters, digits, '-', '_', '.') goes on into
  // Received, XCLIENT NAME, logs and Lua.
  for (auto& name : ans.records) {
    bool host = !name.empty() && name.size() <= 253;
    for (char c : name)
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) host = false;
    if (host) {
      conn.client.rdns = name;
      break;
    }
  }
}

}  // namespace

boost::asio::awaitable<bool> before_greeting(net::Stream& stream, net::Deadline& deadline,
                                             const config::ListenerConfig& listener, const config::Config& cfg,
                                             ServerState& server, Connection& conn) {
  if (listener.proxy_protocol && !co_await read_proxy_header(stream, deadline, cfg, conn)) co_return false;
  if (listener.tls == config::ListenerTls::implicit) {
    auto ctx = server.server_tls();
    if (!ctx) co_return false;
    deadline.expires_after(cfg.server.command_timeout);
    auto ec = co_await stream.handshake_server(*ctx);
    observe::CoreMetrics::get().tls_handshake(!ec).inc();
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
