// State shared across transactions (and, with Redis, across gateways): counters and keys with TTLs.
// Every operation is asynchronous to the caller (a co_await, never a blocking call on a worker
// thread) and atomic in the backend. A backend that cannot be reached answers ok = false; callers
// apply their on_store_error policy.
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>

namespace gw::config { struct StoreConfig; }

namespace gw::store {

// Values are strings. A plugin that keeps a number (a counter, a time in ms since the epoch) reads
// it back with parse_int: a whole decimal integer (optional leading '-'), nothing else.
std::optional<std::int64_t> parse_int(std::string_view s);
inline std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

template <typename T>
struct Result {
  bool ok = false;
  std::string error;  // why not ok
  T value{};
};

// The answer of Store::rate().
struct RateDecision {
  bool allowed = false;
  std::chrono::milliseconds retry_after{0};  // when !allowed: how long until one event would fit
};

class Store {
 public:
  virtual ~Store() = default;
  using Ttl = std::chrono::milliseconds;  // 0 = no expiry

  // Adds n to the integer at key (a missing key counts as 0 and is created with `ttl`; the TTL runs
  // from creation). Returns the new value.
  virtual boost::asio::awaitable<Result<std::int64_t>> incr(std::string key, std::int64_t n, Ttl ttl) = 0;
  virtual boost::asio::awaitable<Result<std::optional<std::string>>> get(std::string key) = 0;
  virtual boost::asio::awaitable<Result<bool>> set(std::string key, std::string value, Ttl ttl) = 0;
  // Stores only when the key is absent; value = true when it stored.
  virtual boost::asio::awaitable<Result<bool>> set_if_absent(std::string key, std::string value, Ttl ttl) = 0;

  // Rate limiting, atomic in the backend: GCRA (the "virtual scheduling" form of a token bucket) with
  // room for `limit` events per `period` and bursts of up to `limit`. `cost` events happen now when
  // they fit (allowed = true, the state is updated); otherwise nothing is counted and retry_after says
  // when they would fit. The key holds the theoretical arrival time (microseconds since the epoch) and
  // expires by itself once the bucket is full again. The base implementation is a fixed window made of
  // incr() for backends without a native one.
  virtual boost::asio::awaitable<Result<RateDecision>> rate(std::string key, std::int64_t limit, Ttl period,
                                                            std::int64_t cost = 1);

  // Append-only logs (DMARC aggregate-report records): a named log holds entries in the order they
  // were appended, each with an id unique in that log (opaque: pass back only ids a read returned).
  // Appends from many gateways on one Redis go into one log. A reader lists entries after an id and
  // erases exactly the ids it has dealt with, so entries appended meanwhile stay for the next reader.
  // Entries do not expire. The base implementations answer ok = false ("not supported").
  struct LogEntry {
    std::string id;
    std::string value;
  };
  virtual boost::asio::awaitable<Result<bool>> log_append(std::string log, std::string value);
  // At most `max` entries appended after the entry `after` ("" = from the first), oldest first.
  virtual boost::asio::awaitable<Result<std::vector<LogEntry>>> log_read(std::string log, std::string after,
                                                                         std::size_t max);
  // Erases the listed entries (unknown ids are ignored); value = how many were erased.
  virtual boost::asio::awaitable<Result<std::int64_t>> log_erase(std::string log, std::vector<std::string> ids);

  // "embedded" or "redis", for logs.
  virtual const char* backend() const { return "custom"; }
};

// Builds the configured backend. The embedded store opens (and creates) store.path now; the Redis
// store connects lazily, one connection per io_context that uses it. Throws std::runtime_error when
// the embedded store cannot be opened.
std::shared_ptr<Store> make_store(const config::StoreConfig& cfg);

}  // namespace gw::store
