// What all sessions share: the current config snapshot, the connection count, TLS contexts, and the
// list of live sessions a drain walks.
#pragma once
#include <atomic>
#include <memory>
#include <mutex>
#include <unordered_set>

#include <boost/asio/ssl/context.hpp>

#include "gateway/core/pipeline.hpp"
#include "gateway/dns/resolver.hpp"

namespace gw::smtp {

class Session;

class ServerState {
 public:
  std::shared_ptr<const Runtime> runtime() const {
    std::lock_guard lock(mu_);
    return runtime_;
  }
  void set_runtime(std::shared_ptr<const Runtime> rt) {
    std::lock_guard lock(mu_);
    runtime_ = std::move(rt);
  }
  std::shared_ptr<boost::asio::ssl::context> server_tls() const {
    std::lock_guard lock(mu_);
    return server_tls_;
  }
  void set_server_tls(std::shared_ptr<boost::asio::ssl::context> ctx) {
    std::lock_guard lock(mu_);
    server_tls_ = std::move(ctx);
  }
  std::shared_ptr<boost::asio::ssl::context> client_tls() const {
    std::lock_guard lock(mu_);
    return client_tls_;
  }
  void set_client_tls(std::shared_ptr<boost::asio::ssl::context> ctx) {
    std::lock_guard lock(mu_);
    client_tls_ = std::move(ctx);
  }

  // Set once before the listeners start (App::init); null when no resolver was built.
  std::shared_ptr<dns::Resolver> resolver;

  std::atomic<std::uint32_t> connections{0};
  std::atomic<bool> draining{false};

  // Live sessions, so a drain can tell each one to finish (Session::request_drain).
  void add(Session* s);
  void remove(Session* s);
  void drain_all();
  std::size_t live() const;

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const Runtime> runtime_;
  std::shared_ptr<boost::asio::ssl::context> server_tls_;
  std::shared_ptr<boost::asio::ssl::context> client_tls_;
  std::unordered_set<Session*> sessions_;  // a session leaves in its destructor
};

}  // namespace gw::smtp
