#include <gtest/gtest.h>

#include <hiredis/hiredis.h>

#include <atomic>
#include <thread>

#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "gateway/store/redis_store.hpp"
#include "tests/unit/store/redis_test_server.hpp"
#include "tests/unit/store/store_test_util.hpp"

using namespace std::chrono_literals;
using gw::store::RedisStore;
using gw::testing::run_on;

namespace {

struct RedisTest : ::testing::Test {
  gw::testing::RedisServer server;
  void SetUp() override {
    if (!gw::testing::have_redis_server()) GTEST_SKIP() << "redis-server not installed";
    ASSERT_TRUE(server.start());
  }
  RedisStore::Options opts() { return RedisStore::Options::from_url(server.url()); }
};

TEST(RedisUrl, Parses) {
  auto o = RedisStore::Options::from_url("redis://:secret@10.0.0.1:6380/3");
  EXPECT_EQ(o.host, "10.0.0.1");
  EXPECT_EQ(o.port, 6380);
  EXPECT_EQ(o.db, 3);
  EXPECT_EQ(o.password, "secret");
  o = RedisStore::Options::from_url("redis://[::1]:7000");
  EXPECT_EQ(o.host, "::1");
  EXPECT_EQ(o.port, 7000);
  EXPECT_EQ(o.db, 0);
  o = RedisStore::Options::from_url("unix:///run/redis.sock?db=2");
  EXPECT_EQ(o.unix_path, "/run/redis.sock");
  EXPECT_EQ(o.db, 2);
  EXPECT_THROW(RedisStore::Options::from_url("redis://host:99999/0"), std::invalid_argument);
  EXPECT_THROW(RedisStore::Options::from_url("redis://host/x"), std::invalid_argument);
}

TEST_F(RedisTest, Operations) {
  boost::asio::io_context io;
  RedisStore s(opts());
  auto a = run_on(io, s.incr("c", 2, 0ms));
  ASSERT_TRUE(a.ok) << a.error;
  EXPECT_EQ(a.value, 2);
  EXPECT_EQ(run_on(io, s.incr("c", 3, 0ms)).value, 5);
  EXPECT_EQ(run_on(io, s.get("c")).value, "5");
  EXPECT_FALSE(run_on(io, s.get("nope")).value.has_value());
  EXPECT_TRUE(run_on(io, s.set("k", "v", 0ms)).ok);
  EXPECT_EQ(run_on(io, s.get("k")).value, "v");
  EXPECT_FALSE(run_on(io, s.set_if_absent("k", "w", 0ms)).value);
  EXPECT_TRUE(run_on(io, s.set_if_absent("k2", "w", 0ms)).value);
  EXPECT_EQ(run_on(io, s.get("k")).value, "v");
}

TEST_F(RedisTest, IncrTtlRunsFromCreation) {
  boost::asio::io_context io;
  RedisStore s(opts());
  run_on(io, s.incr("t", 1, 5000ms));
  auto p1 = run_on(io, s.command({"PTTL", "t"}));
  ASSERT_TRUE(p1.ok);
  EXPECT_GT(p1.value.integer, 4000);
  std::this_thread::sleep_for(300ms);
  run_on(io, s.incr("t", 1, 5000ms));
  auto p2 = run_on(io, s.command({"PTTL", "t"}));
  EXPECT_LT(p2.value.integer, p1.value.integer - 200);  // not extended
  run_on(io, s.set("s", "x", 200ms));
  std::this_thread::sleep_for(300ms);
  EXPECT_FALSE(run_on(io, s.get("s")).value.has_value());
}

TEST_F(RedisTest, ScriptsSurviveScriptFlush) {
  boost::asio::io_context io;
  RedisStore s(opts());
  EXPECT_EQ(run_on(io, s.incr("f", 1, 0ms)).value, 1);
  ASSERT_TRUE(run_on(io, s.command({"SCRIPT", "FLUSH"})).ok);
  auto r = run_on(io, s.incr("f", 1, 0ms));  // NOSCRIPT -> EVAL
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.value, 2);
  auto rr = run_on(io, s.rate("g", 5, 1000ms, 1));
  ASSERT_TRUE(rr.ok) << rr.error;
}

