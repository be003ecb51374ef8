// Store::log_* on both backends, and the embedded log read by a second store on the same path (what
// `smtp-gateway dmarc-report` does while the gateway runs).
#include <gtest/gtest.h>

#include <filesystem>

#include "gateway/store/lmdb_store.hpp"
#include "gateway/store/redis_store.hpp"
#include "tests/unit/store/redis_test_server.hpp"
#include "tests/unit/store/store_log_test.hpp"

namespace {

using gw::store::LmdbStore;
using gw::store::RedisStore;
using gw::testing::run_on;

TEST(StoreLog, Embedded) {
  std::string dir = gw::testing::temp_dir("lmdblog");
  {
    LmdbStore::Options o;
    o.path = dir;
    o.max_size = 16 * 1024 * 1024;
    LmdbStore s(o);
    boost::asio::io_context io;
    gw::testing::check_store_log(io, s);
    s.sweep();  // log entries never expire
    EXPECT_EQ(run_on(io, s.log_read("t", "", 10)).value.size(), 1u);
    // a second environment on the same path (another process in real use) sees and erases entries
    LmdbStore other(o);
    auto r = run_on(io, other.log_read("t", "", 10));
    ASSERT_EQ(r.value.size(), 1u);
    EXPECT_EQ(run_on(io, other.log_erase("t", {r.value[0].id})).value, 1);
    EXPECT_TRUE(run_on(io, s.log_read("t", "", 10)).value.empty());
    // ids keep growing after an erase: a reader's `after` stays valid
    ASSERT_TRUE(run_on(io, s.log_append("t", "next")).ok);
    EXPECT_EQ(run_on(io, s.log_read("t", r.value[0].id, 10)).value.size(), 1u);
  }
  std::filesystem::remove_all(dir);
}

TEST(StoreLog, Redis) {
  if (!gw::testing::have_redis_server()) GTEST_SKIP() << "redis-server not installed";
  gw::testing::RedisServer server;
  ASSERT_TRUE(server.start());
  boost::asio::io_context io;
  RedisStore s(RedisStore::Options::from_url(server.url()));
  gw::testing::check_store_log(io, s);
}

TEST(StoreLog, RedisDownIsAnError) {
  boost::asio::io_context io;
  auto o = RedisStore::Options::from_url("redis://127.0.0.1:1/0");
  RedisStore s(o);
  EXPECT_FALSE(run_on(io, s.log_append("t", "x")).ok);
  EXPECT_FALSE(run_on(io, s.log_read("t", "", 1)).ok);
}

}  // namespace
