#include "plugins/rspamd/http_client.hpp"

#include <memory>
#include <stdexcept>
#include <unordered_map>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_range.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

namespace gw::plugins::rspamd {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using clock = HttpClient::clock;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr size_t kMaxIdle = 32;                          // per endpoint and thread
constexpr auto kMaxIdleAge = std::chrono::seconds(50);  // older idle connections are not trusted
constexpr std::uint64_t kMaxBody = 16u << 20;           // an answer larger than this is a bad answer

struct Conn {
  explicit Conn(const asio::any_io_executor& ex) : stream(ex) {}
  beast::tcp_stream stream;
  beast::flat_buffer buf;
  clock::time_point idle_since{};
};

using ConnPtr = std::unique_ptr<Conn>;

// Each event-loop thread runs its own io_context, so its connections live in its own pool.
struct Pool {
  std::unordered_map<std::string, std::vector<ConnPtr>> idle;
};
thread_local Pool t_pool;

// A pooled connection is usable when a non-blocking peek finds nothing to read: end of stream (the
// server closed it), an error or bytes nobody asked for all mean it must go.
bool still_open(Conn& c) {
  auto& s = c.stream.socket();
  if (!s.is_open()) return false;
  boost::system::error_code ec;
  s.non_blocking(true, ec);
  if (ec) return false;
  char b;
  s.receive(asio::buffer(&b, 1), tcp::socket::message_peek, ec);
  return ec == asio::error::would_block || ec == asio::error::try_again;
}

ConnPtr take(const std::string& key) {
  auto it = t_pool.idle.find(key);
  if (it == t_pool.idle.end()) return nullptr;
  auto& list = it->second;
  while (!list.empty()) {
    ConnPtr c = std::move(list.back());
    list.pop_back();
    if (clock::now() - c->idle_since < kMaxIdleAge && still_open(*c)) return c;
  }
  return nullptr;
}

void give_back(const std::string& key, ConnPtr c) {
  auto& list = t_pool.idle[key];
  if (list.size() >= kMaxIdle) list.erase(list.begin());  // the oldest goes
  c->idle_since = clock::now();
  c->stream.expires_never();
  list.push_back(std::move(c));
}

struct Connected {
  ConnPtr conn;
  std::string error;
  bool timeout = false;
};

asio::awaitable<Connected> connect(const Url& url, clock::time_point deadline) {
  auto ex = co_await asio::this_coro::executor;
  Connected out;
  std::vector<tcp::endpoint> endpoints;
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(url.host, ec);
  if (!ec) {
    endpoints.emplace_back(addr, url.port);
  } else {
    // asio resolves names on its own background thread; the timer bounds the wait by the deadline.
    auto resolver = std::make_shared<tcp::resolver>(ex);
    auto expired = std::make_shared<bool>(false);
    asio::steady_timer timer(ex);
    timer.expires_at(deadline);
    timer.async_wait([resolver, expired](boost::system::error_code e) {
      if (e) return;
      *expired = true;
      resolver->cancel();
    });
    auto [rec, results] = co_await resolver->async_resolve(url.host, std::to_string(url.port), use_tuple);
    timer.cancel();
    if (rec) {
      out.timeout = *expired;
      out.error = *expired ? "timed out resolving " + url.host : "cannot resolve " + url.host + ": " + rec.message();
      co_return out;
    }
    for (auto& r : results) endpoints.push_back(r.endpoint());
  }
  auto c = std::make_unique<Conn>(ex);
  c->stream.expires_at(deadline);
  auto [cec, ep] = co_await c->stream.async_connect(endpoints, use_tuple);
  if (cec) {
    out.timeout = cec == beast::error::timeout;
    out.error = out.timeout ? "timed out connecting" : "cannot connect: " + cec.message();
    co_return out;
  }
  c->stream.socket().set_option(tcp::no_delay(true), ec);
  out.conn = std::move(c);
  co_return out;
}

// The request line and header fields, serialized by Beast, so that header and body leave in one
// gather write.
std::string serialize_head(http::request<http::empty_body>& req) {
  std::string head;
  http::request_serializer<http::empty_body> sr{req};
  sr.split(true);
  beast::error_code ec;
  while (!sr.is_header_done() && !ec) {
    sr.next(ec, [&](beast::error_code&, const auto& buffers) {
      size_t n = 0;
      for (auto b : beast::buffers_range_ref(buffers)) {
        head.append(static_cast<const char*>(b.data()), b.size());
        n += b.size();
      }
      sr.consume(n);
    });
  }
  return head;
}

}  // namespace

