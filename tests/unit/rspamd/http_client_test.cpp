// The rspamd HTTP client (plugins/rspamd/http_client.hpp) against a scripted HTTP server in the same
// io_context: keep-alive reuse, Connection: close, a kept-alive connection closed by the server while
// idle or when the next request arrives (sent again once on a fresh one), the deadline, a refused
// connection, a name to resolve, and the exact request bytes.
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <string>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "plugins/rspamd/http_client.hpp"

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace gw::plugins::rspamd;
using namespace std::chrono_literals;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

enum class Mode { answer, answer_then_close, connection_close, drop, hang };

struct Server {
  explicit Server(asio::io_context& ioc) : acceptor(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {}
  tcp::acceptor acceptor;
  std::function<Mode(int conn, int request)> script = [](int, int) { return Mode::answer; };
  int connections = 0;
  int requests = 0;
  int closed = 0;
  std::vector<std::string> heads, bodies;
  unsigned short port() const { return acceptor.local_endpoint().port(); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port()); }

  void start() { asio::co_spawn(acceptor.get_executor(), accept(), asio::detached); }

  asio::awaitable<void> accept() {
    for (;;) {
      auto [ec, sock] = co_await acceptor.async_accept(use_tuple);
      if (ec) co_return;
      asio::co_spawn(acceptor.get_executor(), serve(std::move(sock)), asio::detached);
    }
  }

  asio::awaitable<void> serve(tcp::socket sock) {
    const int conn = ++connections;
    std::string buf;
    for (;;) {
      auto [ec, n] = co_await asio::async_read_until(sock, asio::dynamic_buffer(buf), "\r\n\r\n", use_tuple);
      if (ec) break;
      std::string head = buf.substr(0, n);
      buf.erase(0, n);
      size_t len = 0;
      auto at = head.find("Content-Length: ");
      if (at != std::string::npos) len = std::stoul(head.substr(at + 16));
      if (buf.size() < len) {
        auto [e2, m] = co_await asio::async_read(sock, asio::dynamic_buffer(buf), asio::transfer_exactly(len - buf.size()), use_tuple);
        if (e2) break;
      }
      heads.push_back(head);
      bodies.push_back(buf.substr(0, len));
      buf.erase(0, len);
      Mode mode = script(conn, ++requests);
      if (mode == Mode::drop) break;
      if (mode == Mode::hang) {
        asio::steady_timer t(sock.get_executor());
        t.expires_after(30s);
        co_await t.async_wait(use_tuple);
        break;
      }
      std::string body = R"({"action":"no action"})";
      std::string resp = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                         std::to_string(body.size()) + "\r\n" +
                         (mode == Mode::connection_close ? "Connection: close\r\n" : "") + "\r\n" + body;
      auto [we, wn] = co_await asio::async_write(sock, asio::buffer(resp), use_tuple);
      if (we || mode != Mode::answer) break;
    }
    ++closed;
  }
};

struct RspamdHttp : ::testing::Test {
  asio::io_context ioc;
  Server server{ioc};
  void SetUp() override { server.start(); }
  void TearDown() override { drop_idle_connections_of_this_thread(); }

  // Runs `body` as a coroutine on the io_context until it finishes.
  void run(std::function<asio::awaitable<void>()> body) {
    bool done = false;
    asio::co_spawn(ioc, body(), [&](std::exception_ptr e) {
      done = true;
      ioc.stop();
      if (e) std::rethrow_exception(e);
    });
    ioc.restart();
    ioc.run();
    ASSERT_TRUE(done);
  }

  // Lets the server's coroutines run until `pred` holds (bounded).
  asio::awaitable<void> until(std::function<bool()> pred) {
    asio::steady_timer t(ioc);
    for (int i = 0; i < 500 && !pred(); ++i) {
      t.expires_after(10ms);
      co_await t.async_wait(use_tuple);
    }
  }

  asio::awaitable<HttpResponse> post(const HttpClient& c, std::string_view body = "message",
                                     std::chrono::milliseconds timeout = 5s) {
    std::vector<asio::const_buffer> b{asio::buffer(body.data(), body.size())};
    std::vector<std::pair<std::string, std::string>> headers{std::pair<std::string, std::string>("Queue-Id", "Q1")};
    co_return co_await c.post("/checkv2", headers, b, std::chrono::steady_clock::now() + timeout);
  }
};

}  // namespace

TEST_F(RspamdHttp, KeepAliveConnectionIsReused) {
  HttpClient c(parse_url(server.url()));
  run([&]() -> asio::awaitable<void> {
    for (int i = 0; i < 5; ++i) {
      HttpResponse r = co_await post(c);
      EXPECT_TRUE(r.ok) << r.error;
      EXPECT_EQ(r.status, 200u);
      EXPECT_EQ(r.body, R"({"action":"no action"})");
      EXPECT_EQ(r.reused, i > 0);
      EXPECT_EQ(r.connects, i == 0 ? 1u : 0u);
    }
  });
  EXPECT_EQ(server.connections, 1);
  EXPECT_EQ(server.requests, 5);
  EXPECT_EQ(idle_connections_of_this_thread(), 1u);
}

