#include "gateway/smtp/session.hpp"

#include <random>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "gateway/observe/log.hpp"
#include "gateway/observe/metrics.hpp"
#include "gateway/core/auth_results.hpp"
#include "gateway/smtp/data_reader.hpp"
#include "gateway/smtp/auth.hpp"
#include "gateway/smtp/edge.hpp"
#include "gateway/smtp/received.hpp"
#include "gateway/smtp/relay_policy.hpp"
#include "gateway/smtp/verdict_reply.hpp"
#include "gateway/upstream/pool.hpp"

namespace gw::smtp {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using net::Reply;

namespace {
constexpr std::size_t kMaxCommandLine = 1000;   // octets with CRLF (RFC 5321 §4.5.3.1.4; longer -> 500 5.5.2)
constexpr std::size_t kMaxCommandBuffer = 64 * 1024;
constexpr std::size_t kMaxDataBuffer = 256 * 1024;
constexpr unsigned kMaxErrors = 20;

std::string random_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* hex = "0123456789ABCDEF";
  std::uint64_t v = rng();
  std::string s(12, '0');
  for (auto& c : s) {
    c = hex[v & 15];
    v >>= 4;
  }
  return s;
}

}  // namespace

Session::Session(tcp::socket socket, const config::ListenerConfig& listener, ServerState& server)
    : rt_(server.runtime()),
      cfg_(*rt_->config),
      listener_(listener),
      server_(server),
      stream_(std::move(socket)),
      deadline_(stream_.socket().get_executor()) {}

Session::~Session() {
  deadline_.stop();
  if (counted_) {
    server_.connections.fetch_sub(1);
    observe::CoreMetrics::get().connections_open.add(-1);
  }
  server_.remove(this);
}

// From the thread that drains (ServerState::drain_all): the flag is set on the session's own thread.
void Session::request_drain() {
  asio::post(stream_.socket().get_executor(), [weak = weak_from_this()] {
    if (auto s = weak.lock()) {
      s->drain_requested_ = true;
      if (s->idle_) s->stream_.cancel();
    }
  });
}

void Session::reply(int code, std::string_view enhanced, std::string_view text) {
  out_ += std::to_string(code);
  out_ += ' ';
  if (!enhanced.empty()) {
    out_ += enhanced;
    out_ += ' ';
  }
  out_ += text;
  out_ += "\r\n";
  observe::CoreMetrics::get().reply(code);
}

void Session::reply(const Reply& r, std::string_view default_enhanced) {
  std::string_view enh = default_enhanced;
  std::string fallback;
  if (r.code / 100 != (default_enhanced.empty() ? 0 : default_enhanced[0] - '0')) {
    fallback = std::to_string(r.code / 100) + ".0.0";
    enh = fallback;
  }
  r.append_to(out_, enh);
  observe::CoreMetrics::get().reply(r.code);
}

void Session::reply_verdict(const Verdict& v, Stage stage) {
  reply(verdict_reply(v, stage, cfg_.server.hostname), "");
}

void Session::error_reply(int code, std::string_view enhanced, std::string_view text) {
  reply(code, enhanced, text);
  if (++errors_ >= kMaxErrors) close_with(421, "4.7.0", cfg_.server.hostname + " Error: too many errors");
}

void Session::close_with(int code, std::string_view enhanced, std::string_view text) {
  reply(code, enhanced, text);
  phase_ = Phase::closing;
}

asio::awaitable<bool> Session::flush() {
  if (out_.empty()) co_return true;
  auto ec = co_await stream_.write(out_);
  out_.clear();
  if (out_.capacity() > 4096) std::string().swap(out_);
  co_return !ec;
}

asio::awaitable<bool> Session::read_command(std::string& line, bool& too_long) {
  deadline_.expires_after(cfg_.server.command_timeout);
  for (;;) {
    std::string_view view;
    if (stream_.take_line(view, kMaxCommandLine, too_long)) {
      line.assign(view);
      co_return true;
    }
    if (!co_await flush()) co_return false;
    if (drain_requested_ && tx_.recipients.empty() && phase_ != Phase::mail) {
      shutting_down();
      co_return false;
    }
    idle_ = phase_ != Phase::mail;
    if (idle_) {  // between transactions a session may idle for long: it keeps no reply or line buffer
      std::string().swap(out_);
      std::string().swap(line);
    }
    auto ec = co_await stream_.fill(kMaxCommandBuffer);
    idle_ = false;
    if (ec) {
      read_failed(ec);
      co_return false;
    }
  }
}

