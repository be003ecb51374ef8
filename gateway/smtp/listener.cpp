#include "gateway/smtp/listener.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "gateway/observe/log.hpp"
#include "gateway/smtp/session.hpp"

namespace gw::smtp {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

Listener::Listener(asio::any_io_executor ex, const config::ListenerConfig& cfg, ServerState& server, ContextPicker pick)
    : acceptor_(ex), cfg_(cfg), server_(server), pick_(std::move(pick)) {
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(cfg.address.host, ec);
  if (ec) throw std::runtime_error("listener " + cfg.address.to_string() + ": not an IP address");
  tcp::endpoint ep(addr, cfg.address.port);
  acceptor_.open(ep.protocol());
  acceptor_.set_option(tcp::acceptor::reuse_address(true));
  if (ep.address().is_v6()) acceptor_.set_option(asio::ip::v6_only(true), ec);
  acceptor_.bind(ep);
  acceptor_.listen(1024);
}

void Listener::stop() {
  boost::system::error_code ec;
  acceptor_.close(ec);
}

asio::awaitable<void> Listener::run() {
  for (;;) {
    auto ex = pick_();
    auto [ec, socket] = co_await acceptor_.async_accept(ex, asio::as_tuple(asio::use_awaitable));
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
      log::warn("accept_failed", {{"listener", cfg_.address.to_string()}, {"error", ec.message()}});
      asio::steady_timer t(acceptor_.get_executor());  // e.g. EMFILE: back off instead of spinning
      t.expires_after(std::chrono::milliseconds(50));
      co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
      continue;
    }
    auto session = std::make_shared<Session>(std::move(socket), cfg_, server_);
    asio::co_spawn(ex, [session]() -> asio::awaitable<void> { co_await session->run(); }, asio::detached);
  }
}

}  // namespace gw::smtp
