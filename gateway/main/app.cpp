#include "gateway/main/app.hpp"

#include <cstdlib>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "gateway/core/worker.hpp"
#include "gateway/main/services.hpp"
#include "gateway/observe/log.hpp"
#include "gateway/observe/metrics.hpp"
#include "gateway/tls/tls_context.hpp"

namespace gw::app {
namespace asio = boost::asio;

App::App(std::string config_path) : path_(std::move(config_path)) {}

App::~App() {
  for (auto& c : contexts_) c->stop();
  if (main_io_) main_io_->stop();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  if (services_.resolver) services_.resolver->shutdown();  // before the io_contexts go (members below)
}

std::shared_ptr<const Runtime> App::build_runtime(std::shared_ptr<const config::Config> cfg) {
  auto rt = std::make_shared<Runtime>();
  rt->config = cfg;
  rt->pipeline = Pipeline::build(*cfg, services_);
  return rt;
}

void App::init() {
  cfg_ = config::load_config(path_);
  log::configure(*log::parse_level(cfg_->log.level), cfg_->log.format == config::LogFormat::json ? log::Format::json : log::Format::text);
  unsigned n = cfg_->server.threads ? cfg_->server.threads : std::max(1u, std::thread::hardware_concurrency());
  main_io_ = std::make_unique<asio::io_context>(1);
  for (unsigned i = 0; i < n; ++i) contexts_.push_back(std::make_unique<asio::io_context>(1));
  set_worker(0, n);
  services_ = build_services(*cfg_, *main_io_, false);
  server_.resolver = services_.resolver;
  server_.set_runtime(build_runtime(cfg_));
  server_.set_server_tls(tls::make_server_context(*cfg_));
  server_.set_client_tls(tls::make_client_context());
  for (auto& l : cfg_->listeners) {
    auto pick = [this] { return contexts_[next_++ % contexts_.size()]->get_executor(); };
    listeners_.push_back(std::make_unique<smtp::Listener>(main_io_->get_executor(), l, server_, pick));
  }
  observe::Metrics::instance()
      .gauge("smtpgw_build_info", "Build of the running gateway (always 1)", "version=\"" GATEWAY_VERSION "\"")
      .add(1);
  if (!cfg_->metrics.listen.empty())
    metrics_ = std::make_unique<observe::MetricsServer>(main_io_->get_executor(), *config::Endpoint::parse(cfg_->metrics.listen));
  for (auto& w : cfg_->warnings()) log::warn("config_warning", {{"warning", w}});
  if (cfg_->relay_domains.empty())
    log::warn("config", {{"message", "relay.domains is empty: every recipient is relayed and the upstream decides"}});
}

void App::reload() {
  try {
    auto cfg = config::load_config(path_);
    auto rt = build_runtime(cfg);
    auto tls = tls::make_server_context(*cfg);
    log::configure(*log::parse_level(cfg->log.level), cfg->log.format == config::LogFormat::json ? log::Format::json : log::Format::text);
    server_.set_runtime(rt);
    if (tls) server_.set_server_tls(tls);
    bool same = cfg->listeners.size() == cfg_->listeners.size();
    for (size_t i = 0; same && i < cfg->listeners.size(); ++i)
      same = cfg->listeners[i].address.to_string() == cfg_->listeners[i].address.to_string();
    if (!same) log::warn("reload", {{"message", "listener addresses changed: they take effect at the next restart"}});
    cfg_ = cfg;
    log::info("reloaded", {{"config", path_}});
  } catch (const std::exception& e) {
    log::error("reload_failed", {{"config", path_}, {"error", e.what()}, {"message", "the running config stays"}});
  }
}

void App::start_drain() {
  if (draining_) return;
  draining_ = true;
  log::info("draining", {{"timeout_ms", static_cast<long long>(cfg_->server.drain_timeout.count())}});
  for (auto& l : listeners_) l->stop();
  if (metrics_) metrics_->set_draining();  // stays open: /healthz answers 503 until the drain ends
  server_.draining = true;
  server_.drain_all();
  auto deadline = std::chrono::steady_clock::now() + cfg_->server.drain_timeout;
  asio::co_spawn(*main_io_, [this, deadline]() -> asio::awaitable<void> {
    asio::steady_timer t(*main_io_);
    while (server_.live() > 0 && std::chrono::steady_clock::now() < deadline) {
      t.expires_after(std::chrono::milliseconds(50));
      co_await t.async_wait(asio::use_awaitable);
    }
    if (server_.live() > 0) log::warn("drain_timeout", {{"sessions_left", server_.live()}});
    for (auto& c : contexts_) c->stop();
    main_io_->stop();
  }, asio::detached);
}

void App::wait_signals() {
  signals_->async_wait([this](boost::system::error_code ec, int sig) {
    if (ec) return;
    if (sig == SIGHUP) reload();
    else start_drain();
    wait_signals();
  });
}

int App::run() {
  signals_ = std::make_unique<asio::signal_set>(*main_io_, SIGHUP, SIGTERM, SIGINT);
  wait_signals();
  for (auto& l : listeners_) asio::co_spawn(*main_io_, l->run(), asio::detached);
  if (metrics_) asio::co_spawn(*main_io_, metrics_->run(), asio::detached);
  const unsigned n = static_cast<unsigned>(contexts_.size());
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
  for (auto& c : contexts_) guards.push_back(asio::make_work_guard(*c));
  for (unsigned i = 0; i < n; ++i) {
    threads_.emplace_back([this, i, n] {
      set_worker(i, n);
      contexts_[i]->run();
    });
  }
  std::string addrs;
  for (auto& l : cfg_->listeners) addrs += (addrs.empty() ? "" : ",") + l.address.to_string();
  log::info("started", {{"listeners", addrs}, {"threads", n}, {"pipeline", [&] {
                          std::string p;
                          for (auto& s : cfg_->pipeline) p += (p.empty() ? "" : ",") + s;
                          return p;
                        }()}});
  main_io_->run();
  for (auto& g : guards) g.reset();
  for (auto& c : contexts_) c->stop();
  for (auto& t : threads_) t.join();
  threads_.clear();
  if (server_.live() > 0) {
    // drain_timeout passed with sessions still waiting (e.g. on DNS): they are abandoned on purpose,
    // so exit without unwinding them (their coroutines may wait on services being torn down).
    log::info("stopped", {{"sessions_abandoned", server_.live()}});
    std::_Exit(0);
  }
  log::info("stopped", {});
  return 0;
}

}  // namespace gw::app