// Plain functions, not coroutines: their temporaries stay out of read_command's frame, which lives
// as long as the connection idles.
void Session::shutting_down() {
  close_with(421, "4.3.2", cfg_.server.hostname + " Service shutting down, try again later");
}

void Session::read_failed(const boost::system::error_code& ec) {
  if (deadline_.expired()) {
    log::info("timeout", {{"session", tx_.conn.id}, {"client", tx_.conn.client.ip}, {"phase", "command"}});
    close_with(421, "4.4.2", cfg_.server.hostname + " Error: timeout exceeded");
  } else if (drain_requested_ && ec == asio::error::operation_aborted) {
    shutting_down();
  }
}

asio::awaitable<bool> Session::start() {
  auto& conn = tx_.conn;
  conn.id = random_id();
  conn.role = listener_.role;
  conn.listener = listener_.address.to_string();
  boost::system::error_code ec;
  auto peer = stream_.socket().remote_endpoint(ec);
  if (ec) co_return false;
  stream_.socket().set_option(tcp::no_delay(true), ec);
  conn.client.address = config::unmap(peer.address());
  conn.client.ip = conn.client.address.to_string();
  conn.client.port = peer.port();

  // Extensions (PROXY header, implicit TLS, reverse DNS) may replace the client facts or refuse.
  if (!co_await edge::before_greeting(stream_, deadline_, listener_, cfg_, server_, conn))
    co_return false;

  for (auto& n : cfg_.trusted)
    if (n.contains(conn.client.address)) conn.trusted = true;

  if (log::enabled(log::Level::info))
    log::info("connect", {{"session", conn.id}, {"client", conn.client.ip}, {"port", conn.client.port},
                        {"listener", conn.listener}, {"trusted", conn.trusted}});

  Verdict v;
  if (rt_->pipeline->has(Stage::connect)) v = co_await rt_->pipeline->run(Stage::connect, tx_);
  if (v.refuses()) {
    reply_verdict(v, Stage::connect);
    if (v.kind == Verdict::Kind::tempfail) {  // 421: close
      co_await flush();
      co_return false;
    }
    connect_rejected_ = true;  // 554: 503 to everything but QUIT
    co_return true;
  }
  reply(220, "", cfg_.server.hostname + " ESMTP smtp-gateway");
  co_return true;
}

// run() stays small on purpose: its coroutine frame lives as long as the connection, so what only
// the refusal or the end of a session needs sits in their own frames (idle memory, README "Performance").
asio::awaitable<void> Session::run() {
  auto self = shared_from_this();
  deadline_.start([this] { stream_.cancel(); });
  if (server_.connections.fetch_add(1) >= cfg_.server.max_connections) {
    co_await refuse_over_limit();
    co_return;
  }
  counted_ = true;
  observe::CoreMetrics::get().connections_open.add(1);
  observe::CoreMetrics::get().connections_total.inc();
  server_.add(this);
  if (server_.draining) drain_requested_ = true;

  if (co_await start()) {
    std::string line;
    while (phase_ != Phase::closing) {
      bool too_long = false;
      if (!co_await read_command(line, too_long)) break;
      if (too_long) {
        error_reply(500, "5.5.2", "Line too long");
        continue;
      }
      co_await dispatch(parse_command(line));
    }
  }
  co_await finish();
}

asio::awaitable<void> Session::refuse_over_limit() {
  server_.connections.fetch_sub(1);
  observe::CoreMetrics::get().connections_refused.inc();
  log::warn("connection_refused", {{"reason", "max_connections"}, {"limit", cfg_.server.max_connections}});
  deadline_.expires_after(std::chrono::seconds(10));
  co_await stream_.write(std::string_view("421 4.7.0 Too many connections, try again later\r\n"));
  stream_.close();
}

