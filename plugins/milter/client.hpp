// One connection to one milter (unix or inet socket) on Boost.Asio: connect and option negotiation
// under connect_timeout, then commands whose every reply is awaited under command_timeout (a
// SMFIR_PROGRESS restarts it). Any error (I/O, timeout, a packet the codec refuses) closes the
// connection and is reported as text; the caller applies on_error.
#pragma once
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/generic/stream_protocol.hpp>

#include "plugins/milter/codec.hpp"

namespace gw::milter {

struct Address {
  bool unix_socket = false;
  std::string path;  // unix
  std::string host;  // inet
  std::uint16_t port = 0;
  // "unix:/path", "local:/path", "inet:host:port", "inet:[v6]:port", "inet6:..."; nullopt when malformed.
  static std::optional<Address> parse(std::string_view text);
};

struct Result {
  bool ok = false;
  std::string error;           // when !ok
  Packet reply;                // the final reply (continue, accept, reject, ...)
  std::vector<Packet> edits;   // end of message only: modifications in the order sent
};

// The longest wait for one reply, in command timeouts, however often the milter says progress.
constexpr int kProgressFactor = 10;

class Client {
 public:
  using Duration = std::chrono::milliseconds;
  Client(boost::asio::any_io_executor ex, Duration command_timeout);
  ~Client();

  // Connects and negotiates; afterwards actions()/protocol() are what both sides agreed on.
  boost::asio::awaitable<Result> open(const Address& address, Duration connect_timeout);
  // Writes `out` (any number of packets); when `want_reply`, reads until a final reply.
  // `eom`: modification packets may come before the final reply and are collected.
  boost::asio::awaitable<Result> exchange(std::string out, bool want_reply, bool eom = false,
                                          std::size_t edit_limit = 0);
  // The body in packets of at most kMaxChunk octets written straight from `body` (no copy). Stops
  // at the first reply other than continue (skip included, which ends the body early).
  boost::asio::awaitable<Result> body(std::string_view body, bool want_replies);
  // Fire and forget (ABORT, QUIT): errors only close the connection.
  boost::asio::awaitable<void> send(std::string out);

  bool is_open() const;
  // Whether the milter has closed an idle connection (restarted, idle timeout) or sent something
  // unasked: checked without waiting before a transaction starts.
  bool idle_broken();
  void close();
  std::uint32_t actions() const { return actions_; }
  std::uint32_t protocol() const { return protocol_; }
  const std::vector<std::pair<std::uint32_t, std::vector<std::string>>>& symlists() const { return symlists_; }

 private:
  boost::asio::awaitable<bool> write(const std::vector<boost::asio::const_buffer>& bufs, std::string& error);
  boost::asio::awaitable<bool> read_packet(Packet& out, std::string& error);
  boost::asio::awaitable<Result> read_final(bool eom, std::size_t edit_limit);

  boost::asio::generic::stream_protocol::socket socket_;
  Duration command_timeout_;
  Decoder decoder_;
  std::vector<char> rbuf_;
  std::uint32_t actions_ = 0;
  std::uint32_t protocol_ = 0;
  std::vector<std::pair<std::uint32_t, std::vector<std::string>>> symlists_;
};

}  // namespace gw::milter
