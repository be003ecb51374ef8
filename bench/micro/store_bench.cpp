// State store operations per second, both backends.
//   embedded: LMDB under a temp dir, inline calls (what a session's coroutine runs) and through a
//             coroutine on an io_context; 1 and 2 threads (writers serialise on LMDB's lock).
//   redis:    a redis-server started here on a free port (skipped when not installed); one op at a
//             time (round-trip bound) and 64 in flight on one connection.
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "gateway/store/lmdb_store.hpp"
#include "gateway/store/redis_store.hpp"
#include "tests/unit/store/redis_test_server.hpp"

using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace {

gw::store::LmdbStore& lmdb() {
  static std::unique_ptr<gw::store::LmdbStore> s = [] {
    auto dir = std::filesystem::temp_directory_path() / ("gwbench-lmdb-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    gw::store::LmdbStore::Options o;
    o.path = dir.string();
    o.max_size = 1ull << 30;
    auto store = std::make_unique<gw::store::LmdbStore>(o);
    static std::string to_remove = dir.string();
    std::atexit([] { std::filesystem::remove_all(to_remove); });
    return store;
  }();
  return *s;
}

std::string key_for(int thread, std::int64_t i) { return "bench:" + std::to_string(thread) + ":" + std::to_string(i % 10000); }

void BM_Embedded_Incr(benchmark::State& st) {
  auto& s = lmdb();
  std::int64_t i = 0;
  for (auto _ : st) benchmark::DoNotOptimize(s.incr_now(key_for(st.thread_index(), i++), 1, 1h));
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(BM_Embedded_Incr)->Threads(1)->Threads(2)->UseRealTime();

void BM_Embedded_Get(benchmark::State& st) {
  auto& s = lmdb();
  for (int i = 0; i < 10000; ++i) s.set_now(key_for(99, i), "v", 1h, false);
  std::int64_t i = 0;
  for (auto _ : st) benchmark::DoNotOptimize(s.get_now(key_for(99, i++)));
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(BM_Embedded_Get)->Threads(1)->Threads(2)->UseRealTime();

void BM_Embedded_Rate(benchmark::State& st) {
  auto& s = lmdb();
  std::int64_t i = 0;
  for (auto _ : st) benchmark::DoNotOptimize(s.rate_now("rl:" + key_for(st.thread_index(), i++), 1000000, 1h, 1));
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(BM_Embedded_Rate)->Threads(1)->Threads(2)->UseRealTime();

void BM_Embedded_SetIfAbsent(benchmark::State& st) {
  auto& s = lmdb();
  std::int64_t i = 0;
  for (auto _ : st) benchmark::DoNotOptimize(s.set_now("sia:" + std::to_string(i++), "1", 1min, true));
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(BM_Embedded_SetIfAbsent);

// How long the background sweep holds the writer lock: one batch of 500 expired entries deleted.
void BM_Embedded_Sweep500Expired(benchmark::State& st) {
  auto dir = std::filesystem::temp_directory_path() / ("gwbench-sweep-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  gw::store::LmdbStore::Options o;
  o.path = dir.string();
  o.sweep_interval = 1h;
  gw::store::LmdbStore s(o);
  std::int64_t round = 0;
  for (auto _ : st) {
    st.PauseTiming();
    for (int i = 0; i < 500; ++i) s.set_now("sweep:" + std::to_string(round) + ":" + std::to_string(i), "v", 1ms, false);
    ++round;
    std::this_thread::sleep_for(2ms);
    st.ResumeTiming();
    benchmark::DoNotOptimize(s.sweep());
  }
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_Embedded_Sweep500Expired)->Unit(benchmark::kMicrosecond)->Iterations(200);

// The coroutine interface: co_spawn + co_await of the inline op, batches of 1000 on an io_context.
void BM_Embedded_Rate_Coroutine(benchmark::State& st) {
  auto& s = lmdb();
  asio::io_context io;
  std::int64_t i = 0;
  for (auto _ : st) {
    for (int k = 0; k < 1000; ++k)
      asio::co_spawn(io, [&s, key = "rlc:" + std::to_string(i++ % 10000)]() -> asio::awaitable<void> {
        auto r = co_await s.rate(key, 1000000, 1h, 1);
        benchmark::DoNotOptimize(r);
      }, asio::detached);
    io.restart();
    io.run();
  }
  st.SetItemsProcessed(st.iterations() * 1000);
}
BENCHMARK(BM_Embedded_Rate_Coroutine)->UseRealTime();

struct RedisFixture {
  std::unique_ptr<gw::testing::RedisServer> server;
  std::unique_ptr<asio::io_context> io;
  std::unique_ptr<gw::store::RedisStore> store;
  bool ok = false;
};

RedisFixture& redis() {
  static RedisFixture f = [] {
    RedisFixture r;
    if (!gw::testing::have_redis_server()) return r;
    r.server = std::make_unique<gw::testing::RedisServer>();
    if (!r.server->start()) return r;
    r.io = std::make_unique<asio::io_context>();
    r.store = std::make_unique<gw::store::RedisStore>(gw::store::RedisStore::Options::from_url(r.server->url()));
    r.ok = true;
    return r;
  }();
  return f;
}

template <typename Op>
void redis_batch(benchmark::State& st, int in_flight, Op op) {
  auto& r = redis();
  if (!r.ok) {
    st.SkipWithError("redis-server not available");
    return;
  }
  std::int64_t i = 0, errors = 0;
  for (auto _ : st) {
    int done = 0;
    for (int k = 0; k < in_flight; ++k)
      asio::co_spawn(*r.io, [&, n = i++]() -> asio::awaitable<void> {
        if (!(co_await op(*r.store, n))) ++errors;
        ++done;
      }, asio::detached);
    r.io->restart();
    while (done < in_flight) r.io->run_one();
  }
  st.SetItemsProcessed(st.iterations() * in_flight);
  st.counters["errors"] = static_cast<double>(errors);
}

asio::awaitable<bool> redis_incr(gw::store::RedisStore& s, std::int64_t n) {
  co_return (co_await s.incr("bench:" + std::to_string(n % 10000), 1, 1h)).ok;
}
asio::awaitable<bool> redis_rate(gw::store::RedisStore& s, std::int64_t n) {
  co_return (co_await s.rate("rl:bench:" + std::to_string(n % 10000), 1000000, 1h, 1)).ok;
}
asio::awaitable<bool> redis_get(gw::store::RedisStore& s, std::int64_t n) {
  co_return (co_await s.get("bench:" + std::to_string(n % 10000))).ok;
}

void BM_Redis_Incr(benchmark::State& st) { redis_batch(st, static_cast<int>(st.range(0)), redis_incr); }
void BM_Redis_Rate(benchmark::State& st) { redis_batch(st, static_cast<int>(st.range(0)), redis_rate); }
void BM_Redis_Get(benchmark::State& st) { redis_batch(st, static_cast<int>(st.range(0)), redis_get); }
BENCHMARK(BM_Redis_Incr)->Arg(1)->Arg(64)->UseRealTime();
BENCHMARK(BM_Redis_Rate)->Arg(1)->Arg(64)->UseRealTime();
BENCHMARK(BM_Redis_Get)->Arg(1)->Arg(64)->UseRealTime();

}  // namespace
