#include "gateway/net/stream.hpp"

#include <cstring>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

namespace gw::net {

namespace {
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kMinRead = 4096;
// An operation that completes at once does not suspend the session's coroutine, so a session whose
// peer always has bytes waiting (a flood, a long pipelined DATA) would never let the other sessions
// of its thread run: after this many in a row, one operation goes through the scheduler.
constexpr unsigned kMaxInline = 16;
// Where an idle connection's read lands before it has a buffer of its own (see fill()).
thread_local char t_scratch[kMinRead];

bool would_block(const error_code& ec) {
  return ec == asio::error::would_block || ec == asio::error::try_again;
}
}  // namespace

void RawBuffer::resize(std::size_t n) {
  std::unique_ptr<char[]> q(new char[n]);
  if (n_) std::memcpy(q.get(), p_.get(), std::min(n_, n));
  p_ = std::move(q);
  n_ = n;
}

Stream::Stream(tcp::socket socket) : socket_(std::move(socket)) {}
Stream::~Stream() = default;

std::string Stream::tls_version() const { return tls_ ? SSL_get_version(tls_->native_handle()) : ""; }
std::string Stream::tls_cipher() const { return tls_ ? SSL_get_cipher_name(tls_->native_handle()) : ""; }

void Stream::consume(std::size_t n) {
  start_ += n;
  scan_ = scan_ > n ? scan_ - n : 0;
  if (start_ == end_) start_ = end_ = scan_ = 0;
}

// Asio completes an async operation by posting its handler, even when the socket had the bytes or
// the room at once (its "speculative" read or write): every read and write of a session then costs a
// trip through the scheduler, which polls epoll (epoll_wait with a zero timeout) before running it.
// A plaintext stream therefore first tries the socket itself in non-blocking mode and suspends only
// when the kernel says it would block (then it waits for readiness and tries again). TLS streams and
// every kMaxInline-th operation take the asynchronous path.
bool Stream::nonblocking() {
  if (tls_ || !socket_.is_open()) return false;
  if (inline_ >= kMaxInline) {
    inline_ = 0;
    return false;
  }
  if (!socket_.non_blocking()) {
    error_code ec;
    socket_.non_blocking(true, ec);
    if (ec) return false;
  }
  return true;
}

// Moves the unconsumed tail to the front, then grows the buffer if still short of a useful read.
void Stream::make_room(std::size_t max_buffer) {
  if (start_ > 0) {
    std::memmove(buf_.data(), buf_.data() + start_, end_ - start_);
    end_ -= start_;
    start_ = 0;
  }
  if (buf_.size() - end_ < kMinRead / 2) {
    std::size_t want = std::max<std::size_t>(kMinRead, buf_.size() * 2);
    want = std::min(want, std::max(max_buffer, end_ + 1));
    if (want > buf_.size()) buf_.resize(want);
  }
}

asio::awaitable<error_code> Stream::fill(std::size_t max_buffer) {
  if (!nonblocking()) co_return co_await fill_async(max_buffer);
  for (;;) {
    error_code ec;
    std::size_t n = 0;
    if (start_ == end_) {
      // Nothing buffered: read into the thread's scratch and take a buffer only when bytes came,
      // so an idle connection holds none.
      const std::size_t room = std::min(kMinRead, std::max<std::size_t>(max_buffer, 1));
      n = socket_.read_some(asio::buffer(t_scratch, room), ec);
      if (n > 0) {
        start_ = end_ = scan_ = 0;
        if (buf_.size() < room) buf_.resize(room);
        std::memcpy(buf_.data(), t_scratch, n);
        end_ = n;
      }
    } else {
      make_room(max_buffer);
      if (end_ >= buf_.size()) co_return asio::error::no_buffer_space;
      n = socket_.read_some(asio::buffer(buf_.data() + end_, buf_.size() - end_), ec);
      end_ += n;
    }
    if (n > 0) {
      ++inline_;
      co_return error_code{};
    }
    if (!would_block(ec)) co_return ec ? ec : asio::error::eof;
    // Nothing to read yet: an idle connection gives its buffer back while it waits.
    if (start_ == end_) {
      buf_.clear();
      start_ = end_ = scan_ = 0;
    }
    inline_ = 0;
    auto [wec] = co_await socket_.async_wait(tcp::socket::wait_read, use_tuple);
    if (wec) co_return wec;
  }
}

asio::awaitable<error_code> Stream::fill_async(std::size_t max_buffer) {
  // An idle plaintext connection holds no buffer: when nothing is waiting to be read, give the
  // buffer back and wait for readability first.
  if (!tls_ && start_ == end_) {
    error_code aec;
    if (socket_.available(aec) == 0 && !aec) {
      buf_.clear();
      start_ = end_ = scan_ = 0;
      auto [wec] = co_await socket_.async_wait(tcp::socket::wait_read, use_tuple);
      if (wec) co_return wec;
    }
  }
  make_room(max_buffer);
  if (end_ >= buf_.size()) co_return asio::error::no_buffer_space;
  auto space = asio::buffer(buf_.data() + end_, buf_.size() - end_);
  std::size_t n = 0;
  error_code ec;
  if (tls_) std::tie(ec, n) = co_await tls_->async_read_some(space, use_tuple);
  else std::tie(ec, n) = co_await socket_.async_read_some(space, use_tuple);
  end_ += n;
  if (n > 0) co_return error_code{};
  co_return ec ? ec : asio::error::eof;
}

asio::awaitable<error_code> Stream::fill_exact(std::size_t n) {
  if (start_ > 0) {
    std::memmove(buf_.data(), buf_.data() + start_, end_ - start_);
    end_ -= start_;
    start_ = 0;
  }
  if (buf_.size() < end_ + n) buf_.resize(end_ + n);
  auto space = asio::buffer(buf_.data() + end_, n);
  std::size_t got = 0;
  error_code ec;
  if (tls_) std::tie(ec, got) = co_await asio::async_read(*tls_, space, use_tuple);
  else std::tie(ec, got) = co_await asio::async_read(socket_, space, use_tuple);
  end_ += got;
  co_return ec;
}

bool Stream::take_line(std::string_view& line, std::size_t max, bool& too_long) {
  too_long = false;
  for (;;) {
    const char* base = buf_.data() + start_;
    const std::size_t avail = end_ - start_;
    const void* lf = avail > scan_ ? std::memchr(base + scan_, '\n', avail - scan_) : nullptr;
    if (!lf) {
      scan_ = avail;
      if (avail > max) {  // over-long: drop what we have and remember to drop up to the next LF
        discarding_ = true;
        start_ = end_ = scan_ = 0;
      }
      return false;
    }
    std::size_t len = static_cast<std::size_t>(static_cast<const char*>(lf) - base);
    std::size_t total = len + 1;
    if (discarding_) {  // the tail of an over-long line
      discarding_ = false;
      consume(total);
      too_long = true;
      line = {};
      return true;
    }
    if (len > 0 && base[len - 1] == '\r') --len;
    if (total > max) {
      consume(total);
      too_long = true;
      line = {};
      return true;
    }
    line = std::string_view(base, len);
    // consume after the caller is done with the view: the buffer is not touched until the next fill
    start_ += total;
    scan_ = 0;
    return true;
  }
}

asio::awaitable<error_code> Stream::write(std::string_view data) {
  error_code ec;
  std::size_t n = 0;
  if (nonblocking()) {  // see fill()
    n = socket_.write_some(asio::buffer(data), ec);
    if (!ec && n == data.size()) {
      ++inline_;
      co_return error_code{};
    }
    if (ec && !would_block(ec)) co_return ec;
    data.remove_prefix(n);
    inline_ = 0;
    ec = {};
  }
  if (tls_) std::tie(ec, n) = co_await asio::async_write(*tls_, asio::buffer(data), use_tuple);
  else std::tie(ec, n) = co_await asio::async_write(socket_, asio::buffer(data), use_tuple);
  co_return ec;
}

asio::awaitable<error_code> Stream::write(const std::vector<asio::const_buffer>& buffers) {
  error_code ec;
  std::size_t n = 0;
  if (nonblocking()) {  // see fill()
    n = asio::write(socket_, buffers, ec);  // write_some until all is sent or the socket is full
    if (!ec && n == asio::buffer_size(buffers)) {
      ++inline_;
      co_return error_code{};
    }
    if (!would_block(ec)) co_return ec;
    inline_ = 0;
    std::vector<asio::const_buffer> rest;  // what the kernel did not take yet
    for (const auto& b : buffers) {
      if (n >= b.size()) {
        n -= b.size();
        continue;
      }
      rest.push_back(b + n);
      n = 0;
    }
    std::tie(ec, n) = co_await asio::async_write(socket_, rest, use_tuple);
    co_return ec;
  }
  if (tls_) std::tie(ec, n) = co_await asio::async_write(*tls_, buffers, use_tuple);
  else std::tie(ec, n) = co_await asio::async_write(socket_, buffers, use_tuple);
  co_return ec;
}

asio::awaitable<error_code> Stream::handshake_server(asio::ssl::context& ctx) {
  tls_ = std::make_unique<asio::ssl::stream<tcp::socket&>>(socket_, ctx);
  if (end_ > start_) {
    // Bytes read together with a PROXY header (HAProxy sends it and the ClientHello in one packet)
    // are the start of the handshake: hand them to TLS instead of waiting for them on the socket.
    std::vector<char> early(buf_.data() + start_, buf_.data() + end_);
    start_ = end_ = scan_ = 0;
    auto [ec, used] = co_await tls_->async_handshake(asio::ssl::stream_base::server, asio::buffer(early), use_tuple);
    co_return ec;
  }
  auto [ec] = co_await tls_->async_handshake(asio::ssl::stream_base::server, use_tuple);
  co_return ec;
}

asio::awaitable<error_code> Stream::handshake_client(asio::ssl::context& ctx) {
  tls_ = std::make_unique<asio::ssl::stream<tcp::socket&>>(socket_, ctx);
  auto [ec] = co_await tls_->async_handshake(asio::ssl::stream_base::client, use_tuple);
  co_return ec;
}

void Stream::cancel() {
  error_code ec;
  socket_.cancel(ec);
}

void Stream::close() {
  error_code ec;
  socket_.shutdown(tcp::socket::shutdown_both, ec);
  socket_.close(ec);
}

}  // namespace gw::net
