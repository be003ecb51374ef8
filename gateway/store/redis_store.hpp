// The "redis" store: hiredis' async API driven by Asio (an adapter on a posix::stream_descriptor),
// one connection per io_context that uses the store (each io_context runs on one thread), so no
// lock is taken per operation beyond finding that connection.
//
// Counters and rate windows are Lua scripts run with EVALSHA (EVAL after NOSCRIPT), so they are
// atomic in Redis and shared by every gateway on it. Redis' own clock (TIME) drives the rate limiter.
// Failures are quick: an operation gets ok = false when the connection is down (during the reconnect
// backoff: 100 ms doubling, capped at 1 s, so the store is used again within ~1 s of Redis' return),
// refused, or when no reply came within `timeout` (1 s; the connection is then dropped and rebuilt).
#pragma once
#include <map>
#include <memory>
#include <mutex>
#include <vector>
#include <string>

#include "gateway/store/store.hpp"

namespace boost::asio { class io_context; }

namespace gw::store {

class RedisStore : public Store {
 public:
  struct Options {
    std::string host = "127.0.0.1";
    int port = 6379;
    std::string unix_path;  // unix:///path
    int db = 0;
    std::string password;
    std::chrono::milliseconds timeout{1000};
    std::chrono::milliseconds backoff_min{100};
    std::chrono::milliseconds backoff_max{1000};
    // redis://[[user]:password@]host[:port][/db] or unix:///path[?db=N]; throws std::invalid_argument.
    static Options from_url(const std::string& url);
  };
  struct Conn;

  explicit RedisStore(Options opt);
  ~RedisStore() override;  // must run before the io_contexts that used the store are destroyed

  boost::asio::awaitable<Result<std::int64_t>> incr(std::string key, std::int64_t n, Ttl ttl) override;
  boost::asio::awaitable<Result<std::optional<std::string>>> get(std::string key) override;
  boost::asio::awaitable<Result<bool>> set(std::string key, std::string value, Ttl ttl) override;
  boost::asio::awaitable<Result<bool>> set_if_absent(std::string key, std::string value, Ttl ttl) override;
  boost::asio::awaitable<Result<RateDecision>> rate(std::string key, std::int64_t limit, Ttl period,
                                                    std::int64_t cost) override;
  // Logs are Redis streams (XADD / XRANGE / XDEL): ids are the stream ids.
  boost::asio::awaitable<Result<bool>> log_append(std::string log, std::string value) override;
  boost::asio::awaitable<Result<std::vector<LogEntry>>> log_read(std::string log, std::string after,
                                                                 std::size_t max) override;
  boost::asio::awaitable<Result<std::int64_t>> log_erase(std::string log, std::vector<std::string> ids) override;
  const char* backend() const override { return "redis"; }

  // A reply, copied out of hiredis.
  struct Reply {
    int type = 0;  // REDIS_REPLY_*
    long long integer = 0;
    std::string str;
    std::vector<Reply> elements;
  };
  // Sends one command on the calling io_context's connection. ok = false: not sent, no reply in
  // time, connection lost, or an error reply (error = its text).
  boost::asio::awaitable<Result<Reply>> command(std::vector<std::string> argv);
  boost::asio::awaitable<Result<bool>> set_with(std::string key, std::string value, Ttl ttl, bool only_if_absent);

 private:
  boost::asio::awaitable<Result<Reply>> script(const std::string& body, const std::string& sha,
                                               std::vector<std::string> keys_and_args, int nkeys);
  std::shared_ptr<Conn> conn_for(boost::asio::io_context& io);

  Options opt_;
  std::mutex mu_;
  std::map<boost::asio::io_context*, std::shared_ptr<Conn>> conns_;
};

}  // namespace gw::store
