#include "plugins/milter/client.hpp"

#include <sys/socket.h>

#include <cerrno>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace gw::milter {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

std::optional<Address> Address::parse(std::string_view text) {
  Address a;
  auto colon = text.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  std::string_view kind = text.substr(0, colon), rest = text.substr(colon + 1);
  if (kind == "unix" || kind == "local") {
    if (rest.empty() || rest.size() > 107) return std::nullopt;  // sun_path holds 108 octets
    a.unix_socket = true;
    a.path = std::string(rest);
    return a;
  }
  if (kind != "inet" && kind != "inet6") return std::nullopt;
  std::string_view host, port;
  if (!rest.empty() && rest.front() == '[') {
    auto close = rest.find(']');
    if (close == std::string_view::npos || close + 1 >= rest.size() || rest[close + 1] != ':') return std::nullopt;
    host = rest.substr(1, close - 1);
    port = rest.substr(close + 2);
  } else if (auto at = rest.find('@'); at != std::string_view::npos) {  // Sendmail's "port@host"
    port = rest.substr(0, at);
    host = rest.substr(at + 1);
  } else {
    auto last = rest.rfind(':');
    if (last == std::string_view::npos) return std::nullopt;
    host = rest.substr(0, last);
    port = rest.substr(last + 1);
  }
  if (host.empty() || port.empty() || port.size() > 5) return std::nullopt;
  unsigned p = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return std::nullopt;
    p = p * 10 + static_cast<unsigned>(c - '0');
  }
  if (p == 0 || p > 65535) return std::nullopt;
  a.host = std::string(host);
  a.port = static_cast<std::uint16_t>(p);
  return a;
}

Client::Client(asio::any_io_executor ex, Duration command_timeout)
    : socket_(ex), command_timeout_(command_timeout), rbuf_(16384) {}

Client::~Client() { close(); }

bool Client::is_open() const { return socket_.is_open(); }

bool Client::idle_broken() {
  if (!socket_.is_open()) return true;
  if (decoder_.buffered() > 0) return true;
  char c;
  int n = static_cast<int>(::recv(socket_.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT));
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return false;
  return true;  // 0: closed by the milter; > 0: data nobody asked for; < 0: a socket error
}

void Client::close() {
  boost::system::error_code ec;
  socket_.close(ec);
}

asio::awaitable<Result> Client::open(const Address& address, Duration connect_timeout) {
  Result res;
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer timer(ex);
  timer.expires_after(connect_timeout);
  const auto deadline = std::chrono::steady_clock::now() + connect_timeout;
  auto fail = [&](std::string e) {
    close();
    res.ok = false;
    res.error = std::move(e);
    return res;
  };
  if (address.unix_socket) {
    asio::local::stream_protocol::endpoint ep(address.path);
    asio::local::stream_protocol::socket s(ex);
    auto r = co_await (s.async_connect(ep, use_tuple) || timer.async_wait(use_tuple));
    if (r.index() == 1) co_return fail("connect timeout");
    if (auto [ec] = std::get<0>(r); ec) co_return fail("connect " + address.path + ": " + ec.message());
    socket_ = asio::generic::stream_protocol::socket(ex, asio::generic::stream_protocol(AF_UNIX, SOCK_STREAM),
                                                     s.release());
  } else {
    asio::ip::tcp::resolver resolver(ex);
    auto rr = co_await (resolver.async_resolve(address.host, std::to_string(address.port), use_tuple) ||
                        timer.async_wait(use_tuple));
    if (rr.index() == 1) co_return fail("resolve timeout");
    auto [rec, results] = std::get<0>(rr);
    if (rec) co_return fail("resolve " + address.host + ": " + rec.message());
    asio::ip::tcp::socket s(ex);
    auto r = co_await (asio::async_connect(s, results, use_tuple) || timer.async_wait(use_tuple));
    if (r.index() == 1) co_return fail("connect timeout");
    if (auto ec = std::get<0>(std::get<0>(r)); ec)
      co_return fail("connect " + address.host + ":" + std::to_string(address.port) + ": " + ec.message());
    boost::system::error_code ec;
    s.set_option(asio::ip::tcp::no_delay(true), ec);
    const int family = s.local_endpoint(ec).protocol().family();
    socket_ = asio::generic::stream_protocol::socket(ex, asio::generic::stream_protocol(family, SOCK_STREAM),
                                                     s.release());
  }
  // Option negotiation, still under connect_timeout.
  auto saved = command_timeout_;
  command_timeout_ = std::max(Duration(1), std::chrono::duration_cast<Duration>(deadline - std::chrono::steady_clock::now()));
  Result r = co_await exchange(optneg(act::offered, proto::offered), true);
  command_timeout_ = saved;
  if (!r.ok) co_return fail("negotiation: " + r.error);
  if (r.reply.command != rep::optneg) co_return fail(std::string("negotiation: unexpected reply '") + r.reply.command + "'");
  auto o = parse_optneg(r.reply.data);
  if (!o) co_return fail("negotiation: malformed reply");
  if (o->version < 2 || o->version > kVersion) co_return fail("negotiation: unsupported version " + std::to_string(o->version));
  actions_ = o->actions & act::offered;
  protocol_ = o->protocol & proto::offered;
  symlists_ = std::move(o->symlists);
  res.ok = true;
  co_return res;
}

