#include "gateway/observe/metrics_http.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "gateway/observe/metrics.hpp"

namespace gw::observe {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

MetricsServer::MetricsServer(asio::any_io_executor ex, const config::Endpoint& at) : acceptor_(ex) {
  tcp::endpoint ep(asio::ip::make_address(at.host), at.port);
  acceptor_.open(ep.protocol());
  acceptor_.set_option(tcp::acceptor::reuse_address(true));
  acceptor_.bind(ep);
  acceptor_.listen();
}

void MetricsServer::stop() {
  boost::system::error_code ec;
  acceptor_.close(ec);
}

namespace {
asio::awaitable<void> serve(tcp::socket socket, std::shared_ptr<std::atomic<bool>> draining) {
  constexpr auto tuple = asio::as_tuple(asio::use_awaitable);
  asio::steady_timer timer(socket.get_executor());
  timer.expires_after(std::chrono::seconds(5));
  timer.async_wait([&](boost::system::error_code ec) {
    if (!ec) socket.close(ec);
  });
  std::string req;
  char buf[1024];
  while (req.find("\r\n\r\n") == std::string::npos && req.find("\n\n") == std::string::npos && req.size() < 8192) {
    auto [ec, n] = co_await socket.async_read_some(asio::buffer(buf), tuple);
    if (ec) co_return;
    req.append(buf, n);
  }
  std::string status = "200 OK", body;
  if (req.rfind("GET /metrics", 0) == 0) body = Metrics::instance().render();
  else if (req.rfind("GET /healthz ", 0) == 0) {
    if (draining->load()) status = "503 Service Unavailable", body = "draining";
    else body = "ok";
  } else status = "404 Not Found", body = "not found\n";
  std::string resp = "HTTP/1.0 " + status + "\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: " +
                     std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
  co_await asio::async_write(socket, asio::buffer(resp), tuple);
  timer.cancel();
  boost::system::error_code ignored;
  socket.shutdown(tcp::socket::shutdown_both, ignored);
}
}  // namespace

asio::awaitable<void> MetricsServer::run() {
  for (;;) {
    auto [ec, socket] = co_await acceptor_.async_accept(asio::as_tuple(asio::use_awaitable));
    if (ec) {
      if (!acceptor_.is_open()) co_return;
      continue;
    }
    asio::co_spawn(acceptor_.get_executor(), serve(std::move(socket), draining_), asio::detached);
  }
}

}  // namespace gw::observe
