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

asio::awaitable<error_code> Stream::fill(std::size_t max_buffer) {
  // An idle plaintext connection holds no buffer: when nothing is waiting to be read, give the
  // buffer back and wait for readability first. (A flooding client always has bytes waiting, so it
  // keeps its buffer and costs no allocation per read.)
  if (!tls_ && start_ == end_) {
    error_code aec;
    if (socket_.available(aec) == 0 && !aec) {
      buf_.clear();
      start_ = end_ = scan_ = 0;
      auto [wec] = co_await socket_.async_wait(tcp::socket::wait_read, use_tuple);
      if (wec) co_return wec;
    }
  }
  // Make room: move the unconsumed tail to the front, then grow if still short of a useful read.
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
  if (tls_) std::tie(ec, n) = co_await asio::async_write(*tls_, asio::buffer(data), use_tuple);
  else std::tie(ec, n) = co_await asio::async_write(socket_, asio::buffer(data), use_tuple);
  co_return ec;
}

asio::awaitable<error_code> Stream::write(const std::vector<asio::const_buffer>& buffers) {
  error_code ec;
  std::size_t n = 0;
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
