// net::Deadline: every deadline of an io_context on one shared timer (DeadlineService).
#include <chrono>
#include <memory>
#include <vector>

#include <boost/asio/execution/context.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/query.hpp>
#include <gtest/gtest.h>

#include "gateway/net/deadline.hpp"

namespace gw::net {
namespace {
namespace asio = boost::asio;
using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

DeadlineService& service_of(asio::io_context& io) { return asio::use_service<DeadlineService>(io); }

TEST(Deadline, ManyDeadlinesShareOneTimerAndExpireInOrder) {
  asio::io_context io;
  std::vector<std::unique_ptr<Deadline>> ds;
  std::vector<int> order;
  std::vector<clock::duration> after;
  const auto t0 = clock::now();
  for (int i = 0; i < 3; ++i) {
    ds.push_back(std::make_unique<Deadline>(io.get_executor()));
    ds.back()->start([&, i] {
      order.push_back(i);
      after.push_back(clock::now() - t0);
    });
  }
  ds[0]->expires_after(300ms);
  ds[1]->expires_after(100ms);
  ds[2]->expires_after(200ms);
  EXPECT_EQ(service_of(io).size(), 3u);
  io.run_for(2s);  // returns early: with every deadline passed, no work is left
  EXPECT_EQ(order, (std::vector<int>{1, 2, 0}));
  ASSERT_EQ(after.size(), 3u);
  EXPECT_GE(after[0], 100ms);
  EXPECT_LT(after[0], 250ms);
  for (auto& d : ds) EXPECT_TRUE(d->expired());
  EXPECT_LT(clock::now() - t0, 1500ms);
}

TEST(Deadline, MovedLaterOrStoppedOrNeverItDoesNotFire) {
  asio::io_context io;
  Deadline moved(io.get_executor()), stopped(io.get_executor()), never(io.get_executor()), clock_(io.get_executor());
  int fired_moved = 0, fired_stopped = 0, fired_never = 0;
  moved.start([&] { ++fired_moved; });
  stopped.start([&] { ++fired_stopped; });
  never.start([&] { ++fired_never; });
  moved.expires_after(50ms);
  stopped.expires_after(50ms);
  never.expires_after(50ms);
  never.never();
  stopped.stop();
  EXPECT_EQ(service_of(io).size(), 2u);
  // Keep moving `moved` later, as a session does at every command, while 300 ms pass.
  const auto end = clock::now() + 300ms;
  while (clock::now() < end) {
    moved.expires_after(50ms);
    io.run_for(10ms);
  }
  EXPECT_EQ(fired_moved, 0);
  EXPECT_EQ(fired_stopped, 0);
  EXPECT_EQ(fired_never, 0);
  EXPECT_FALSE(moved.expired());
  io.run_for(200ms);  // now it is left alone
  EXPECT_EQ(fired_moved, 1);
  EXPECT_TRUE(moved.expired());
  moved.clear_expired();
  EXPECT_FALSE(moved.expired());
  EXPECT_EQ(fired_never, 0);
}

TEST(Deadline, AnEarlierDeadlineRearmsTheSharedTimer) {
  asio::io_context io;
  Deadline late(io.get_executor()), early(io.get_executor());
  bool late_fired = false;
  clock::duration early_after{};
  const auto t0 = clock::now();
  late.start([&] { late_fired = true; });
  early.start([&] { early_after = clock::now() - t0; });
  late.expires_after(10s);
  early.expires_after(100ms);  // earlier than the timer's: re-armed
  io.run_for(500ms);
  EXPECT_GE(early_after, 100ms);
  EXPECT_LT(early_after, 400ms);
  EXPECT_FALSE(late_fired);
  EXPECT_EQ(service_of(io).size(), 2u);  // an expired deadline stays registered: it can be moved again
  late.stop();
  early.stop();
  EXPECT_EQ(service_of(io).size(), 0u);
  // The last one gone, the timer is cancelled (its wait ends aborted): the context runs out of work
  // at once instead of waiting out the 10 s of the deadline that was armed.
  const auto t1 = clock::now();
  io.run_for(5s);
  EXPECT_LT(clock::now() - t1, 1s);
}

TEST(Deadline, DestroyedWithItsContextWhileRegistered) {
  auto io = std::make_unique<asio::io_context>();
  auto d = std::make_unique<Deadline>(io->get_executor());
  d->start([] {});
  d->expires_after(1h);
  d.reset();  // removed from the service
  EXPECT_EQ(service_of(*io).size(), 0u);
  auto kept = std::make_unique<Deadline>(io->get_executor());
  kept->start([] {});
  kept->expires_after(1h);
  io.reset();  // the service shuts down with a deadline still registered: nothing runs, nothing leaks
  kept->never();
}

}  // namespace
}  // namespace gw::net
