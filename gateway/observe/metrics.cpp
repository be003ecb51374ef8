#include "gateway/observe/metrics.hpp"

#include <cstdio>

namespace gw::observe {

void Histogram::observe(double seconds) {
  size_t i = 0;
  while (i < bounds.size() && seconds > bounds[i]) ++i;
  buckets[i].fetch_add(1, std::memory_order_relaxed);
  count.fetch_add(1, std::memory_order_relaxed);
  sum_micros.fetch_add(static_cast<std::uint64_t>(seconds * 1e6), std::memory_order_relaxed);
}

Metrics& Metrics::instance() {
  static Metrics m;
  return m;
}

Counter& Metrics::counter(const std::string& name, const std::string& help, const std::string& labels) {
  std::lock_guard lock(mu_);
  auto& f = families_[name];
  f.help = help;
  f.type = "counter";
  auto& slot = f.counters[labels];
  if (!slot) slot = &counter_store_.emplace_back();
  return *slot;
}

Gauge& Metrics::gauge(const std::string& name, const std::string& help, const std::string& labels) {
  std::lock_guard lock(mu_);
  auto& f = families_[name];
  f.help = help;
  f.type = "gauge";
  auto& slot = f.gauges[labels];
  if (!slot) slot = &gauge_store_.emplace_back();
  return *slot;
}

Histogram& Metrics::histogram(const std::string& name, const std::string& help, const std::string& labels) {
  std::lock_guard lock(mu_);
  auto& f = families_[name];
  f.help = help;
  f.type = "histogram";
  auto& slot = f.histograms[labels];
  if (!slot) slot = &histogram_store_.emplace_back();
  return *slot;
}

std::string Metrics::render() const {
  std::lock_guard lock(mu_);
  std::string out;
  auto series = [](const std::string& name, const std::string& labels) {
    return labels.empty() ? name : name + "{" + labels + "}";
  };
  for (auto& [name, f] : families_) {
    out += "# HELP " + name + " " + f.help + "\n# TYPE " + name + " " + f.type + "\n";
    for (auto& [labels, c] : f.counters) out += series(name, labels) + " " + std::to_string(c->value.load()) + "\n";
    for (auto& [labels, g] : f.gauges) out += series(name, labels) + " " + std::to_string(g->value.load()) + "\n";
    for (auto& [labels, h] : f.histograms) {
      std::uint64_t cum = 0;
      std::string sep = labels.empty() ? "" : labels + ",";
      for (size_t i = 0; i <= Histogram::bounds.size(); ++i) {
        cum += h->buckets[i].load();
        char le[32];
        if (i < Histogram::bounds.size()) std::snprintf(le, sizeof le, "%g", Histogram::bounds[i]);
        else std::snprintf(le, sizeof le, "+Inf");
        out += name + "_bucket{" + sep + "le=\"" + le + "\"} " + std::to_string(cum) + "\n";
      }
      char sum[40];
      std::snprintf(sum, sizeof sum, "%.6f", static_cast<double>(h->sum_micros.load()) / 1e6);
      out += series(name + "_sum", labels) + " " + sum + "\n";
      out += series(name + "_count", labels) + " " + std::to_string(h->count.load()) + "\n";
    }
  }
  return out;
}

CoreMetrics& CoreMetrics::get() {
  static CoreMetrics m = [] {
    auto& r = Metrics::instance();
    const char* tx = "Transactions by outcome";
    const char* rp = "Replies sent to clients by code class";
    return CoreMetrics{
        r.gauge("smtpgw_connections_open", "Client connections open now"),
        r.counter("smtpgw_connections_total", "Client connections accepted"),
        r.counter("smtpgw_connections_refused_total", "Client connections refused (max_connections)"),
        r.counter("smtpgw_transactions_total", tx, R"(outcome="delivered")"),
        r.counter("smtpgw_transactions_total", tx, R"(outcome="rejected")"),
        r.counter("smtpgw_transactions_total", tx, R"(outcome="tempfailed")"),
        r.counter("smtpgw_transactions_total", tx, R"(outcome="aborted")"),
        {nullptr, &r.counter("smtpgw_replies_total", rp, R"(class="1xx")"),
         &r.counter("smtpgw_replies_total", rp, R"(class="2xx")"), &r.counter("smtpgw_replies_total", rp, R"(class="3xx")"),
         &r.counter("smtpgw_replies_total", rp, R"(class="4xx")"), &r.counter("smtpgw_replies_total", rp, R"(class="5xx")")},
        r.histogram("smtpgw_upstream_latency_seconds", "Time from sending the message to the upstream's final reply"),
        r.counter("smtpgw_tls_handshakes_total", "TLS handshakes by result", R"(result="ok")"),
        r.counter("smtpgw_tls_handshakes_total", "TLS handshakes by result", R"(result="failed")"),
    };
  }();
  return m;
}

}  // namespace gw::observe
