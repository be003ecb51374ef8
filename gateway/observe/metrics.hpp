// Process-wide metrics in the Prometheus text format. Counters and gauges are atomics handed out once
// (stable addresses), so the per-message path does no lookup and takes no lock.
#pragma once
#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace gw::observe {

struct Counter {
  std::atomic<std::uint64_t> value{0};
  void inc(std::uint64_t n = 1) { value.fetch_add(n, std::memory_order_relaxed); }
};

struct Gauge {
  std::atomic<std::int64_t> value{0};
  void add(std::int64_t n) { value.fetch_add(n, std::memory_order_relaxed); }
};

// Fixed buckets in seconds.
struct Histogram {
  static constexpr std::array<double, 12> bounds{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10};
  std::array<std::atomic<std::uint64_t>, bounds.size() + 1> buckets{};
  std::atomic<std::uint64_t> count{0};
  std::atomic<std::uint64_t> sum_micros{0};
  void observe(double seconds);
};

class Metrics {
 public:
  static Metrics& instance();
  // `labels` is the inside of {...}, e.g. R"(code_class="2xx")"; the same name+labels gives the same object.
  Counter& counter(const std::string& name, const std::string& help, const std::string& labels = "");
  Gauge& gauge(const std::string& name, const std::string& help, const std::string& labels = "");
  Histogram& histogram(const std::string& name, const std::string& help, const std::string& labels = "");
  std::string render() const;

 private:
  struct Family {
    std::string help;
    std::string type;
    std::map<std::string, Counter*> counters;
    std::map<std::string, Gauge*> gauges;
    std::map<std::string, Histogram*> histograms;
  };
  mutable std::mutex mu_;
  std::map<std::string, Family> families_;
  std::deque<Counter> counter_store_;
  std::deque<Gauge> gauge_store_;
  std::deque<Histogram> histogram_store_;
};

// The counters the core moves on every connection and transaction.
struct CoreMetrics {
  Gauge& connections_open;
  Counter& connections_total;
  Counter& connections_refused;
  Counter& tx_delivered;
  Counter& tx_rejected;
  Counter& tx_tempfailed;
  Counter& tx_aborted;
  std::array<Counter*, 6> replies;  // index = first digit of the code
  Histogram& upstream_latency;
  Counter& tls_ok;      // smtpgw_tls_handshakes_total{result="ok"}
  Counter& tls_failed;  // smtpgw_tls_handshakes_total{result="failed"}
  static CoreMetrics& get();
  Counter& tls_handshake(bool ok) { return ok ? tls_ok : tls_failed; }
  void reply(int code) {
    int c = code / 100;
    if (c >= 1 && c <= 5) replies[static_cast<size_t>(c)]->inc();
  }
};

}  // namespace gw::observe