asio::awaitable<void> Session::finish() {
  // Leaving mid-transaction (QUIT, timeout, lost client): the upstream hears RSET/QUIT, never DATA.
  if (phase_ == Phase::mail || tx_.has_sender) co_await end_transaction(Outcome::aborted, "");
  deadline_.expires_after(std::chrono::seconds(10));
  if (rt_->pipeline->has(Stage::disconnect)) co_await rt_->pipeline->notify(Stage::disconnect, tx_);
  co_await flush();
  ensure_upstream();
  co_await upstream_->quit();
  deadline_.stop();
  stream_.close();
  log::debug("disconnect", {{"session", tx_.conn.id}, {"client", tx_.conn.client.ip}});
}

asio::awaitable<void> Session::dispatch(const Command& cmd) {
  if (connect_rejected_ && cmd.verb != Verb::quit) {
    error_reply(503, "5.5.1", "Bad sequence of commands");
    co_return;
  }
  switch (cmd.verb) {
    case Verb::helo: co_await on_helo(cmd, false); break;
    case Verb::ehlo: co_await on_helo(cmd, true); break;
    case Verb::mail: co_await on_mail(cmd); break;
    case Verb::rcpt: co_await on_rcpt(cmd); break;
    case Verb::data:
      if (!cmd.arg.empty()) error_reply(501, "5.5.4", "Syntax: DATA");
      else co_await on_data();
      break;
    case Verb::rset:
      if (!cmd.arg.empty()) error_reply(501, "5.5.4", "Syntax: RSET");
      else co_await on_rset();
      break;
    case Verb::noop: reply(250, "2.0.0", "Ok"); break;
    case Verb::quit:
      close_with(221, "2.0.0", cfg_.server.hostname + " Bye");
      break;
    case Verb::vrfy:
      if (cmd.arg.empty()) error_reply(501, "5.5.4", "Syntax: VRFY address");
      else reply(252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery");
      break;
    case Verb::expn: error_reply(502, "5.5.1", "EXPN not available"); break;
    case Verb::help: reply(214, "2.0.0", "Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP"); break;
    case Verb::starttls: co_await on_starttls(); break;
    case Verb::auth: co_await on_auth(cmd); break;
    case Verb::bdat: error_reply(502, "5.5.1", "BDAT not available (no CHUNKING)"); break;
    case Verb::unknown: error_reply(500, "5.5.1", "Unknown command"); break;
  }
}

asio::awaitable<void> Session::on_helo(const Command& cmd, bool extended) {
  std::string_view name = cmd.arg;
  while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
  if (!valid_helo(name)) {
    error_reply(501, "5.5.4", extended ? "Syntax: EHLO hostname" : "Syntax: HELO hostname");
    co_return;
  }
  Verdict v;
  if (rt_->pipeline->has(Stage::helo)) v = co_await rt_->pipeline->run(Stage::helo, tx_, name);
  if (v.refuses()) {
    reply_verdict(v, Stage::helo);
    co_return;
  }
  if (phase_ == Phase::mail) co_await end_transaction(Outcome::aborted, "");  // EHLO resets (RFC 5321 §4.1.4)
  // XCLIENT gave the upstream the old HELO name and protocol: the next MAIL reconnects with the new ones.
  if (upstream_ && upstream_->xclient_done() && (tx_.conn.helo != name || tx_.conn.esmtp != extended))
    co_await upstream_->quit();
  tx_.conn.helo = std::string(name);
  tx_.conn.esmtp = extended;
  phase_ = Phase::greeted;
  open_upstream_early();
  if (!extended) {
    reply(250, "", cfg_.server.hostname);
    co_return;
  }
  std::string r = "250-" + cfg_.server.hostname + "\r\n250-PIPELINING\r\n250-SIZE " +
                  std::to_string(cfg_.server.max_message_size) + "\r\n";
  if (listener_.tls == config::ListenerTls::starttls && !tx_.conn.tls) r += "250-STARTTLS\r\n";
  r += auth::advertisement(listener_, cfg_, tx_.conn);
  r += "250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250 SMTPUTF8\r\n";
  out_ += r;
  observe::CoreMetrics::get().reply(250);
}

asio::awaitable<void> Session::on_mail(const Command& cmd) {
  if (phase_ == Phase::fresh) co_return error_reply(503, "5.5.1", "Error: send HELO/EHLO first");
  if (phase_ == Phase::mail) co_return error_reply(503, "5.5.1", "Error: nested MAIL command");
  if (cmd.bad_form) co_return error_reply(501, "5.5.4", "Syntax: MAIL FROM:<address>");
  if (listener_.require_tls && !tx_.conn.tls) co_return error_reply(530, "5.7.0", "Must issue a STARTTLS command first");
  if (listener_.require_auth && !tx_.conn.auth_user) co_return error_reply(530, "5.7.0", "Authentication required");
  auto parsed = parse_path(cmd.arg, true);
  if (!parsed.path) co_return error_reply(501, "5.5.4", "Syntax: MAIL FROM:<address> (" + parsed.error + ")");
  Path& path = *parsed.path;
  tx_.reset();
  MailParams params = parse_mail_params(path.params, cfg_.server.max_message_size, auth::available(listener_, cfg_));
  if (params.error_code) co_return error_reply(params.error_code, params.error_enhanced, params.error_text);
  tx_.declared_size = params.size;
  tx_.body_type = params.body;
  const bool smtputf8 = params.smtputf8;
  if (path.utf8 && !smtputf8) co_return error_reply(553, "5.6.7", "Non-ASCII address requires SMTPUTF8");
  tx_.smtputf8 = smtputf8;
  tx_.sender = path.address;
  tx_.has_sender = true;
  tx_.id = random_id();
  tx_.started = std::chrono::steady_clock::now();
  rcpt_attempts_ = 0;

  // With plugins at MAIL and an upstream connection usable at once, MAIL goes out first and the
  // plugins run while the upstream answers: their time hides behind its round trip. A refusal then
  // RSETs the upstream (end_transaction). Without a ready connection the plugins decide first, so a
  // refused sender never costs a new upstream connection.
  ensure_upstream();
  Verdict v;
  std::optional<Reply> early;
  if (rt_->pipeline->has(Stage::mail)) {
    bool sent = false;
    if (upstream_->take_ready() && !(tx_.smtputf8 && !upstream_->caps().smtputf8)) {
      auto failed = co_await upstream_->send_mail(tx_);
      sent = !failed;
    }
    v = co_await rt_->pipeline->run(Stage::mail, tx_);
    if (sent) early = co_await upstream_->mail_reply();
  }
  if (v.refuses()) {
    reply_verdict(v, Stage::mail);
    co_await end_transaction(outcome_of_refusal(v.kind == Verdict::Kind::reject), "");
    co_return;
  }
  if (!early) {
    if (!upstream_->connected()) {
      Reply r = co_await upstream_->open(tx_.conn);  // a ready pooled connection when there is one
      if (r.code != 250) {
        reply(r, "4.4.1");
        co_await end_transaction(Outcome::tempfailed, r.summary());
        co_return;
      }
    }
    if (tx_.smtputf8 && !upstream_->caps().smtputf8) {
      error_reply(553, "5.6.7", "SMTPUTF8 is not supported by the upstream");
      co_await end_transaction(Outcome::rejected, "");
      co_return;
    }
    early = co_await upstream_->mail(tx_);
  }
  Reply& r = *early;
  reply(r, r.positive() ? "2.1.0" : "");
  if (r.code != 250) {
    co_await end_transaction(outcome_of(r), r.summary());
    co_return;
  }
  phase_ = Phase::mail;
}

void Session::ensure_upstream() {
  if (upstream_) return;
  auto tls = server_.client_tls();
  upstream_ = std::make_unique<upstream::UpstreamClient>(stream_.socket().get_executor(), cfg_, tls.get());
}

// A client's EHLO warms the upstream pool (upstream.connect_at = "ehlo"): the session itself holds no
// upstream connection before MAIL; its MAIL takes a ready one (gateway/upstream/pool.hpp).
void Session::open_upstream_early() {
  if (cfg_.upstream.connect_at_ehlo) upstream::Pool::warm(stream_.socket().get_executor(), rt_->config, server_.client_tls());
}

asio::awaitable<void> Session::on_rcpt(const Command& cmd) {
  if (phase_ != Phase::mail) co_return error_reply(503, "5.5.1", "Error: need MAIL command");
  if (cmd.bad_form) co_return error_reply(501, "5.5.4", "Syntax: RCPT TO:<address>");
  auto parsed = parse_path(cmd.arg, false);
  if (!parsed.path) co_return error_reply(501, "5.5.4", "Syntax: RCPT TO:<address> (" + parsed.error + ")");
  Path& path = *parsed.path;
  ++rcpt_attempts_;
  if (!path.params.empty()) co_return error_reply(555, "5.5.4", "Unsupported parameter " + path.params.front().keyword);
  if (path.utf8 && !tx_.smtputf8) co_return error_reply(553, "5.6.7", "Non-ASCII address requires SMTPUTF8");
  if (tx_.recipients.size() >= cfg_.server.max_recipients) {
    reply(452, "4.5.3", "Error: too many recipients");
    co_return;
  }
  std::string address = path.source_route.empty() ? path.address : path.source_route + ":" + path.address;
  if (!relay_allowed(cfg_.relay_domains, tx_.conn.outbound(), path)) {
    log::info("relay_denied", {{"session", tx_.conn.id}, {"client", tx_.conn.client.ip}, {"rcpt", address}});
    error_reply(554, "5.7.1", "<" + address + ">: Relay access denied");
    co_return;
  }
  Verdict v;
  if (rt_->pipeline->has(Stage::rcpt)) v = co_await rt_->pipeline->run(Stage::rcpt, tx_, address);
  if (v.refuses()) {
    reply_verdict(v, Stage::rcpt);
    co_return;
  }
  Reply r = co_await upstream_->rcpt(address);
  reply(r, r.positive() ? "2.1.5" : "");
  if (r.code == 250 || r.code == 251) tx_.recipients.push_back(std::move(address));
}

asio::awaitable<void> Session::on_data() {
  if (phase_ != Phase::mail) co_return error_reply(503, "5.5.1", "Error: need MAIL command");
  if (tx_.recipients.empty()) {
    if (rcpt_attempts_ > 0) co_return error_reply(554, "5.5.1", "Error: no valid recipients");
    co_return error_reply(503, "5.5.1", "Error: need RCPT command");
  }
  if (!upstream_ || !upstream_->connected()) {
    reply(451, "4.4.2", "Upstream connection lost, try again later");
    co_await end_transaction(Outcome::tempfailed, "");
    co_return;
  }
  reply(354, "", "End data with <CR><LF>.<CR><LF>");
  deadline_.expires_after(cfg_.server.data_timeout);
  std::string& buf = tx_.message.buffer();
  const auto max = cfg_.server.max_message_size;
  if (tx_.declared_size) buf.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(tx_.declared_size + 1024, max)));
  DataReader reader(buf, max);
  for (;;) {
    auto pending = stream_.pending();
    if (!pending.empty()) {
      std::size_t used = reader.feed(pending.data(), pending.size());
      stream_.consume(used);
      if (reader.done()) break;
    }
    if (!co_await flush()) {
      phase_ = Phase::closing;
      co_return;
    }
    auto ec = co_await stream_.fill(kMaxDataBuffer);
    if (ec) {
      if (deadline_.expired()) {
        log::info("timeout", {{"session", tx_.conn.id}, {"client", tx_.conn.client.ip}, {"phase", "data"}});
        close_with(421, "4.4.2", cfg_.server.hostname + " Error: timeout exceeded");
      } else {
        phase_ = Phase::closing;
      }
      co_return;  // the transaction is aborted by run(): the upstream never sees the partial message
    }
  }
  if (reader.normalised())
    log::info("bare_line_ends_normalised", {{"session", tx_.conn.id}, {"count", reader.normalised()}});
  if (reader.too_big()) {
    error_reply(552, "5.3.4", "Error: message too big");
    co_await end_transaction(Outcome::rejected, "");
    co_return;
  }
  if (reader.line_too_long()) {
    error_reply(500, "5.5.2", "Error: message line longer than 998 octets");
    co_await end_transaction(Outcome::rejected, "");
    co_return;
  }

  if (auto n = remove_forged_auth_results(tx_.message, cfg_.server.hostname))
    log::info("forged_auth_results_removed", {{"session", tx_.conn.id}, {"count", n}});
  Verdict v;
  if (rt_->pipeline->has(Stage::data)) v = co_await rt_->pipeline->run(Stage::data, tx_);
  if (v.refuses()) {
    reply_verdict(v, Stage::data);
    co_await end_transaction(outcome_of_refusal(v.kind == Verdict::Kind::reject), "", true);
    co_return;
  }
  std::string top;
  if (!upstream_->xclient_done()) top = "Received: " + received_header(tx_, cfg_.server.hostname) + "\r\n";
  for (auto& h : tx_.final_headers(cfg_.server.hostname)) {
    top += h.name;
    top += ": ";
    top += h.value;
    top += "\r\n";
  }
  deadline_.never();  // the upstream's own timeouts bound the wait from here
  Reply r = co_await upstream_->data(tx_, top);
  reply(r, r.code == 250 ? "2.0.0" : "");
  co_await end_transaction(outcome_of(r), r.summary(), true);
}

