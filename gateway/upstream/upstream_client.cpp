#include "gateway/upstream/upstream_client.hpp"

#include <map>
#include <mutex>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "gateway/upstream/pool.hpp"
#include "gateway/net/deadline.hpp"
#include "gateway/net/stream.hpp"
#include "gateway/observe/log.hpp"
#include "gateway/observe/metrics.hpp"

namespace gw::upstream {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

namespace {
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kMaxReplyLine = 4096;
constexpr std::size_t kMaxReplyLines = 128;

// When each upstream last failed: a failed server is skipped by later transactions for at most 1 s.
class FailureMemory {
 public:
  static FailureMemory& get() {
    static FailureMemory m;
    return m;
  }
  bool recently_failed(const std::string& key) {
    std::lock_guard lock(mu_);
    auto it = failed_.find(key);
    return it != failed_.end() && std::chrono::steady_clock::now() - it->second < 1s;
  }
  void failed(const std::string& key) {
    std::lock_guard lock(mu_);
    failed_[key] = std::chrono::steady_clock::now();
  }
  void succeeded(const std::string& key) {
    std::lock_guard lock(mu_);
    failed_.erase(key);
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::chrono::steady_clock::time_point> failed_;
};

std::string xtext(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c < '!' || c > '~' || c == '+' || c == '=') {
      char b[4];
      std::snprintf(b, sizeof b, "+%02X", c);
      out += b;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

// Appends `text` to `out` as buffers, inserting a "." before every line that starts with one
// (RFC 5321 §4.5.2). `text` starts at a line start. No byte of the text is copied.
void append_stuffed(std::string_view text, std::vector<asio::const_buffer>& out) {
  static const char dot = '.';
  size_t seg = 0;
  if (!text.empty() && text[0] == '.') out.emplace_back(&dot, 1);
  size_t pos = 0;
  while ((pos = text.find("\n.", pos)) != std::string_view::npos) {
    out.emplace_back(text.data() + seg, pos + 1 - seg);
    out.emplace_back(&dot, 1);
    seg = pos + 1;
    pos += 2;
  }
  if (seg < text.size()) out.emplace_back(text.data() + seg, text.size() - seg);
}

}  // namespace

bool server_still_preferred(const config::Config& cfg, const std::string& server) {
  auto& memory = FailureMemory::get();
  for (auto& ep : cfg.upstream.servers) {
    const std::string key = ep.to_string();
    if (key == server) return true;
    if (!memory.recently_failed(key)) return false;
  }
  return false;  // no longer one of upstream.servers
}

UpstreamClient::UpstreamClient(asio::any_io_executor ex, const config::Config& cfg, asio::ssl::context* tls_ctx)
    : ex_(ex), cfg_(cfg), tls_ctx_(tls_ctx) {}

UpstreamClient::~UpstreamClient() { drop(); }

void UpstreamClient::drop() {
  if (deadline_) deadline_->stop();
  if (stream_) stream_->close();
  stream_.reset();
  deadline_.reset();
  in_transaction_ = false;
  mail_pending_ = false;
}

Reply UpstreamClient::failure(std::string_view what) {
  log::warn("upstream_failure", {{"server", server_}, {"reason", what}});
  drop();
  return Reply::make(451, "4.4.2", "Upstream " + std::string(what) + ", try again later");
}

Task<bool> UpstreamClient::connect_one(const config::Endpoint& ep) {
  drop();
  server_ = ep.to_string();
  // An IP literal (the usual case) needs no resolver: asio's resolver would hop to its own thread.
  std::vector<tcp::endpoint> endpoints;
  boost::system::error_code aec;
  auto literal = asio::ip::make_address(ep.host, aec);
  if (!aec) {
    endpoints.emplace_back(literal, ep.port);
  } else {
    tcp::resolver resolver(ex_);
    auto [rec, results] = co_await resolver.async_resolve(ep.host, std::to_string(ep.port), use_tuple);
    if (rec) co_return false;
    for (auto& r : results) endpoints.push_back(r.endpoint());
  }
  tcp::socket socket(ex_);
  asio::steady_timer timer(ex_);
  timer.expires_after(cfg_.upstream.connect_timeout);
  bool timed_out = false;
  timer.async_wait([&](boost::system::error_code ec) {
    if (!ec) {
      timed_out = true;
      boost::system::error_code ignored;
      socket.cancel(ignored);
    }
  });
  auto [cec, endpoint] = co_await asio::async_connect(socket, endpoints, use_tuple);
  timer.cancel();
  if (cec || timed_out) co_return false;
  socket.set_option(tcp::no_delay(true));
  stream_ = std::make_unique<net::Stream>(std::move(socket));
  deadline_ = std::make_unique<net::Deadline>(ex_);
  auto* s = stream_.get();
  deadline_->start([s] { s->cancel(); });
  co_return true;
}

Task<Reply> UpstreamClient::read_reply(std::chrono::milliseconds timeout) {
  deadline_->expires_after(timeout);
  Reply r;
  std::string_view line;
  bool too_long = false;
  for (;;) {
    if (stream_->take_line(line, kMaxReplyLine, too_long)) {
      if (too_long) co_return failure("sent an over-long reply line");
      int code = 0;
      bool last = false;
      std::string_view text;
      if (!net::parse_reply_line(line, code, last, text)) co_return failure("sent a malformed reply");
      if (r.code != 0 && code != r.code) co_return failure("sent a malformed multi-line reply");
      r.code = code;
      std::string enh;
      std::string_view rest = text;
      if (net::split_enhanced(text, code / 100, enh, rest)) {
        if (r.enhanced.empty()) r.enhanced = enh;
        r.lines.emplace_back(rest);
      } else {
        r.lines.emplace_back(text);
      }
      if (r.lines.size() > kMaxReplyLines) co_return failure("sent too long a reply");
      if (last) break;
      continue;
    }
    auto ec = co_await stream_->fill(64 * 1024);
    if (ec) {
      if (deadline_->expired()) co_return failure("timed out");
      co_return failure("closed the connection");
    }
  }
  deadline_->never();
  co_return r;
}

Task<Reply> UpstreamClient::command(std::string_view line, std::chrono::milliseconds timeout) {
  std::string out;
  out.reserve(line.size() + 2);
  out.append(line).append("\r\n");
  deadline_->expires_after(timeout);
  auto ec = co_await stream_->write(out);
  if (ec) co_return failure(deadline_->expired() ? "timed out" : "closed the connection");
  co_return co_await read_reply(timeout);
}

Task<Reply> UpstreamClient::ehlo(const std::string& name) {
  caps_ = Capabilities{};
  Reply r = co_await command("EHLO " + name, cfg_.upstream.command_timeout);
  if (!stream_) co_return r;
  if (r.code != 250) {
    if (!r.permanent()) co_return r;
    r = co_await command("HELO " + name, cfg_.upstream.command_timeout);
    co_return r;
  }
  for (size_t i = 1; i < r.lines.size(); ++i) {
    std::string kw;
    for (char c : r.lines[i]) {
      if (c == ' ') break;
      kw += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    if (kw == "PIPELINING") caps_.pipelining = true;
    else if (kw == "SIZE") caps_.size = true;
    else if (kw == "8BITMIME") caps_.eightbitmime = true;
    else if (kw == "SMTPUTF8") caps_.smtputf8 = true;
    else if (kw == "STARTTLS") caps_.starttls = true;
    else if (kw == "XCLIENT") caps_.xclient = true;
    else if (kw == "ENHANCEDSTATUSCODES") caps_.enhanced = true;
  }
  co_return r;
}

Task<Reply> UpstreamClient::greet_and_ehlo(const Connection& conn, bool with_xclient) {
  Reply greeting = co_await read_reply(cfg_.upstream.command_timeout);
  if (!stream_) co_return greeting;
  if (greeting.code != 220) co_return failure("greeted with " + std::to_string(greeting.code));
  Reply r = co_await ehlo(cfg_.upstream.helo);
  if (!stream_) co_return r;
  if (r.code != 250) co_return failure("refused EHLO/HELO");

  const auto tls_mode = cfg_.upstream.tls;
  if (tls_mode != config::UpstreamTls::none) {
    if (caps_.starttls && tls_ctx_) {
      Reply st = co_await command("STARTTLS", cfg_.upstream.command_timeout);
      if (!stream_) co_return st;
      if (st.code != 220) {
        if (tls_mode == config::UpstreamTls::required) co_return failure("refused STARTTLS");
      } else {
        deadline_->expires_after(cfg_.upstream.command_timeout);
        stream_->discard_pending();
        auto ec = co_await stream_->handshake_client(*tls_ctx_);
        deadline_->never();
        if (ec) co_return failure("TLS handshake failed: " + ec.message());
        r = co_await ehlo(cfg_.upstream.helo);
        if (!stream_) co_return r;
        if (r.code != 250) co_return failure("refused EHLO after STARTTLS");
      }
    } else if (tls_mode == config::UpstreamTls::required) {
      co_return failure("offers no STARTTLS (upstream.tls = \"required\")");
    }
  }

  if (with_xclient && cfg_.upstream.xclient && caps_.xclient) r = co_await xclient(conn);
  co_return r;
}

Task<Reply> UpstreamClient::xclient(const Connection& conn) {
  std::string line = "XCLIENT ADDR=";
  if (conn.client.address.is_v6()) line += "IPV6:";
  line += conn.client.ip;
  line += " PORT=" + std::to_string(conn.client.port);
  line += " NAME=" + (conn.client.rdns ? xtext(*conn.client.rdns)
                                        : std::string(conn.client.rdns_tempfail ? "[TEMPUNAVAIL]" : "[UNAVAILABLE]"));
  line += " HELO=" + xtext(conn.helo.empty() ? "[UNAVAILABLE]" : conn.helo);
  line += std::string(" PROTO=") + (conn.esmtp ? "ESMTP" : "SMTP");
  if (conn.auth_user) line += " LOGIN=" + xtext(*conn.auth_user);
  Reply x = co_await command(line, cfg_.upstream.command_timeout);
  if (!stream_) co_return x;
  if (x.code != 220) co_return failure("refused XCLIENT (" + x.summary() + ")");
  xclient_done_ = true;
  Reply r = co_await ehlo(conn.helo.empty() ? cfg_.upstream.helo : conn.helo);
  if (!stream_) co_return r;
  if (r.code != 250) co_return failure("refused EHLO after XCLIENT");
  co_return r;
}

Task<Reply> UpstreamClient::open(const Connection& conn) {
  if (stream_) co_return Reply::make(250, "2.0.0", "Ok");
  // A checked pooled connection first; the XCLIENT it then carries makes it this client's for good.
  if (auto p = co_await Pool::of(ex_).take_or_wait(cfg_)) {
    adopt(std::move(*p));
    if (!(cfg_.upstream.xclient && caps_.xclient)) co_return Reply::make(250, "2.0.0", "Ok");
    Reply r = co_await xclient(conn);
    if (stream_ && r.code == 250) co_return r;
    drop();
    co_return r.code == 250 ? Reply::make(451, "4.4.2", "Upstream connection lost, try again later") : r;
  }
  co_return co_await open_fresh(conn, true);
}

Task<Reply> UpstreamClient::open_fresh(const Connection& conn, bool with_xclient) {
  const auto& servers = cfg_.upstream.servers;
  auto& memory = FailureMemory::get();
  // First pass skips servers that failed in the last second; when that leaves none, try them all.
  for (int pass = 0; pass < 2; ++pass) {
    bool tried = false;
    for (auto& ep : servers) {
      const std::string key = ep.to_string();
      if (pass == 0 && memory.recently_failed(key)) continue;
      tried = true;
      xclient_done_ = false;
      if (co_await connect_one(ep)) {
        Reply r = co_await greet_and_ehlo(conn, with_xclient);
        if (stream_ && r.code == 250) {
          memory.succeeded(key);
          co_return r;
        }
      } else {
        log::warn("upstream_connect_failed", {{"server", key}});
      }
      drop();
      memory.failed(key);
    }
    if (tried) break;
  }
  co_return Reply::make(451, "4.4.1", "Upstream unavailable, try again later");
}

namespace {

std::string mail_line(const Transaction& tx, const Capabilities& caps) {
  std::string line;
  line.reserve(tx.sender.size() + 48);
  line += "MAIL FROM:<";
  line += tx.sender;
  line += '>';
  if (caps.size && tx.declared_size) line += " SIZE=" + std::to_string(tx.declared_size);
  if (caps.eightbitmime && !tx.body_type.empty()) line += " BODY=" + tx.body_type;
  if (tx.smtputf8) line += " SMTPUTF8";
  return line;
}

}  // namespace

Task<Reply> UpstreamClient::mail(const Transaction& tx) {
  if (auto failed = co_await send_mail(tx)) co_return *failed;
  co_return co_await mail_reply();
}

bool UpstreamClient::take_ready() {
  if (stream_) return true;
  if (cfg_.upstream.xclient) return false;  // XCLIENT (a round trip) goes before MAIL: open() sends it
  auto p = Pool::of(ex_).take(cfg_);
  if (!p) return false;
  adopt(std::move(*p));
  return true;
}

Task<std::optional<Reply>> UpstreamClient::send_mail(const Transaction& tx) {
  if (!stream_) co_return Reply::make(451, "4.4.2", "Upstream connection lost, try again later");
  std::string out = mail_line(tx, caps_);
  out += "\r\n";
  deadline_->expires_after(cfg_.upstream.command_timeout);
  auto ec = co_await stream_->write(out);
  if (ec) co_return failure(deadline_->expired() ? "timed out" : "closed the connection");
  // The reply's own wait starts in mail_reply(): the plugins may take longer than command_timeout.
  deadline_->never();
  mail_pending_ = true;
  co_return std::nullopt;
}

Task<Reply> UpstreamClient::mail_reply() {
  if (!stream_ || !mail_pending_) co_return Reply::make(451, "4.4.2", "Upstream connection lost, try again later");
  Reply r = co_await read_reply(cfg_.upstream.command_timeout);
  mail_pending_ = false;
  if (!stream_) co_return r;
  if (r.code == 250) {
    in_transaction_ = true;
    co_return r;
  }
  if (r.positive()) co_return failure("answered MAIL with " + std::to_string(r.code));
  co_return r;
}

Task<Reply> UpstreamClient::rcpt(const std::string& address) {
  if (!stream_) co_return Reply::make(451, "4.4.2", "Upstream connection lost, try again later");
  Reply r = co_await command("RCPT TO:<" + address + ">", cfg_.upstream.command_timeout);
  if (!stream_) co_return r;
  if (r.code == 250 || r.code == 251 || !r.positive()) co_return r;
  co_return failure("answered RCPT with " + std::to_string(r.code));
}

Task<Reply> UpstreamClient::data(const Transaction& tx, std::string_view top) {
  if (!stream_) co_return Reply::make(451, "4.4.2", "Upstream connection lost, try again later");
  Reply r = co_await command("DATA", cfg_.upstream.command_timeout);
  if (!stream_) co_return r;
  if (r.code != 354) {
    if (r.positive()) co_return failure("answered DATA with " + std::to_string(r.code));
    in_transaction_ = r.temporary() || r.permanent();
    co_return r;
  }
  // Header lines to add, then the message without removed fields, all dot-stuffed, then ".".
  std::vector<asio::const_buffer> out;
  out.reserve(16);
  append_stuffed(top, out);
  const Message& msg = tx.message;
  std::string_view data = msg.data();
  size_t pos = 0;
  for (auto& f : msg.fields()) {
    if (!f.removed) continue;
    if (f.offset > pos) append_stuffed(data.substr(pos, f.offset - pos), out);
    pos = f.offset + f.length;
  }
  if (pos < data.size()) append_stuffed(data.substr(pos), out);
  static const char crlf_dot[] = "\r\n.\r\n";
  bool ends_crlf = (data.empty() && (top.empty() || top.back() == '\n')) || (!data.empty() && data.back() == '\n');
  if (data.empty() && top.empty()) ends_crlf = true;
  if (ends_crlf) out.emplace_back(crlf_dot + 2, 3);
  else out.emplace_back(crlf_dot, 5);

  const auto sent_at = std::chrono::steady_clock::now();
  deadline_->expires_after(cfg_.upstream.data_timeout);
  auto ec = co_await stream_->write(out);
  if (ec) co_return failure(deadline_->expired() ? "timed out while we sent the message" : "closed the connection during the message");
  Reply fin = co_await read_reply(cfg_.upstream.data_timeout);
  observe::CoreMetrics::get().upstream_latency.observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - sent_at).count());
  if (!stream_) co_return fin;
  in_transaction_ = false;
  if (fin.code != 250 && fin.positive()) co_return failure("answered the message with " + std::to_string(fin.code));
  co_await release();  // the transaction is over either way (RFC 5321 §4.1.1.4)
  co_return fin;
}

Task<void> UpstreamClient::rset() {
  if (!stream_) co_return;
  if (mail_pending_) (void)co_await mail_reply();  // then RSET when the upstream took the MAIL
  if (in_transaction_) {
    Reply r = co_await command("RSET", cfg_.upstream.command_timeout);
    if (stream_ && r.code != 250) drop();
    in_transaction_ = false;
  }
  co_await release();
}

Task<void> UpstreamClient::quit() {
  if (!stream_) co_return;
  if (in_transaction_) co_await rset();  // the session left mid-transaction: RSET, then pool or QUIT
  co_await release();
}

// Outside a transaction the connection is not the session's to keep: back to the pool when clean,
// else (XCLIENT carried, no pool, pool full) closed with QUIT.
Task<void> UpstreamClient::release() {
  if (!stream_) co_return;
  if (auto p = detach()) {
    Pool::of(ex_).put(std::move(*p), cfg_);
    co_return;
  }
  deadline_->expires_after(std::chrono::seconds(5));
  co_await stream_->write(std::string_view("QUIT\r\n"));
  drop();
  xclient_done_ = false;
}

std::optional<Pooled> UpstreamClient::detach() {
  if (!stream_ || in_transaction_ || mail_pending_ || xclient_done_ || cfg_.upstream.pool_size == 0) return std::nullopt;
  deadline_->never();
  Pooled p;
  p.stream = std::move(stream_);
  p.deadline = std::move(deadline_);
  p.server = server_;
  p.caps = caps_;
  p.key = Pool::key_of(cfg_);
  p.since = std::chrono::steady_clock::now();
  p.idle_timeout = cfg_.upstream.pool_idle_timeout;
  return p;
}

void UpstreamClient::adopt(Pooled&& p) {
  drop();
  stream_ = std::move(p.stream);
  deadline_ = std::move(p.deadline);
  server_ = std::move(p.server);
  caps_ = p.caps;
  in_transaction_ = false;
  xclient_done_ = false;
}

}  // namespace gw::upstream
