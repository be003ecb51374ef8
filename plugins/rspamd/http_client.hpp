// A small HTTP/1.1 client for rspamd (Boost.Beast on Asio coroutines) with keep-alive connections
// kept per event-loop thread.
//
// Guarantees:
// - One deadline covers the whole exchange: name resolution, connect, sending the request and reading
//   the whole response. When it passes, the connection is closed and post() returns an error.
// - The body is written from the caller's buffers with one gather write: the message is not copied.
// - Connections that end a response with keep-alive go back to a pool owned by the calling thread
//   (each thread runs its own io_context, so the pool needs no lock). A pooled connection the server
//   has closed meanwhile is noticed before use and dropped; a request that fails on a reused
//   connection before any byte of the answer came back is sent once more on a fresh connection.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>

namespace gw::plugins::rspamd {

struct Url {
  std::string host;         // name or address (brackets removed from an IPv6 literal)
  std::uint16_t port = 11333;
  std::string path;         // without a trailing slash, "" for the root
  std::string host_header;  // "host:port" as given
};

// "http://HOST[:PORT][/PATH]"; throws std::invalid_argument with the reason.
Url parse_url(std::string_view text);

struct HttpResponse {
  bool ok = false;        // a whole response was read
  std::string error;      // why not
  bool timeout = false;
  unsigned status = 0;
  std::string body;
  bool reused = false;    // answered on a pooled connection
  unsigned connects = 0;  // connections opened for it (0, 1 or 2)
};

class HttpClient {
 public:
  using clock = std::chrono::steady_clock;
  explicit HttpClient(Url url) : url_(std::move(url)), key_(url_.host + "|" + std::to_string(url_.port)) {}

  // POST `target` with `headers` (names may repeat) and the concatenation of `body` as the body.
  boost::asio::awaitable<HttpResponse> post(std::string_view target,
                                            const std::vector<std::pair<std::string, std::string>>& headers,
                                            const std::vector<boost::asio::const_buffer>& body, clock::time_point deadline) const;

  const Url& url() const { return url_; }

 private:
  Url url_;
  std::string key_;  // pool key
};

// Idle pooled connections of the calling thread (all endpoints); for tests and metrics.
size_t idle_connections_of_this_thread();
// Closes them. A pooled socket belongs to the thread's io_context: whoever destroys an io_context
// before the thread ends (tests do) calls this first.
void drop_idle_connections_of_this_thread();

}  // namespace gw::plugins::rspamd
