// The Asio resolver against an in-process DNS server on loopback (UDP and TCP).
#include "gateway/dns/asio_resolver.hpp"

#include <atomic>
#include <chrono>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

namespace asio = boost::asio;
using namespace gw::dns;
using asio::ip::tcp;
using asio::ip::udp;

namespace {

// Answers every A query with 192.0.2.1 (TTL 60) unless told otherwise.
struct FakeServer {
  asio::io_context& io;
  udp::socket usock;
  tcp::acceptor acc;
  std::atomic<int> udp_queries{0}, tcp_queries{0};
  bool silent = false;
  bool truncate = false;
  unsigned rcode = 0;
  int answers = 1;
  int delay_ms = 0;

  // UDP and TCP on one port: another process may hold the TCP side of the port the kernel gave
  // the UDP socket, so try again with a new one.
  explicit FakeServer(asio::io_context& io) : io(io), usock(io), acc(io) {
    const auto lo = asio::ip::make_address("127.0.0.1");
    for (int i = 0; i < 100; ++i) {
      boost::system::error_code ec;
      usock = udp::socket(io, udp::endpoint(lo, 0));
      acc = tcp::acceptor(io);
      acc.open(tcp::v4(), ec);
      if (!ec) acc.bind(tcp::endpoint(lo, usock.local_endpoint().port()), ec);
      if (!ec) acc.listen(64, ec);
      if (!ec) return;
    }
    throw std::runtime_error("no free port");
  }

  udp::endpoint endpoint() const { return usock.local_endpoint(); }

  std::vector<std::uint8_t> respond(const std::vector<std::uint8_t>& q, bool tc) {
    // header + question copied from the query (it ends 4 bytes after the name's root label)
    size_t p = 12;
    while (p < q.size() && q[p]) p += q[p] + 1;
    p += 5;
    std::vector<std::uint8_t> r(q.begin(), q.begin() + p);
    r[2] = 0x81 | (tc ? 0x02 : 0);
    r[3] = 0x80 | rcode;
    r[6] = 0;
    r[7] = tc || rcode ? 0 : answers;
    r[10] = r[11] = 0;
    if (!tc && !rcode)
      for (int i = 0; i < answers; ++i) {
        std::uint8_t rr[] = {0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, static_cast<std::uint8_t>(1 + i)};
        r.insert(r.end(), rr, rr + sizeof rr);
      }
    return r;
  }

  asio::awaitable<void> serve_udp() {
    std::vector<std::uint8_t> buf(2048);
    for (;;) {
      udp::endpoint from;
      size_t n = co_await usock.async_receive_from(asio::buffer(buf), from, asio::use_awaitable);
      ++udp_queries;
      if (silent) continue;
      if (delay_ms) {
        asio::steady_timer t(io, std::chrono::milliseconds(delay_ms));
        co_await t.async_wait(asio::use_awaitable);
      }
      auto r = respond({buf.begin(), buf.begin() + n}, truncate);
      co_await usock.async_send_to(asio::buffer(r), from, asio::use_awaitable);
    }
  }

  asio::awaitable<void> serve_tcp() {
    for (;;) {
      auto s = co_await acc.async_accept(asio::use_awaitable);
      ++tcp_queries;
      std::uint8_t len[2];
      co_await asio::async_read(s, asio::buffer(len), asio::use_awaitable);
      std::vector<std::uint8_t> q((len[0] << 8) | len[1]);
      co_await asio::async_read(s, asio::buffer(q), asio::use_awaitable);
      auto r = respond(q, false);
      std::uint8_t l2[2] = {static_cast<std::uint8_t>(r.size() >> 8), static_cast<std::uint8_t>(r.size())};
      co_await asio::async_write(s, asio::buffer(l2), asio::use_awaitable);
      co_await asio::async_write(s, asio::buffer(r), asio::use_awaitable);
    }
  }

  void start() {
    asio::co_spawn(io, serve_udp(), asio::detached);
    asio::co_spawn(io, serve_tcp(), asio::detached);
  }
};

template <typename F>
void run(asio::io_context& io, F f) {
  bool done = false;
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    co_await f();
    done = true;
    io.stop();
  }, asio::detached);
  io.run_for(std::chrono::seconds(10));
  ASSERT_TRUE(done);
}