TEST_F(RedisTest, GcraLimitAndRetryAfter) {
  boost::asio::io_context io;
  RedisStore s(opts());
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(run_on(io, s.rate("r", 10, 10s, 1)).value.allowed) << i;
  auto r = run_on(io, s.rate("r", 10, 10s, 1));
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_FALSE(r.value.allowed);
  EXPECT_GT(r.value.retry_after.count(), 900);
  EXPECT_LE(r.value.retry_after.count(), 1000);
  auto ttl = run_on(io, s.command({"PTTL", "r"}));
  EXPECT_GT(ttl.value.integer, 9000);
  EXPECT_LE(ttl.value.integer, 10000);
}

TEST_F(RedisTest, ConcurrentFromTwoThreadsExactlyLimit) {
  // The io_contexts outlive the store (its connections are bound to them).
  boost::asio::io_context io1, io2;
  RedisStore s(opts());
  std::atomic<int> allowed{0}, errors{0};
  auto worker = [&](boost::asio::io_context& io) {
    int finished = 0;
    for (int i = 0; i < 25; ++i)
      boost::asio::co_spawn(io, [&]() -> boost::asio::awaitable<void> {
        auto r = co_await s.rate("burst", 20, 1h, 1);
        if (!r.ok) ++errors;
        else if (r.value.allowed) ++allowed;
        ++finished;
      }, boost::asio::detached);
    while (finished < 25) io.run_one();
  };
  {
    std::thread a(worker, std::ref(io1)), b(worker, std::ref(io2));
    a.join();
    b.join();
  }
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(allowed.load(), 20);
}

TEST(RedisDown, UnreachableFailsQuickly) {
  boost::asio::io_context io;
  auto o = RedisStore::Options::from_url("redis://127.0.0.1:" + std::to_string(gw::testing::free_port()) + "/0");
  RedisStore s(o);
  auto t0 = std::chrono::steady_clock::now();
  auto r = run_on(io, s.incr("x", 1, 0ms));
  EXPECT_FALSE(r.ok);
  EXPECT_FALSE(r.error.empty());
  auto r2 = run_on(io, s.get("x"));  // in the backoff: no new attempt
  EXPECT_FALSE(r2.ok);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 500ms);
}

TEST_F(RedisTest, RecoversAfterRestart) {
  boost::asio::io_context io;
  RedisStore s(opts());
  ASSERT_TRUE(run_on(io, s.incr("a", 1, 0ms)).ok);
  server.kill();
  auto r = run_on(io, s.incr("a", 1, 0ms));
  EXPECT_FALSE(r.ok);
  gw::testing::RedisServer again(server.port());
  ASSERT_TRUE(again.start());
  auto t0 = std::chrono::steady_clock::now();
  bool ok = false;
  while (!ok && std::chrono::steady_clock::now() - t0 < 5s) {
    ok = run_on(io, s.incr("a", 1, 0ms)).ok;
    if (!ok) std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(ok);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3000ms);  // backoff capped at 1 s (docs/store.md: within 5 s)
}

TEST_F(RedisTest, HungServerTimesOut) {
  boost::asio::io_context io;
  auto o = opts();
  o.timeout = 300ms;
  RedisStore s(o);
  ASSERT_TRUE(run_on(io, s.incr("h", 1, 0ms)).ok);
  server.pause();  // a hung server: connected, never answers
  auto t0 = std::chrono::steady_clock::now();
  auto r = run_on(io, s.incr("h", 1, 0ms));
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("no reply"), std::string::npos) << r.error;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 900ms);
  server.resume();
  std::this_thread::sleep_for(1100ms);  // backoff over
  auto r2 = run_on(io, s.incr("h", 1, 0ms));
  EXPECT_TRUE(r2.ok) << r2.error;
}

}  // namespace
