// The "embedded" store: an LMDB environment under store.path (data.mdb, lock.mdb).
//
// Durability: the environment runs with MDB_NOSYNC; a background thread calls mdb_env_sync() every
// second. Every commit is written to the file (page cache) before the call returns, so a crash of the
// gateway (kill -9) loses nothing; an operating-system crash or power cut can lose the updates of
// the last second (and, LMDB warns, may leave the file unusable: it is then moved aside at the next
// start and the store starts empty).
// Operations run inline on the caller's thread: a write transaction without fsync is a few
// microseconds (see bench/micro/store_bench.cpp); LMDB serialises writers across threads.
// Entries carry an absolute expiry time: reads ignore expired entries, the background thread deletes
// them in small batches, and a full map (store.max_size) triggers a sweep before the write fails.
#pragma once
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "gateway/store/store.hpp"

struct MDB_env;

namespace gw::store {

class LmdbStore : public Store {
 public:
  struct Options {
    std::string path;
    std::uint64_t max_size = 256ull * 1024 * 1024;
    std::chrono::milliseconds sync_interval{1000};
    std::chrono::milliseconds sweep_interval{1000};
  };
  explicit LmdbStore(Options opt);  // throws std::runtime_error
  ~LmdbStore() override;

  boost::asio::awaitable<Result<std::int64_t>> incr(std::string key, std::int64_t n, Ttl ttl) override;
  boost::asio::awaitable<Result<std::optional<std::string>>> get(std::string key) override;
  boost::asio::awaitable<Result<bool>> set(std::string key, std::string value, Ttl ttl) override;
  boost::asio::awaitable<Result<bool>> set_if_absent(std::string key, std::string value, Ttl ttl) override;
  boost::asio::awaitable<Result<RateDecision>> rate(std::string key, std::int64_t limit, Ttl period,
                                                    std::int64_t cost) override;
  boost::asio::awaitable<Result<bool>> log_append(std::string log, std::string value) override;
  boost::asio::awaitable<Result<std::vector<LogEntry>>> log_read(std::string log, std::string after,
                                                                 std::size_t max) override;
  boost::asio::awaitable<Result<std::int64_t>> log_erase(std::string log, std::vector<std::string> ids) override;
  const char* backend() const override { return "embedded"; }

  // Synchronous forms (what the coroutines run); public for tests and benchmarks.
  Result<std::int64_t> incr_now(const std::string& key, std::int64_t n, Ttl ttl);
  Result<std::optional<std::string>> get_now(const std::string& key);
  Result<bool> set_now(const std::string& key, const std::string& value, Ttl ttl, bool only_if_absent);
  Result<RateDecision> rate_now(const std::string& key, std::int64_t limit, Ttl period, std::int64_t cost);
  Result<bool> log_append_now(const std::string& log, const std::string& value);
  Result<std::vector<LogEntry>> log_read_now(const std::string& log, const std::string& after, std::size_t max);
  Result<std::int64_t> log_erase_now(const std::string& log, const std::vector<std::string>& ids);
  // Deletes expired entries; returns how many. `budget` bounds the entries looked at.
  std::size_t sweep(std::size_t budget = SIZE_MAX);
  std::size_t entries();  // live and expired, for tests

 private:
  void open();
  void background();
  std::size_t sweep_range(std::string& from, std::size_t budget);

  Options opt_;
  MDB_env* env_ = nullptr;
  unsigned dbi_ = 0;
  std::string sweep_from_;  // resume point of the incremental sweep (background thread only)
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace gw::store