Url parse_url(std::string_view text) {
  constexpr std::string_view scheme = "http://";
  if (text.substr(0, scheme.size()) != scheme) throw std::invalid_argument("the url must start with http://");
  std::string_view rest = text.substr(scheme.size());
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
  if (path.find_first_of("?# ") != std::string_view::npos) throw std::invalid_argument("the url may not hold a query");
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  if (authority.find('@') != std::string_view::npos) throw std::invalid_argument("the url may not hold a user");
  Url u;
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) throw std::invalid_argument("unclosed [ in the url");
    u.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') throw std::invalid_argument("bad text after ] in the url");
      port = after.substr(1);
    }
  } else {
    size_t colon = authority.rfind(':');
    u.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (u.host.empty()) throw std::invalid_argument("the url has no host");
  for (char c : u.host)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':' || c == '_'))
      throw std::invalid_argument("bad character in the url's host");
  if (!port.empty() || (authority.size() && authority.back() == ':')) {
    unsigned long p = 0;
    if (port.empty() || port.size() > 5) throw std::invalid_argument("bad port in the url");
    for (char c : port) {
      if (c < '0' || c > '9') throw std::invalid_argument("bad port in the url");
      p = p * 10 + static_cast<unsigned>(c - '0');
    }
    if (p == 0 || p > 65535) throw std::invalid_argument("bad port in the url");
    u.port = static_cast<std::uint16_t>(p);
  }
  u.path = std::string(path);
  u.host_header = std::string(authority);
  return u;
}

size_t idle_connections_of_this_thread() {
  size_t n = 0;
  for (auto& [k, v] : t_pool.idle) n += v.size();
  return n;
}

void drop_idle_connections_of_this_thread() { t_pool.idle.clear(); }

asio::awaitable<HttpResponse> HttpClient::post(std::string_view target,
                                               const std::vector<std::pair<std::string, std::string>>& headers,
                                               const std::vector<asio::const_buffer>& body,
                                               clock::time_point deadline) const {
  HttpResponse res;
  http::request<http::empty_body> req{http::verb::post, beast::string_view(target.data(), target.size()), 11};
  req.set(http::field::host, url_.host_header);
  for (auto& [name, value] : headers) req.insert(name, value);
  req.set(http::field::content_length, std::to_string(asio::buffer_size(body)));
  const std::string head = serialize_head(req);
  std::vector<asio::const_buffer> out;
  out.reserve(body.size() + 1);
  out.emplace_back(head.data(), head.size());
  out.insert(out.end(), body.begin(), body.end());

  for (int attempt = 0; attempt < 2; ++attempt) {
    ConnPtr c = attempt == 0 ? take(key_) : nullptr;
    const bool reused = c != nullptr;
    if (!c) {
      auto got = co_await connect(url_, deadline);
      if (!got.conn) {
        res.error = std::move(got.error);
        res.timeout = got.timeout;
        co_return res;
      }
      ++res.connects;
      c = std::move(got.conn);
    }
    c->stream.expires_at(deadline);
    c->buf.clear();
    auto [wec, wn] = co_await asio::async_write(c->stream, out, use_tuple);
    http::response_parser<http::string_body> parser;
    parser.body_limit(kMaxBody);
    boost::system::error_code rec = wec;
    if (!wec) {
      auto [ec, n] = co_await http::async_read(c->stream, c->buf, parser, use_tuple);
      rec = ec;
    }
    if (rec) {
      const bool timeout = rec == beast::error::timeout;
      // A kept-alive connection the server closed just as we sent: nothing came back, try a fresh one.
      if (reused && !timeout && !parser.got_some() && clock::now() < deadline) continue;
      res.timeout = timeout;
      res.error = timeout ? std::string("timed out waiting for the answer")
                          : (wec ? "cannot send the request: " : "cannot read the answer: ") + rec.message();
      co_return res;
    }
    res.ok = true;
    res.reused = reused;
    res.status = parser.get().result_int();
    const bool keep = parser.get().keep_alive() && parser.is_done() && c->buf.size() == 0;
    res.body = std::move(parser.get().body());
    if (keep) give_back(key_, std::move(c));
    co_return res;
  }
  res.error = "no connection";
  co_return res;
}

}  // namespace gw::plugins::rspamd
