// A TCP connection that may be upgraded to TLS in place (STARTTLS), with a small input buffer that
// grows only as far as a caller allows. Used by both sides: the client session and the upstream client.
// Errors come back as error_code (never exceptions), so every failure is a reply decision.
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>

namespace gw::net {

// A byte buffer that, unlike std::vector<char>, does not zero what it allocates: the input buffer
// is filled by the socket anyway, and zeroing it was a visible cost per connection.
class RawBuffer {
 public:
  char* data() { return p_.get(); }
  const char* data() const { return p_.get(); }
  std::size_t size() const { return n_; }
  bool empty() const { return n_ == 0; }
  void clear() {
    p_.reset();
    n_ = 0;
  }
  void resize(std::size_t n);  // keeps the first min(size(), n) bytes

 private:
  std::unique_ptr<char[]> p_;
  std::size_t n_ = 0;
};

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

class Stream {
 public:
  explicit Stream(tcp::socket socket);
  ~Stream();

  tcp::socket& socket() { return socket_; }
  bool is_tls() const { return tls_ != nullptr; }
  std::string tls_version() const;
  std::string tls_cipher() const;

  // Reads more bytes into the input buffer (at most `max_buffer` buffered in all).
  // Returns the error; eof is asio::error::eof.
  asio::awaitable<error_code> fill(std::size_t max_buffer);
  // Reads exactly n more bytes into the buffer (never more: what follows is not ours to take).
  asio::awaitable<error_code> fill_exact(std::size_t n);
  // Buffered, unconsumed input.
  std::string_view pending() const { return {buf_.data() + start_, end_ - start_}; }
  void consume(std::size_t n);
  void discard_pending() { start_ = end_ = 0; }
  // Takes one line ending in LF out of the buffer, without its CRLF (or LF), when a whole one is
  // there; `too_long` is set for a line longer than max (which is then consumed up to its end).
  bool take_line(std::string_view& line, std::size_t max, bool& too_long);

  asio::awaitable<error_code> write(std::string_view data);
  asio::awaitable<error_code> write(const std::vector<asio::const_buffer>& buffers);

  // TLS in place. Callers discard plaintext pipelined after STARTTLS before calling; what is still
  // buffered (bytes read along with a PROXY header on an implicit-TLS listener) feeds the handshake.
  asio::awaitable<error_code> handshake_server(asio::ssl::context& ctx);
  asio::awaitable<error_code> handshake_client(asio::ssl::context& ctx);

  void cancel();
  void close();

 private:
  // Plaintext reads and writes first try the socket directly (non-blocking) and suspend only when it
  // would block: no posted completion, no scheduler round trip (stream.cpp says why and how often).
  bool nonblocking();
  asio::awaitable<error_code> fill_async(std::size_t max_buffer);
  void make_room(std::size_t max_buffer);

  tcp::socket socket_;
  std::unique_ptr<asio::ssl::stream<tcp::socket&>> tls_;
  unsigned inline_ = 0;  // consecutive operations completed without suspending
  RawBuffer buf_;
  std::size_t start_ = 0;
  std::size_t end_ = 0;
  std::size_t scan_ = 0;  // bytes from start_ already known to hold no LF
  bool discarding_ = false;  // inside an over-long line
};

}  // namespace gw::net