asio::awaitable<void> Session::on_rset() {
  if (phase_ == Phase::mail || tx_.has_sender) co_await end_transaction(Outcome::aborted, "");
  reply(250, "2.0.0", "Ok");
}

asio::awaitable<void> Session::on_starttls() {
  if (listener_.tls != config::ListenerTls::starttls || tx_.conn.tls) co_return error_reply(502, "5.5.1", "STARTTLS not available");
  if (phase_ == Phase::mail) co_return error_reply(503, "5.5.1", "Error: STARTTLS inside a transaction");
  auto ctx = server_.server_tls();
  if (!ctx) co_return error_reply(454, "4.7.0", "TLS not available due to temporary reason");
  reply(220, "2.0.0", "Ready to start TLS");
  if (!co_await flush()) {
    phase_ = Phase::closing;
    co_return;
  }
  // Anything the client pipelined after STARTTLS was sent in plaintext: it is dropped, never run
  // after the handshake (CVE-2011-0411).
  stream_.discard_pending();
  auto ec = co_await stream_.handshake_server(*ctx);
  if (ec) {
    log::warn("tls_handshake_failed", {{"session", tx_.conn.id}, {"client", tx_.conn.client.ip}, {"error", ec.message()}});
    observe::CoreMetrics::get().tls_handshake(false).inc();
    phase_ = Phase::closing;
    co_return;
  }
  observe::CoreMetrics::get().tls_handshake(true).inc();
  tx_.conn.tls = true;
  tx_.conn.tls_version = stream_.tls_version();
  tx_.conn.tls_cipher = stream_.tls_cipher();
  tx_.conn.helo.clear();
  phase_ = Phase::fresh;
  tx_.reset();
}

