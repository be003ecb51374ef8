// The running gateway: one io_context per worker thread, the listeners, signals (SIGHUP reload,
// SIGTERM/SIGINT drain), the metrics endpoint.
#pragma once
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "gateway/core/pipeline.hpp"
#include "gateway/observe/metrics_http.hpp"
#include "gateway/smtp/server_state.hpp"
#include "gateway/smtp/listener.hpp"

namespace gw::app {

class App {
 public:
  explicit App(std::string config_path);
  ~App();
  // Loads the config and builds everything; throws config::ConfigError.
  void init();
  int run();  // until drained after SIGTERM/SIGINT

 private:
  std::shared_ptr<const Runtime> build_runtime(std::shared_ptr<const config::Config> cfg);
  void reload();
  void start_drain();
  void wait_signals();

  std::string path_;
  std::shared_ptr<const config::Config> cfg_;
  std::vector<std::unique_ptr<boost::asio::io_context>> contexts_;
  std::unique_ptr<boost::asio::io_context> main_io_;  // signals, listeners' accept, services' I/O
  std::vector<std::thread> threads_;
  Services services_;
  smtp::ServerState server_;
  std::vector<std::unique_ptr<smtp::Listener>> listeners_;
  std::unique_ptr<observe::MetricsServer> metrics_;
  std::unique_ptr<boost::asio::signal_set> signals_;
  std::size_t next_ = 0;
  bool draining_ = false;
};

}  // namespace gw::app
