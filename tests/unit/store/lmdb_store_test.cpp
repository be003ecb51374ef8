#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "gateway/store/lmdb_store.hpp"
#include "tests/unit/store/store_test_util.hpp"

using namespace std::chrono_literals;
using gw::store::LmdbStore;

namespace {

struct LmdbTest : ::testing::Test {
  std::string dir = gw::testing::temp_dir("lmdb");
  LmdbStore::Options opts() {
    LmdbStore::Options o;
    o.path = dir + "/nested/state";
    o.max_size = 16 * 1024 * 1024;
    return o;
  }
  void TearDown() override { std::filesystem::remove_all(dir); }
};

TEST_F(LmdbTest, CreatesNestedPathAndCounts) {
  LmdbStore s(opts());
  EXPECT_TRUE(std::filesystem::exists(dir + "/nested/state/data.mdb"));
  auto a = s.incr_now("k", 1, 0ms);
  ASSERT_TRUE(a.ok) << a.error;
  EXPECT_EQ(a.value, 1);
  EXPECT_EQ(s.incr_now("k", 5, 0ms).value, 6);
  EXPECT_EQ(s.incr_now("k", -2, 0ms).value, 4);
  auto g = s.get_now("k");
  ASSERT_TRUE(g.ok);
  EXPECT_EQ(g.value, "4");
  EXPECT_FALSE(s.get_now("missing").value.has_value());
}

TEST_F(LmdbTest, CoroutineInterface) {
  LmdbStore s(opts());
  boost::asio::io_context io;
  EXPECT_EQ(gw::testing::run_on(io, s.incr("c", 3, 0ms)).value, 3);
  EXPECT_TRUE(gw::testing::run_on(io, s.set("x", "hello", 0ms)).value);
  EXPECT_EQ(gw::testing::run_on(io, s.get("x")).value, "hello");
  EXPECT_FALSE(gw::testing::run_on(io, s.set_if_absent("x", "other", 0ms)).value);
  EXPECT_TRUE(gw::testing::run_on(io, s.set_if_absent("y", "first", 0ms)).value);
  EXPECT_EQ(gw::testing::run_on(io, s.get("x")).value, "hello");
}

TEST_F(LmdbTest, TtlRunsFromCreation) {
  LmdbStore s(opts());
  EXPECT_EQ(s.incr_now("t", 1, 1000ms).value, 1);
  std::this_thread::sleep_for(600ms);
  EXPECT_EQ(s.incr_now("t", 1, 1000ms).value, 2);  // does not extend the TTL
  std::this_thread::sleep_for(500ms);               // 1.1 s after creation, 0.5 s after the last incr
  EXPECT_FALSE(s.get_now("t").value.has_value());
  EXPECT_EQ(s.incr_now("t", 1, 1000ms).value, 1);  // starts over
}

TEST_F(LmdbTest, SetIfAbsentAfterExpiry) {
  LmdbStore s(opts());
  EXPECT_TRUE(s.set_now("a", "1", 100ms, true).value);
  EXPECT_FALSE(s.set_now("a", "2", 100ms, true).value);
  std::this_thread::sleep_for(150ms);
  EXPECT_TRUE(s.set_now("a", "3", 100ms, true).value);
  EXPECT_EQ(s.get_now("a").value, "3");
}

TEST_F(LmdbTest, SweepDeletesOnlyExpired) {
  auto o = opts();
  o.sweep_interval = 1h;  // only the explicit sweep below
  LmdbStore s(o);
  for (int i = 0; i < 5000; ++i) s.set_now("k" + std::to_string(i), "v", i % 2 ? 50ms : 0ms, false);
  EXPECT_EQ(s.entries(), 5000u);
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(s.sweep(), 2500u);
  EXPECT_EQ(s.entries(), 2500u);
  EXPECT_EQ(s.get_now("k0").value, "v");
  EXPECT_FALSE(s.get_now("k1").value.has_value());
}

TEST_F(LmdbTest, BackgroundSweepExpiresByItself) {
  auto o = opts();
  o.sweep_interval = 100ms;
  LmdbStore s(o);
  for (int i = 0; i < 100; ++i) s.set_now("e" + std::to_string(i), "v", 50ms, false);
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(s.entries(), 0u);
}

TEST_F(LmdbTest, SurvivesReopen) {
  {
    LmdbStore s(opts());
    s.incr_now("persist", 7, 0ms);
    s.set_now("ttl", "x", 1h, false);
  }
  LmdbStore s(opts());
  EXPECT_EQ(s.get_now("persist").value, "7");
  EXPECT_EQ(s.get_now("ttl").value, "x");
}

TEST_F(LmdbTest, FullMapFailsWithOkFalseAndRecoversAfterExpiry) {
  auto o = opts();
  o.max_size = 1024 * 1024;
  o.sweep_interval = 1h;
  LmdbStore s(o);
  std::string big(2000, 'x');
  bool failed = false;
  std::string error;
  int i = 0;
  for (; i < 5000 && !failed; ++i) {
    auto r = s.set_now("big" + std::to_string(i), big, 1000ms, false);
    if (!r.ok) {
      failed = true;
      error = r.error;
    }
  }
  ASSERT_TRUE(failed);
  EXPECT_NE(error.find("store.max_size"), std::string::npos) << error;
  std::this_thread::sleep_for(1100ms);
  // A write on a full map sweeps expired entries first, then succeeds.
  auto r = s.set_now("after", big, 0ms, false);
  EXPECT_TRUE(r.ok) << r.error;
}

TEST_F(LmdbTest, BrokenFileIsMovedAside) {
  auto o = opts();
  std::filesystem::create_directories(o.path);
  {
    std::ofstream f(o.path + "/data.mdb", std::ios::binary);
    std::string junk(64 * 1024, 'J');
    f << junk;
  }
  LmdbStore s(o);
  EXPECT_TRUE(s.incr_now("k", 1, 0ms).ok);
  bool aside = false;
  for (auto& e : std::filesystem::directory_iterator(o.path))
    if (e.path().filename().string().rfind("data.mdb.broken-", 0) == 0) aside = true;
  EXPECT_TRUE(aside);
}

TEST_F(LmdbTest, LongKeysAreBounded) {
  LmdbStore s(opts());
  std::string a(1000, 'a'), b = a;
  b.back() = 'b';
  EXPECT_EQ(s.incr_now(a, 1, 0ms).value, 1);
  EXPECT_EQ(s.incr_now(b, 1, 0ms).value, 1);  // differs only past the readable prefix
  EXPECT_EQ(s.incr_now(a, 1, 0ms).value, 2);
}

TEST_F(LmdbTest, ConcurrentIncrementsFromThreadsAreAtomic) {
  LmdbStore s(opts());
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&] {
      for (int i = 0; i < 500; ++i) s.incr_now("shared", 1, 0ms);
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(s.get_now("shared").value, "2000");
}

TEST_F(LmdbTest, GcraAllowsLimitThenRefusesWithRetryAfter) {
  LmdbStore s(opts());
  for (int i = 0; i < 10; ++i) {
    auto r = s.rate_now("r", 10, 10s, 1);
    ASSERT_TRUE(r.ok);
    EXPECT_TRUE(r.value.allowed) << i;
  }
  auto r = s.rate_now("r", 10, 10s, 1);
  ASSERT_TRUE(r.ok);
  EXPECT_FALSE(r.value.allowed);
  EXPECT_GT(r.value.retry_after.count(), 900);  // one event per second
  EXPECT_LE(r.value.retry_after.count(), 1000);
  // a refused event is not counted
  EXPECT_FALSE(s.rate_now("r", 10, 10s, 1).value.allowed);
}

TEST_F(LmdbTest, GcraRefills) {
  LmdbStore s(opts());
  EXPECT_TRUE(s.rate_now("q", 2, 2000ms, 1).value.allowed);
  EXPECT_TRUE(s.rate_now("q", 2, 2000ms, 1).value.allowed);
  EXPECT_FALSE(s.rate_now("q", 2, 2000ms, 1).value.allowed);
  std::this_thread::sleep_for(1050ms);  // one event every second
  EXPECT_TRUE(s.rate_now("q", 2, 2000ms, 1).value.allowed);
  EXPECT_FALSE(s.rate_now("q", 2, 2000ms, 1).value.allowed);
}

TEST_F(LmdbTest, GcraConcurrentExactlyLimit) {
  LmdbStore s(opts());
  std::atomic<int> allowed{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&] {
      for (int i = 0; i < 50; ++i)
        if (s.rate_now("burst", 20, 1h, 1).value.allowed) ++allowed;
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(allowed.load(), 20);
}

}  // namespace