std::shared_ptr<AsioResolver> resolver_for(std::vector<udp::endpoint> servers, int timeout_ms = 2000) {
  ResolverOptions o;
  o.servers = std::move(servers);
  o.timeout = std::chrono::milliseconds(timeout_ms);
  return std::make_shared<AsioResolver>(o);
}

}  // namespace

TEST(DnsResolver, AnswersAndCaches) {
  asio::io_context io;
  FakeServer srv(io);
  srv.start();
  auto r = resolver_for({srv.endpoint()});
  run(io, [&]() -> asio::awaitable<void> {
    auto a = co_await r->query("Host.Example.", Type::A);
    EXPECT_EQ(a.status, Status::ok);
    EXPECT_EQ(a.records, std::vector<std::string>{"192.0.2.1"});
    auto b = co_await r->query("host.example", Type::A);
    EXPECT_EQ(b.status, Status::ok);
    EXPECT_LE(b.ttl, 60u);
  });
  EXPECT_EQ(srv.udp_queries, 1);
  EXPECT_EQ(r->stats().cache_hits, 1u);
}

TEST(DnsResolver, HundredConcurrentAskersSendOneQuery) {
  asio::io_context io;
  FakeServer srv(io);
  srv.start();
  auto r = resolver_for({srv.endpoint()});
  int ok = 0;
  run(io, [&]() -> asio::awaitable<void> {
    for (int i = 0; i < 100; ++i)
      asio::co_spawn(io, [&]() -> asio::awaitable<void> {
        auto a = co_await r->query("same.example", Type::A);
        if (a.status == Status::ok) ++ok;
      }, asio::detached);
    asio::steady_timer t(io);
    while (ok < 100) {
      t.expires_after(std::chrono::milliseconds(5));
      co_await t.async_wait(asio::use_awaitable);
    }
  });
  EXPECT_EQ(ok, 100);
  EXPECT_EQ(srv.udp_queries, 1);
  EXPECT_EQ(r->stats().joined, 99u);
}

TEST(DnsResolver, SilentServerGivesTemperrorWithinTheBudget) {
  asio::io_context io;
  FakeServer srv(io);
  srv.silent = true;
  srv.start();
  auto r = resolver_for({srv.endpoint()}, 600);
  run(io, [&]() -> asio::awaitable<void> {
    auto t0 = std::chrono::steady_clock::now();
    auto a = co_await r->query("slow.example", Type::A);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_EQ(a.status, Status::temperror);
    EXPECT_GE(ms, 550);
    EXPECT_LE(ms, 900);
  });
  EXPECT_GE(srv.udp_queries, 2);  // retried within the budget
}

TEST(DnsResolver, FallsBackToTheNextServer) {
  asio::io_context io;
  FakeServer dead(io), live(io);
  dead.silent = true;
  dead.start();
  live.start();
  auto r = resolver_for({dead.endpoint(), live.endpoint()}, 1500);
  run(io, [&]() -> asio::awaitable<void> {
    auto a = co_await r->query("x.example", Type::A);
    EXPECT_EQ(a.status, Status::ok);
  });
  EXPECT_EQ(dead.udp_queries, 1);
  EXPECT_EQ(live.udp_queries, 1);
}

TEST(DnsResolver, ServfailIsTemperrorAndNotCached) {
  asio::io_context io;
  FakeServer srv(io);
  srv.rcode = 2;
  srv.start();
  auto r = resolver_for({srv.endpoint()}, 2000);
  run(io, [&]() -> asio::awaitable<void> {
    auto t0 = std::chrono::steady_clock::now();
    auto a = co_await r->query("x.example", Type::A);
    EXPECT_EQ(a.status, Status::temperror);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(200));  // no waiting out the budget
    EXPECT_EQ(srv.udp_queries, 1);
    srv.rcode = 0;
    auto b = co_await r->query("x.example", Type::A);
    EXPECT_EQ(b.status, Status::ok);
  });
}

TEST(DnsResolver, NegativeAnswersAreCached) {
  asio::io_context io;
  FakeServer srv(io);
  srv.rcode = 3;
  srv.start();
  auto r = resolver_for({srv.endpoint()});
  run(io, [&]() -> asio::awaitable<void> {
    auto a = co_await r->query("gone.example", Type::A);
    EXPECT_EQ(a.status, Status::nxdomain);
    auto b = co_await r->query("gone.example", Type::A);
    EXPECT_EQ(b.status, Status::nxdomain);
  });
  EXPECT_EQ(srv.udp_queries, 1);
}

