// Accepts on one [[listener]] and starts a Session per connection on the next io_context.
#pragma once
#include <functional>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "gateway/config/config.hpp"
#include "gateway/smtp/server_state.hpp"

namespace gw::smtp {

class Listener {
 public:
  using ContextPicker = std::function<boost::asio::any_io_executor()>;
  Listener(boost::asio::any_io_executor ex, const config::ListenerConfig& cfg, ServerState& server, ContextPicker pick);
  boost::asio::awaitable<void> run();
  void stop();
  boost::asio::ip::tcp::endpoint local_endpoint() const { return acceptor_.local_endpoint(); }

 private:
  boost::asio::ip::tcp::acceptor acceptor_;
  config::ListenerConfig cfg_;
  ServerState& server_;
  ContextPicker pick_;
};

}  // namespace gw::smtp
