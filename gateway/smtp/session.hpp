// One client connection, as one coroutine that reads like RFC 5321 §4.1.4: greeting, then commands
// until QUIT. "What happens at RCPT" is Session::on_rcpt, and so on for every command.
//
// Replies are queued and written when the client's input runs dry, so a pipelined group (RFC 2920)
// costs one write. Every path ends in a reply: our own limits and syntax, a plugin's verdict, or the
// upstream's reply (see UpstreamClient). Nothing answers 250 to a message but the upstream's 250.
#pragma once
#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "gateway/core/pipeline.hpp"
#include "gateway/net/deadline.hpp"
#include "gateway/net/reply.hpp"
#include "gateway/net/stream.hpp"
#include "gateway/smtp/outcome.hpp"
#include "gateway/smtp/parser.hpp"
#include "gateway/smtp/server_state.hpp"
#include "gateway/upstream/upstream_client.hpp"

namespace gw::smtp {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(boost::asio::ip::tcp::socket socket, const config::ListenerConfig& listener, ServerState& server);
  ~Session();
  boost::asio::awaitable<void> run();
  // Asks the session to end after its current transaction (SIGTERM); callable from any thread.
  void request_drain();

 private:
  enum class Phase { fresh, greeted, mail, closing };

  boost::asio::awaitable<void> refuse_over_limit();  // max_connections reached: 421 and close
  boost::asio::awaitable<void> finish();             // the end of every accepted session
  boost::asio::awaitable<bool> start();          // PROXY header, implicit TLS, connect stage, banner
  boost::asio::awaitable<bool> read_command(std::string& line, bool& too_long);
  void read_failed(const boost::system::error_code& ec);  // timeout, drain or a lost client
  void shutting_down();
  boost::asio::awaitable<void> dispatch(const Command& cmd);
  boost::asio::awaitable<void> on_helo(const Command& cmd, bool extended);
  boost::asio::awaitable<void> on_mail(const Command& cmd);
  boost::asio::awaitable<void> on_rcpt(const Command& cmd);
  boost::asio::awaitable<void> on_data();
  boost::asio::awaitable<void> on_rset();
  boost::asio::awaitable<void> on_starttls();
  boost::asio::awaitable<void> on_auth(const Command& cmd);
  boost::asio::awaitable<bool> flush();
  void ensure_upstream();
  void open_upstream_early();
  // Ends the transaction: RSET upstream unless delivered, the transaction's log line and metrics, the
  // plugins' reset notifications, a clean tx_. With `reply_first`, the client's reply (already queued)
  // is written right after the log line and metrics, before the rest: that bookkeeping then overlaps
  // the client's next command instead of delaying its reply.
  boost::asio::awaitable<void> end_transaction(Outcome outcome, const std::string& upstream_reply, bool reply_first = false);

  void reply(int code, std::string_view enhanced, std::string_view text);
  void reply(const net::Reply& r, std::string_view default_enhanced);
  void reply_verdict(const Verdict& v, Stage stage);
  void error_reply(int code, std::string_view enhanced, std::string_view text);  // counts toward the error limit
  void close_with(int code, std::string_view enhanced, std::string_view text);

  std::shared_ptr<const Runtime> rt_;
  const config::Config& cfg_;
  const config::ListenerConfig listener_;
  ServerState& server_;
  net::Stream stream_;
  net::Deadline deadline_;
  std::unique_ptr<upstream::UpstreamClient> upstream_;
  Transaction tx_;
  Phase phase_ = Phase::fresh;
  std::string out_;
  unsigned errors_ = 0;
  unsigned rcpt_attempts_ = 0;
  bool connect_rejected_ = false;  // on_connect said reject: 503 to everything but QUIT
  bool drain_requested_ = false;
  bool idle_ = false;              // waiting for a command outside a transaction
  bool counted_ = false;
};

}  // namespace gw::smtp
