// GET /metrics over HTTP/1.0 on metrics.listen: the Prometheus text exposition of Metrics.
#pragma once
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "gateway/config/network.hpp"

namespace gw::observe {

class MetricsServer {
 public:
  MetricsServer(boost::asio::any_io_executor ex, const config::Endpoint& at);
  boost::asio::awaitable<void> run();
  void stop();

 private:
  boost::asio::ip::tcp::acceptor acceptor_;
};

}  // namespace gw::observe