asio::awaitable<bool> Client::write(const std::vector<asio::const_buffer>& bufs, std::string& error) {
  if (!socket_.is_open()) {
    error = "not connected";
    co_return false;
  }
  asio::steady_timer timer(co_await asio::this_coro::executor);
  timer.expires_after(command_timeout_);
  auto r = co_await (asio::async_write(socket_, bufs, use_tuple) || timer.async_wait(use_tuple));
  if (r.index() == 1) {
    error = "write timeout";
    close();
    co_return false;
  }
  if (auto ec = std::get<0>(std::get<0>(r)); ec) {
    error = "write: " + ec.message();
    close();
    co_return false;
  }
  co_return true;
}

asio::awaitable<bool> Client::read_packet(Packet& out, std::string& error) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  timer.expires_after(command_timeout_);
  for (;;) {
    if (auto p = decoder_.next()) {
      out = std::move(*p);
      co_return true;
    }
    if (decoder_.error()) {
      error = decoder_.error_text();
      close();
      co_return false;
    }
    if (!socket_.is_open()) {
      error = "not connected";
      co_return false;
    }
    auto r = co_await (socket_.async_read_some(asio::buffer(rbuf_), use_tuple) || timer.async_wait(use_tuple));
    if (r.index() == 1) {
      error = "timeout";
      close();
      co_return false;
    }
    auto [ec, n] = std::get<0>(r);
    if (ec) {
      error = ec == asio::error::eof ? std::string("connection closed by the milter") : "read: " + ec.message();
      close();
      co_return false;
    }
    decoder_.feed(rbuf_.data(), n);
  }
}

asio::awaitable<Result> Client::read_final(bool eom, std::size_t edit_limit) {
  Result res;
  std::size_t edit_bytes = 0;
  // SMFIR_PROGRESS restarts command_timeout, but a milter that only ever says "progress" must not
  // hold the client forever: the whole wait for one reply is capped at kProgressFactor timeouts.
  const auto give_up = std::chrono::steady_clock::now() + command_timeout_ * kProgressFactor;
  for (;;) {
    Packet p;
    if (!co_await read_packet(p, res.error)) co_return res;
    switch (p.command) {
      case rep::progress:
        if (std::chrono::steady_clock::now() > give_up) {
          res.error = "still only progress after " + std::to_string(kProgressFactor) + " command timeouts";
          close();
          co_return res;
        }
        continue;  // the milter is alive: a fresh command_timeout starts
      case rep::accept: case rep::cont: case rep::discard: case rep::reject: case rep::tempfail:
      case rep::replycode: case rep::skip: case rep::optneg: case rep::conn_fail: case rep::shutdown:
        res.ok = true;
        res.reply = std::move(p);
        co_return res;
      case rep::addheader: case rep::insheader: case rep::chgheader: case rep::replbody: case rep::quarantine:
      case rep::addrcpt: case rep::delrcpt: case rep::addrcpt_par: case rep::chgfrom:
        if (!eom) {
          res.error = std::string("modification '") + p.command + "' outside end of message";
          close();
          co_return res;
        }
        edit_bytes += p.data.size() + 16;
        if (edit_bytes > edit_limit) {
          res.error = "modifications larger than the message size limit";
          close();
          co_return res;
        }
        res.edits.push_back(std::move(p));
        continue;
      default:
        res.error = std::string("unknown reply 0x") + "0123456789abcdef"[(p.command >> 4) & 0xf] +
                    "0123456789abcdef"[p.command & 0xf];
        close();
        co_return res;
    }
  }
}

asio::awaitable<Result> Client::exchange(std::string out, bool want_reply, bool eom, std::size_t edit_limit) {
  Result res;
  if (!out.empty()) {
    std::vector<asio::const_buffer> bufs{asio::buffer(out)};
    if (!co_await write(bufs, res.error)) co_return res;
  }
  if (!want_reply) {
    res.ok = true;
    res.reply.command = rep::cont;
    co_return res;
  }
  co_return co_await read_final(eom, edit_limit);
}

asio::awaitable<Result> Client::body(std::string_view body, bool want_replies) {
  Result res;
  res.ok = true;
  res.reply.command = rep::cont;
  for (std::size_t at = 0; at < body.size(); at += kMaxChunk) {
    std::string_view chunk = body.substr(at, kMaxChunk);
    std::string head = packet_head(cmd::body, chunk.size());
    std::vector<asio::const_buffer> bufs{asio::buffer(head), asio::buffer(chunk.data(), chunk.size())};
    if (!co_await write(bufs, res.error)) {
      res.ok = false;
      co_return res;
    }
    if (!want_replies) continue;
    res = co_await read_final(false, 0);
    if (!res.ok || res.reply.command != rep::cont) co_return res;
  }
  co_return res;
}

asio::awaitable<void> Client::send(std::string out) {
  std::string error;
  std::vector<asio::const_buffer> bufs{asio::buffer(out)};
  co_await write(bufs, error);
}

}  // namespace gw::milter