asio::awaitable<void> Session::on_auth(const Command& cmd) {
  if (phase_ == Phase::fresh) co_return error_reply(503, "5.5.1", "Error: send EHLO first");
  if (phase_ == Phase::mail) co_return error_reply(503, "5.5.1", "Error: AUTH not allowed during a transaction");
  // The 334 challenges go straight to the stream: replies queued before (pipelining) go first.
  if (!co_await flush()) {
    phase_ = Phase::closing;
    co_return;
  }
  auth::Outcome r = co_await auth::run(cmd.arg, stream_, deadline_, listener_, cfg_, tx_.conn);
  out_ += r.reply;
  if (!r.ok) ++errors_;
  if (r.close) phase_ = Phase::closing;
  // An upstream connection opened before AUTH carried XCLIENT without LOGIN: the next MAIL opens anew.
  if (r.ok && upstream_ && upstream_->xclient_done()) co_await upstream_->quit();
}

asio::awaitable<void> Session::end_transaction(Outcome outcome, const std::string& upstream_reply, bool reply_first) {
  if (outcome != Outcome::delivered && upstream_) co_await upstream_->rset();
  record_transaction(tx_, outcome, upstream_reply);
  if (reply_first) (void)co_await flush();  // a failed write is seen again at the next read
  if (rt_->pipeline->has(Stage::reset)) co_await rt_->pipeline->notify(Stage::reset, tx_);
  tx_.reset();
  rcpt_attempts_ = 0;
  if (phase_ == Phase::mail) phase_ = Phase::greeted;
}

}  // namespace gw::smtp
