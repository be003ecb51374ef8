// The SMTP client side of one client session's transactions: at MAIL it takes a ready connection from
// the pool (gateway/upstream/pool.hpp) or opens one; when the transaction ends the connection goes back
// to the pool (or is closed), so a session between transactions holds no upstream connection.
//
// Guarantees: every method returns a Reply for the client. A reply the upstream really sent is passed
// through; anything else (no server reachable, timeout, connection lost, a reply that does not fit the
// stage, garbage) becomes a 4xx of our own and the connection is dropped, so a success the client sees
// is always the upstream's own success for that command.
#pragma once
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>

#include "gateway/config/config.hpp"
#include "gateway/core/transaction.hpp"
#include "gateway/net/reply.hpp"

namespace gw::net { class Stream; class Deadline; }

namespace gw::upstream {

struct Pooled;

using net::Reply;
template <typename T>
using Task = boost::asio::awaitable<T>;

struct Capabilities {
  bool pipelining = false;
  bool size = false;
  bool eightbitmime = false;
  bool smtputf8 = false;
  bool starttls = false;
  bool xclient = false;
  bool enhanced = false;
};

// Whether a connection to `server` may still be used: true for the first of upstream.servers, and for
// a later one only while every server before it failed within the last second (the failover rule
// holds for pooled connections too: a recovered first server is used again).
bool server_still_preferred(const config::Config& cfg, const std::string& server);

class UpstreamClient {
 public:
  // `tls_ctx` is used for STARTTLS towards the upstream (upstream.tls); may be null when "none".
  UpstreamClient(boost::asio::any_io_executor ex, const config::Config& cfg, boost::asio::ssl::context* tls_ctx);
  ~UpstreamClient();

  bool connected() const { return stream_ != nullptr; }
  const std::string& server() const { return server_; }
  const Capabilities& caps() const { return caps_; }

  // Connects to upstream.servers in order (skipping for up to 1 s one that just failed), reads the
  // greeting and says EHLO (STARTTLS and XCLIENT as configured). 250 on success, else a 4xx.
  // A pooled connection is used first (XCLIENT then sent when configured and offered).
  Task<Reply> open(const Connection& conn);
  // Connects without looking at the pool; XCLIENT only when `with_xclient`.
  Task<Reply> open_fresh(const Connection& conn, bool with_xclient);
  // Hands the connection over (for the pool) when it is open, outside a transaction and never
  // carried XCLIENT; else leaves it alone and returns nothing.
  std::optional<Pooled> detach();
  Task<Reply> mail(const Transaction& tx);
  // MAIL in two halves, so that the plugins of the MAIL stage run while the upstream answers
  // (Session::on_mail): take_ready() holds a connection usable at once (the one held, or a ready
  // pooled one when no XCLIENT has to go first; false: open() does the rest), send_mail() writes the
  // command (a reply when that failed: the connection is then dropped), mail_reply() reads its reply.
  bool take_ready();
  Task<std::optional<Reply>> send_mail(const Transaction& tx);
  Task<Reply> mail_reply();
  Task<Reply> rcpt(const std::string& address);
  // DATA, then `top` (pre-formatted header lines) and the message, dot-stuffed, then the final reply.
  Task<Reply> data(const Transaction& tx, std::string_view top);
  // RSET when a transaction is open; then the connection goes back to the pool (or is closed).
  Task<void> rset();
  // Back to the pool when clean, else QUIT.
  Task<void> quit();

 private:
  Task<bool> connect_one(const config::Endpoint& ep);
  Task<Reply> command(std::string_view line, std::chrono::milliseconds timeout);
  Task<Reply> read_reply(std::chrono::milliseconds timeout);
  Task<Reply> ehlo(const std::string& name);
  Task<Reply> greet_and_ehlo(const Connection& conn, bool with_xclient);
  Task<Reply> xclient(const Connection& conn);
  Task<void> release();
  void adopt(Pooled&& p);
  void drop();
  Reply failure(std::string_view what);

  boost::asio::any_io_executor ex_;
  const config::Config& cfg_;
  boost::asio::ssl::context* tls_ctx_;
  std::unique_ptr<net::Stream> stream_;
  std::unique_ptr<net::Deadline> deadline_;
  std::string server_;
  Capabilities caps_;
  bool in_transaction_ = false;
  bool mail_pending_ = false;  // MAIL sent, its reply not read yet: never pooled in that state
  bool xclient_done_ = false;

 public:
  bool xclient_done() const { return xclient_done_; }
};

}  // namespace gw::upstream