TEST_F(RspamdHttp, ConnectionCloseIsNotPooled) {
  server.script = [](int, int) { return Mode::connection_close; };
  HttpClient c(parse_url(server.url()));
  run([&]() -> asio::awaitable<void> {
    for (int i = 0; i < 3; ++i) EXPECT_TRUE((co_await post(c)).ok);
  });
  EXPECT_EQ(server.connections, 3);
  EXPECT_EQ(idle_connections_of_this_thread(), 0u);
}

TEST_F(RspamdHttp, IdleConnectionClosedByTheServerIsReplaced) {
  server.script = [](int, int) { return Mode::answer_then_close; };
  HttpClient c(parse_url(server.url()));
  run([&]() -> asio::awaitable<void> {
    EXPECT_TRUE((co_await post(c)).ok);
    co_await until([&] { return server.closed == 1; });
    HttpResponse r = co_await post(c);
    EXPECT_TRUE(r.ok) << r.error;
    EXPECT_FALSE(r.reused);
    EXPECT_EQ(r.connects, 1u);
  });
  EXPECT_EQ(server.connections, 2);
  EXPECT_EQ(server.requests, 2);
}

TEST_F(RspamdHttp, RequestDroppedOnAReusedConnectionIsSentAgainOnce) {
  server.script = [](int conn, int request) { return conn == 1 && request == 2 ? Mode::drop : Mode::answer; };
  HttpClient c(parse_url(server.url()));
  run([&]() -> asio::awaitable<void> {
    EXPECT_TRUE((co_await post(c, "first")).ok);
    HttpResponse r = co_await post(c, "second");
    EXPECT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.connects, 1u);
  });
  EXPECT_EQ(server.connections, 2);
  ASSERT_EQ(server.requests, 3);
  EXPECT_EQ(server.bodies[1], "second");
  EXPECT_EQ(server.bodies[2], "second");
}

TEST_F(RspamdHttp, DroppedOnAFreshConnectionIsAnError) {
  server.script = [](int, int) { return Mode::drop; };
  HttpClient c(parse_url(server.url()));
  run([&]() -> asio::awaitable<void> {
    HttpResponse r = co_await post(c);
    EXPECT_FALSE(r.ok);
    EXPECT_FALSE(r.timeout);
    EXPECT_NE(r.error.find("cannot read the answer"), std::string::npos) << r.error;
  });
  EXPECT_EQ(server.requests, 1);
}

TEST_F(RspamdHttp, DeadlineEndsAHangingExchange) {
  server.script = [](int, int) { return Mode::hang; };
  HttpClient c(parse_url(server.url()));
  run([&]() -> asio::awaitable<void> {
    auto t0 = std::chrono::steady_clock::now();
    HttpResponse r = co_await post(c, "x", 300ms);
    auto took = std::chrono::steady_clock::now() - t0;
    EXPECT_FALSE(r.ok);
    EXPECT_TRUE(r.timeout) << r.error;
    EXPECT_GE(took, 250ms);
    EXPECT_LT(took, 10s);
  });
  EXPECT_EQ(idle_connections_of_this_thread(), 0u);
}

TEST_F(RspamdHttp, RefusedConnection) {
  unsigned short port = server.port();
  server.acceptor.close();
  HttpClient c(parse_url("http://127.0.0.1:" + std::to_string(port)));
  run([&]() -> asio::awaitable<void> {
    HttpResponse r = co_await post(c);
    EXPECT_FALSE(r.ok);
    EXPECT_FALSE(r.timeout);
    EXPECT_NE(r.error.find("cannot connect"), std::string::npos) << r.error;
  });
}

TEST_F(RspamdHttp, NameIsResolvedAndTheRequestIsExact) {
  HttpClient c(parse_url("http://localhost:" + std::to_string(server.port()) + "/rspamd/"));
  run([&]() -> asio::awaitable<void> {
    std::string a = "Subject: x\r\n", b = "\r\n", d = "body\r\n";
    std::vector<asio::const_buffer> body{asio::buffer(a), asio::buffer(b), asio::buffer(d)};
    std::vector<std::pair<std::string, std::string>> headers;
    headers.emplace_back("Rcpt", "a@x.test");
    headers.emplace_back("Rcpt", "b@x.test");
    HttpResponse r = co_await c.post("/rspamd/checkv2", headers, body, std::chrono::steady_clock::now() + 5s);
    EXPECT_TRUE(r.ok) << r.error;
  });
  ASSERT_EQ(server.requests, 1);
  EXPECT_EQ(server.heads[0].rfind("POST /rspamd/checkv2 HTTP/1.1\r\n", 0), 0u) << server.heads[0];
  EXPECT_NE(server.heads[0].find("Host: localhost:" + std::to_string(server.port()) + "\r\n"), std::string::npos);
  EXPECT_NE(server.heads[0].find("Rcpt: a@x.test\r\nRcpt: b@x.test\r\n"), std::string::npos) << server.heads[0];
  EXPECT_NE(server.heads[0].find("Content-Length: 20\r\n"), std::string::npos) << server.heads[0];
  EXPECT_EQ(server.bodies[0], "Subject: x\r\n\r\nbody\r\n");
}
