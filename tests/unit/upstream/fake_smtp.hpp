// A scripted SMTP peer on a loopback socket, run by the test's own io_context (one thread: the fake
// and the code under test take turns, so a script step happens exactly where it is written).
//
//   FakeSmtp up(io);
//   up.serve([](Peer& p) -> Task<void> {
//     co_await p.send("220 up ESMTP\r\n");
//     co_await p.expect("EHLO");   // reads one line, records it, fails the test on a mismatch
//     co_await p.send("250 up\r\n");
//   });
//   run(io, [&]() -> Task<void> { ...code under test... }, [&] { up.stop(); });
#pragma once
#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

#include "gateway/core/plugin.hpp"  // gw::Task

namespace gw::testing {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
inline constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// One accepted connection, as the script sees it.
class Peer {
 public:
  explicit Peer(tcp::socket s) : socket_(std::move(s)) {}
  tcp::socket& socket() { return socket_; }

  Task<void> send(std::string bytes) {
    auto [ec, n] = co_await asio::async_write(socket_, asio::buffer(bytes), use_tuple);
    (void)n;
    EXPECT_FALSE(ec) << "fake server write: " << ec.message();
  }
  // One line without its CRLF, or nullopt when the peer closed (or the test ended).
  Task<std::optional<std::string>> line() {
    auto [ec, n] = co_await asio::async_read_until(socket_, buf_, "\n", use_tuple);
    if (ec) co_return std::nullopt;
    std::string l(asio::buffers_begin(buf_.data()), asio::buffers_begin(buf_.data()) + n);
    buf_.consume(n);
    while (!l.empty() && (l.back() == '\n' || l.back() == '\r')) l.pop_back();
    lines.push_back(l);
    co_return l;
  }
  // Reads one line and checks that it starts with `prefix`.
  Task<std::string> expect(std::string prefix) {
    auto l = co_await line();
    EXPECT_TRUE(l.has_value()) << "fake server: connection closed, expected " << prefix;
    if (!l) co_return std::string();
    EXPECT_EQ(l->substr(0, prefix.size()), prefix) << "fake server got: " << *l;
    co_return *l;
  }
  // Lines up to and including the lone "." of a DATA body (still dot-stuffed, as on the wire).
  Task<std::vector<std::string>> message() {
    std::vector<std::string> body;
    for (;;) {
      auto l = co_await line();
      if (!l || *l == ".") break;
      body.push_back(*l);
    }
    co_return body;
  }
  // Greeting and EHLO with the given extension lines.
  Task<void> greet(std::string ext = "250-PIPELINING\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n") {
    co_await send("220 fake.upstream ESMTP\r\n");
    co_await expect("EHLO ");
    co_await send("250-fake.upstream\r\n" + ext);
  }
  // Waits until the other side closes (or the test ends), without consuming what it sends.
  Task<void> until_closed() {
    for (;;) {
      auto l = co_await line();
      if (!l) co_return;
    }
  }
  void close() {
    boost::system::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
  }

  std::vector<std::string> lines;  // every line read, in order

 private:
  tcp::socket socket_;
  asio::streambuf buf_;
};

// A listener whose every accepted connection runs `script` (connections in turn, one at a time).
class FakeSmtp {
 public:
  using Script = std::function<Task<void>(Peer&)>;
  explicit FakeSmtp(asio::io_context& io)
      : io_(io), acceptor_(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)), port_(acceptor_.local_endpoint().port()) {}
  std::uint16_t port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port()); }

  // Accepts connections for as long as the test runs; connection i runs scripts[min(i, last)].
  void serve(Script script) { serve(std::vector<Script>{std::move(script)}); }
  void serve(std::vector<Script> scripts) {
    scripts_ = std::move(scripts);
    asio::co_spawn(io_, accept_loop(), [](std::exception_ptr e) {
      if (e) std::rethrow_exception(e);
    });
  }
  // Closes the listener. A connection's coroutine reads on until the other side closes it, so every
  // line the code under test wrote is in lines() once io.run() returns.
  void stop() {
    boost::system::error_code ec;
    acceptor_.close(ec);
  }
  int accepted() const { return static_cast<int>(peers_.size()); }
  // Lines connection `i` received.
  const std::vector<std::string>& lines(int i = 0) const { return peers_.at(i)->lines; }

 private:
  Task<void> accept_loop() {
    for (;;) {
      auto [ec, s] = co_await acceptor_.async_accept(use_tuple);
      if (ec) co_return;
      auto peer = std::make_shared<Peer>(std::move(s));
      peers_.push_back(peer);
      const auto& script = scripts_.at(std::min(peers_.size() - 1, scripts_.size() - 1));
      co_await script(*peer);
      // The script is over: keep the socket open until the other side or stop() closes it.
      co_await peer->until_closed();
    }
  }

  asio::io_context& io_;
  tcp::acceptor acceptor_;
  std::uint16_t port_;
  std::vector<Script> scripts_;
  std::vector<std::shared_ptr<Peer>> peers_;
};

// Runs `body` on `io` until it finishes, then `cleanup` (closing the fakes) and the io_context until
// every coroutine has ended. The time bound only turns a hang into a failure; it never paces the test.
inline void run(asio::io_context& io, std::function<Task<void>()> body, std::function<void()> cleanup,
                std::chrono::seconds bound = std::chrono::seconds(30)) {
  bool done = false;
  std::exception_ptr error;
  asio::co_spawn(io, body(), [&](std::exception_ptr e) {
    done = true;
    error = e;
    cleanup();
  });
  io.run_for(bound);
  ASSERT_TRUE(done) << "the test body did not finish within " << bound.count() << " s";
  if (error) std::rethrow_exception(error);
  io.restart();
  io.run_for(std::chrono::seconds(5));  // the fakes' coroutines end on their closed sockets
}

}  // namespace gw::testing
