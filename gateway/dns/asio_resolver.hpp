// dns::Resolver on Boost.Asio: UDP queries to the configured nameservers (dns.nameservers, else the
// `nameserver` lines of /etc/resolv.conf), retried across them within the one dns.timeout budget, TCP
// when an answer comes back truncated. One instance serves all worker threads: the cache and the
// table of queries in flight sit behind one mutex held only for map operations, never across a wait.
// A query runs on the first asker's executor; later askers of the same (name, type) wait for it and
// are resumed on their own executors.
#pragma once
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/ip/udp.hpp>

#include "gateway/config/config.hpp"
#include "gateway/dns/resolver.hpp"

namespace gw::dns {

struct ResolverOptions {
  std::vector<boost::asio::ip::udp::endpoint> servers;
  std::chrono::milliseconds timeout{5000};          // whole lookup, retries included
  std::uint32_t negative_ttl_default = 30;          // NXDOMAIN/NODATA without SOA (seconds)
  std::uint32_t max_ttl = 86400;                    // cap on any cached TTL
  std::size_t max_entries = 100000;                 // cache size bound
};

struct ResolverStats {
  std::uint64_t queries = 0;         // query() calls
  std::uint64_t cache_hits = 0;
  std::uint64_t joined = 0;          // waited for an identical query in flight
  std::uint64_t sent = 0;            // lookups that went to the network
  std::uint64_t tcp = 0;             // of which retried over TCP
  std::uint64_t timeouts = 0;        // ended in temperror because the budget ran out
};

class AsioResolver : public Resolver, public std::enable_shared_from_this<AsioResolver> {
 public:
  explicit AsioResolver(ResolverOptions opts);
  ~AsioResolver() override;
  boost::asio::awaitable<Answer> query(std::string name, Type type) override;
  bool cached_answer(const std::string& name, Type type, Answer& out) override;
  void shutdown() override;
  ResolverStats stats() const;
  void clear_cache();

 private:
  struct Entry {
    Answer answer;
    std::chrono::steady_clock::time_point expires;
  };
  struct Flight {
    std::vector<std::function<void(const Answer&)>> waiters;
  };
  struct Outcome {
    Answer answer;
    bool has_soa = false;  // a negative answer's TTL came from an SOA
  };
  boost::asio::awaitable<Outcome> lookup(const std::string& name, Type type);
  bool cached(const std::string& key, Answer& out);  // mu_ held
  bool take_cached(const std::string& key, Answer& out);  // takes mu_
  void store(const std::string& key, const Answer& a, bool has_soa);
  void finish(const std::string& key, const Answer& a, bool has_soa);
  void abandon(const std::string& key);

  ResolverOptions opts_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> cache_;
  std::unordered_map<std::string, Flight> inflight_;
  ResolverStats stats_;
  bool shut_down_ = false;  // mu_
};

// The nameservers from resolv.conf-formatted text (port 53); empty when none.
std::vector<boost::asio::ip::udp::endpoint> parse_resolv_conf(const std::string& text);

// Built from [dns]; throws config::ConfigError when no nameserver can be found or one is not an IP.
std::shared_ptr<AsioResolver> make_resolver(const config::DnsConfig& cfg, const std::string& resolv_conf = "/etc/resolv.conf");

}  // namespace gw::dns
