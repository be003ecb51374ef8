// GET /metrics over HTTP/1.0 on metrics.listen: the Prometheus text exposition of Metrics.
// GET /healthz: 200 "ok" while the gateway accepts mail, 503 "draining" once a drain has begun (the
// listener stays open through the drain, so a load balancer sees the gateway leave).
#pragma once
#include <atomic>
#include <memory>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "gateway/config/network.hpp"

namespace gw::observe {

class MetricsServer {
 public:
  MetricsServer(boost::asio::any_io_executor ex, const config::Endpoint& at);
  boost::asio::awaitable<void> run();
  void stop();
  void set_draining() { draining_->store(true); }

 private:
  std::shared_ptr<std::atomic<bool>> draining_ = std::make_shared<std::atomic<bool>>(false);
  boost::asio::ip::tcp::acceptor acceptor_;
};

}  // namespace gw::observe