TEST(DnsResolver, TruncatedAnswerIsRetriedOverTcp) {
  asio::io_context io;
  FakeServer srv(io);
  srv.truncate = true;
  srv.answers = 40;
  srv.start();
  auto r = resolver_for({srv.endpoint()});
  run(io, [&]() -> asio::awaitable<void> {
    auto a = co_await r->query("big.example", Type::A);
    EXPECT_EQ(a.status, Status::ok);
    EXPECT_EQ(a.records.size(), 40u);
  });
  EXPECT_EQ(srv.tcp_queries, 1);
  EXPECT_EQ(r->stats().tcp, 1u);
}

TEST(DnsResolver, MalformedNameIsPermerrorWithoutQuery) {
  asio::io_context io;
  FakeServer srv(io);
  srv.start();
  auto r = resolver_for({srv.endpoint()});
  run(io, [&]() -> asio::awaitable<void> {
    auto a = co_await r->query("a..b", Type::A);
    EXPECT_EQ(a.status, Status::permerror);
  });
  EXPECT_EQ(srv.udp_queries, 0);
}

TEST(DnsResolver, ResolvConfParsing) {
  auto s = parse_resolv_conf("# c\nsearch x\nnameserver 10.0.0.1\nnameserver fe80::1%eth0\nnameserver bogus\n");
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0], udp::endpoint(asio::ip::make_address("10.0.0.1"), 53));
  EXPECT_TRUE(s[1].address().is_v6());
}

TEST(DnsResolver, AskersOnOtherThreadsShareOneQueryAndResumeOnTheirOwnExecutor) {
  asio::io_context server_io;
  FakeServer srv(server_io);
  srv.delay_ms = 150;
  srv.start();
  std::thread server_thread([&] { server_io.run_for(std::chrono::seconds(5)); });
  auto r = resolver_for({srv.endpoint()});
  std::atomic<int> ok{0}, wrong_thread{0};
  auto worker = [&] {
    asio::io_context io;
    const auto me = std::this_thread::get_id();
    for (int i = 0; i < 50; ++i)
      asio::co_spawn(io, [&]() -> asio::awaitable<void> {
        auto a = co_await r->query("shared.example", Type::A);
        if (a.status == Status::ok) ++ok;
        if (std::this_thread::get_id() != me) ++wrong_thread;
      }, asio::detached);
    io.run_for(std::chrono::seconds(3));
  };
  std::thread t1(worker), t2(worker);
  t1.join();
  t2.join();
  server_io.stop();
  server_thread.join();
  EXPECT_EQ(ok, 100);
  EXPECT_EQ(wrong_thread, 0);
  EXPECT_EQ(srv.udp_queries, 1);
}

// At exit the gateway stops its event loops with lookups still in flight, then calls shutdown()
// before the loops are destroyed: the coroutines waiting on a lookup are destroyed (their frames'
// destructors run, nothing leaks) and the leader's later destruction with its io_context is harmless.
TEST(DnsResolver, ShutdownDestroysTheCoroutinesStillWaiting) {
  auto io = std::make_unique<asio::io_context>();
  auto srv = std::make_unique<FakeServer>(*io);  // goes before its io_context (below)
  srv->silent = true;
  srv->start();
  auto r = resolver_for({srv->endpoint()}, 60000);
  struct Alive {
    int& n;
    explicit Alive(int& n) : n(n) { ++n; }
    ~Alive() { --n; }
  };
  int alive = 0;
  for (int i = 0; i < 3; ++i)
    asio::co_spawn(*io, [&]() -> asio::awaitable<void> {
      Alive a(alive);
      co_await r->query("never.example", Type::A);
      ADD_FAILURE() << "a lookup to a silent server answered within the test";
    }, asio::detached);
  io->run_for(std::chrono::milliseconds(200));
  ASSERT_EQ(alive, 3);  // one leader, two joined
  EXPECT_EQ(r->stats().joined, 2u);
  io->stop();
  r->shutdown();
  // Asio destroys a coroutine on its own executor: the two waiters' destruction is now queued there.
  io->restart();
  io->poll();
  EXPECT_EQ(alive, 1);  // the waiters are gone; the leader belongs to its io_context
  srv.reset();
  io.reset();
  EXPECT_EQ(alive, 0);  // without shutdown() the waiters would have been kept forever (2 here)
}
