// State shared across transactions (and, with Redis, across gateways): counters and keys with TTLs.
// Every operation is asynchronous to the caller (a co_await, never a blocking call on a worker
// thread) and atomic in the backend. A backend that cannot be reached answers ok = false; callers
// apply their on_store_error policy.
#pragma once
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>

namespace gw::store {

template <typename T>
struct Result {
  bool ok = false;
  std::string error;  // why not ok
  T value{};
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
};

}  // namespace gw::store
