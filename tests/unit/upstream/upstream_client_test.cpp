// UpstreamClient against scripted SMTP servers on loopback (tests/unit/upstream/fake_smtp.hpp): every
// way an upstream can misbehave ends in a 4xx of our own and a dropped connection, and what it really
// said is passed through whole.
#include "gateway/upstream/upstream_client.hpp"

#include <gtest/gtest.h>

#include "tests/unit/upstream/fake_smtp.hpp"

using namespace gw;
using namespace gw::testing;
using namespace std::chrono_literals;

namespace {

config::Config config_for(std::vector<std::string> servers) {
  config::Config cfg;
  for (auto& s : servers) cfg.upstream.servers.push_back(*config::Endpoint::parse(s));
  cfg.upstream.helo = "gw.test";
  cfg.upstream.pool_size = 0;  // every open() connects: the scripts see each connection
  cfg.upstream.connect_timeout = 5s;
  cfg.upstream.command_timeout = 5s;
  cfg.upstream.data_timeout = 5s;
  return cfg;
}

Connection client_conn() {
  Connection c;
  c.id = "unit";
  c.client.address = boost::asio::ip::make_address("192.0.2.1");
  c.client.ip = "192.0.2.1";
  c.client.port = 4242;
  c.helo = "client.example";
  c.esmtp = true;
  return c;
}

Transaction tx_with(std::string sender, std::string message = {}) {
  Transaction tx;
  tx.conn = client_conn();
  tx.sender = std::move(sender);
  tx.has_sender = true;
  tx.message.buffer() = std::move(message);
  return tx;
}

// A port with nothing listening that stays reserved for the test (bound, never listen()ed), so a
// connect to it is refused and no other test can be handed the same port meanwhile.
struct RefusingPort {
  tcp::socket s;
  explicit RefusingPort(asio::io_context& io) : s(io) {
    s.open(tcp::v4());
    s.bind(tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(s.local_endpoint().port()); }
};

void expect_reply(const net::Reply& r, int code, const std::string& enhanced) {
  EXPECT_EQ(r.code, code) << r.summary();
  EXPECT_EQ(r.enhanced, enhanced) << r.summary();
}

// One upstream that greets (EHLO answered) and then runs `script`; a client that opens (asserting
// the 250) and then runs `use`. `tune` adjusts the config first.
void with_upstream(std::function<Task<void>(Peer&)> script, std::function<Task<void>(upstream::UpstreamClient&)> use,
                   std::function<void(config::Config&)> tune = {}, std::vector<std::string>* upstream_lines = nullptr) {
  asio::io_context io;
  FakeSmtp up(io);
  up.serve([&](Peer& p) -> Task<void> {
    co_await p.greet();
    co_await script(p);
  });
  auto cfg = config_for({up.address()});
  if (tune) tune(cfg);
  run(io, [&]() -> Task<void> {
    upstream::UpstreamClient c(io.get_executor(), cfg, nullptr);
    EXPECT_EQ((co_await c.open(client_conn())).code, 250);
    co_await use(c);
  }, [&] { up.stop(); });
  if (upstream_lines) *upstream_lines = up.lines();
}

struct MailAnswer {
  net::Reply reply;
  bool connected = true;
  net::Reply next_rcpt;  // a RCPT tried after the MAIL reply
  std::vector<std::string> upstream_lines;
};

// The upstream answers MAIL with the bytes `answer` (nothing when empty) and hangs up after them
// when `then_close`; `timeout` is upstream.command_timeout.
MailAnswer mail_answered_with(std::string answer, bool then_close = false, std::chrono::milliseconds timeout = 5s) {
  MailAnswer m;
  with_upstream(
      [&](Peer& p) -> Task<void> {
        co_await p.expect("MAIL FROM:");
        if (!answer.empty()) co_await p.send(answer);
        if (then_close) p.close();
      },
      [&](upstream::UpstreamClient& c) -> Task<void> {
        m.reply = co_await c.mail(tx_with("a@example.org"));
        m.connected = c.connected();
        if (!m.connected) m.next_rcpt = co_await c.rcpt("b@example.net");
      },
      [&](config::Config& cfg) { cfg.upstream.command_timeout = timeout; }, &m.upstream_lines);
  return m;
}

}  // namespace

TEST(UpstreamClient, OpensSaysEhloAndReadsCapabilitiesFromAMultiLineReply) {
  asio::io_context io;
  FakeSmtp up(io);
  up.serve([](Peer& p) -> Task<void> {
    co_await p.send("220 fake.upstream ESMTP\r\n");
    co_await p.expect("EHLO gw.test");
    // One reply written in pieces: the client must wait for its last line.
    co_await p.send("250-fake.upstream greets you\r\n250-PIPELINING\r\n250-SIZE 1000");
    co_await p.send("0\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n");
    co_await p.send("250 ENHANCEDSTATUSCODES\r\n");
  });
  auto cfg = config_for({up.address()});
  net::Reply r;
  upstream::Capabilities caps;
  bool connected = false;
  run(io, [&]() -> Task<void> {
    upstream::UpstreamClient c(io.get_executor(), cfg, nullptr);
    r = co_await c.open(client_conn());
    caps = c.caps();
    connected = c.connected();
    co_await c.quit();
  }, [&] { up.stop(); });
  EXPECT_EQ(r.code, 250);
  ASSERT_EQ(r.lines.size(), 6u);
  EXPECT_EQ(r.lines[0], "fake.upstream greets you");
  EXPECT_EQ(r.lines[2], "SIZE 10000");
  EXPECT_TRUE(connected);
  EXPECT_TRUE(caps.pipelining);
  EXPECT_TRUE(caps.size);
  EXPECT_TRUE(caps.eightbitmime);
  EXPECT_TRUE(caps.smtputf8);
  EXPECT_TRUE(caps.enhanced);
  EXPECT_FALSE(caps.starttls);
  EXPECT_FALSE(caps.xclient);
  ASSERT_GE(up.lines().size(), 2u);
  EXPECT_EQ(up.lines().back(), "QUIT");  // no pool: the connection is closed politely
}

TEST(UpstreamClient, MultiLineRefusalIsPassedThroughWhole) {
  net::Reply mail, bad, good;
  bool connected = false;
  std::vector<std::string> lines;
  with_upstream(
      [](Peer& p) -> Task<void> {
        co_await p.expect("MAIL FROM:<a@example.org>");
        co_await p.send("250 2.1.0 Ok\r\n");
        co_await p.expect("RCPT TO:<nobody@example.net>");
        co_await p.send("550-5.1.1 <nobody@example.net>: Recipient address rejected:\r\n"
                        "550-5.1.1 User unknown in virtual mailbox table\r\n"
                        "550 5.1.1 see https://example.net/help\r\n");
        co_await p.expect("RCPT TO:<b@example.net>");
        co_await p.send("250 2.1.5 Ok\r\n");
        co_await p.expect("RSET");
        co_await p.send("250 2.0.0 Ok\r\n");
      },
      [&](upstream::UpstreamClient& c) -> Task<void> {
        mail = co_await c.mail(tx_with("a@example.org"));
        bad = co_await c.rcpt("nobody@example.net");
        good = co_await c.rcpt("b@example.net");
        connected = c.connected();
        co_await c.rset();
      },
      {}, &lines);
  expect_reply(mail, 250, "2.1.0");
  expect_reply(bad, 550, "5.1.1");
  ASSERT_EQ(bad.lines.size(), 3u);
  EXPECT_EQ(bad.lines[0], "<nobody@example.net>: Recipient address rejected:");
  EXPECT_EQ(bad.lines[2], "see https://example.net/help");
  expect_reply(good, 250, "2.1.5");
  EXPECT_TRUE(connected);  // a refused recipient is an answer, not a broken connection
  ASSERT_GE(lines.size(), 2u);
  EXPECT_EQ(lines.back(), "QUIT");
  EXPECT_EQ(lines[lines.size() - 2], "RSET");  // the transaction was open: RSET first
}
TEST(UpstreamClient, ReplyCutMidLineThenClosedIsOurOwn451) {
  auto m = mail_answered_with("250 2.1", true);  // no line end, then gone
  expect_reply(m.reply, 451, "4.4.2");           // never the half-read 250
  EXPECT_NE(m.reply.text().find("closed the connection"), std::string::npos) << m.reply.text();
  EXPECT_FALSE(m.connected);
}

TEST(UpstreamClient, GarbageInsteadOfAReplyCodeIs451AndDropsTheConnection) {
  auto m = mail_answered_with("hello, I am not an SMTP server\r\n");
  expect_reply(m.reply, 451, "4.4.2");
  EXPECT_NE(m.reply.text().find("malformed"), std::string::npos) << m.reply.text();
  EXPECT_FALSE(m.connected);
  expect_reply(m.next_rcpt, 451, "4.4.2");
  for (auto& l : m.upstream_lines) EXPECT_EQ(l.find("RCPT"), std::string::npos) << l;  // nothing sent after
}

TEST(UpstreamClient, MultiLineReplyWhoseCodeChangesIsMalformed) {
  auto m = mail_answered_with("550-5.7.1 first\r\n250 2.1.0 Ok\r\n");
  expect_reply(m.reply, 451, "4.4.2");  // the trailing 250 must not count as a success
  EXPECT_FALSE(m.connected);
}

TEST(UpstreamClient, OverLongReplyLineIs451) {
  auto m = mail_answered_with("250 2.1.0 " + std::string(10000, 'x') + "\r\n");
  expect_reply(m.reply, 451, "4.4.2");
}

TEST(UpstreamClient, ReplyTimeoutIs451AndDropsTheConnection) {
  // No answer: the client's command_timeout ends the wait. It bounds the greeting and EHLO too, so
  // it is long enough for a loaded machine (they come at once) and short enough for a unit test.
  auto m = mail_answered_with("", false, 1s);
  expect_reply(m.reply, 451, "4.4.2");
  EXPECT_NE(m.reply.text().find("timed out"), std::string::npos) << m.reply.text();
  EXPECT_FALSE(m.connected);
}

TEST(UpstreamClient, TemporaryRefusalIsPassedThroughAndTheConnectionKept) {
  auto m = mail_answered_with("452 4.3.1 Insufficient system storage\r\n");
  expect_reply(m.reply, 452, "4.3.1");
  EXPECT_TRUE(m.connected);
}

TEST(UpstreamClient, PositiveReplyThatDoesNotFitTheStageIs451) {
  net::Reply r;
  with_upstream(
      [](Peer& p) -> Task<void> {
        co_await p.expect("MAIL FROM:");
        co_await p.send("250 2.1.0 Ok\r\n");
        co_await p.expect("RCPT TO:");
        co_await p.send("354 go ahead\r\n");
      },
      [&](upstream::UpstreamClient& c) -> Task<void> {
        EXPECT_EQ((co_await c.mail(tx_with("a@example.org"))).code, 250);
        r = co_await c.rcpt("b@example.net");
      });
  expect_reply(r, 451, "4.4.2");
}

TEST(UpstreamClient, StaleConnectionClosedBeforeWeWriteIs451) {
  asio::io_context io;
  FakeSmtp up(io);
  bool closed = false;
  asio::steady_timer closed_signal(io, asio::steady_timer::time_point::max());
  up.serve([&](Peer& p) -> Task<void> {
    co_await p.greet();
    p.close();  // an idle timeout on the upstream: it hangs up between commands
    closed = true;
    closed_signal.cancel();
  });
  auto cfg = config_for({up.address()});
  net::Reply r;
  run(io, [&]() -> Task<void> {
    upstream::UpstreamClient c(io.get_executor(), cfg, nullptr);
    EXPECT_EQ((co_await c.open(client_conn())).code, 250);
    if (!closed) co_await closed_signal.async_wait(use_tuple);  // the script has hung up: now MAIL
    r = co_await c.mail(tx_with("a@example.org"));
    EXPECT_FALSE(c.connected());
  }, [&] { up.stop(); });
  expect_reply(r, 451, "4.4.2");
}

TEST(UpstreamClient, DotStuffsTheMessageAndPassesTheFinalReply) {
  std::vector<std::string> body;
  net::Reply fin;
  with_upstream(
      [&](Peer& p) -> Task<void> {
        co_await p.expect("MAIL FROM:<a@example.org>");
        co_await p.send("250 2.1.0 Ok\r\n");
        co_await p.expect("RCPT TO:<b@example.net>");
        co_await p.send("250 2.1.5 Ok\r\n");
        co_await p.expect("DATA");
        co_await p.send("354 End data with <CR><LF>.<CR><LF>\r\n");
        body = co_await p.message();
        co_await p.send("250 2.0.0 Ok: queued as ABC123\r\n");
      },
      [&](upstream::UpstreamClient& c) -> Task<void> {
        auto tx = tx_with("a@example.org", "Subject: hi\r\n\r\n.leading dot\r\nlast line without end");
        EXPECT_EQ((co_await c.mail(tx)).code, 250);
        EXPECT_EQ((co_await c.rcpt("b@example.net")).code, 250);
        fin = co_await c.data(tx, "X-Top: 1\r\n");
        co_await c.quit();
      });
  expect_reply(fin, 250, "2.0.0");
  ASSERT_EQ(fin.lines.size(), 1u);
  EXPECT_EQ(fin.lines[0], "Ok: queued as ABC123");
  std::vector<std::string> want{"X-Top: 1", "Subject: hi", "", "..leading dot", "last line without end"};
  EXPECT_EQ(body, want);
}
TEST(UpstreamClient, FailsOverWhenTheFirstServerRefusesTheConnection) {
  asio::io_context io;
  RefusingPort dead(io);
  FakeSmtp second(io);
  second.serve([](Peer& p) -> Task<void> { co_await p.greet(); });
  auto cfg = config_for({dead.address(), second.address()});
  net::Reply r;
  std::string server;
  run(io, [&]() -> Task<void> {
    upstream::UpstreamClient c(io.get_executor(), cfg, nullptr);
    r = co_await c.open(client_conn());
    server = c.server();
    // The failed first server is now remembered: the second one stays preferred for a while.
    EXPECT_TRUE(upstream::server_still_preferred(cfg, second.address()));
  }, [&] { second.stop(); });
  EXPECT_EQ(r.code, 250);
  EXPECT_EQ(server, second.address());
  EXPECT_EQ(second.accepted(), 1);
}

TEST(UpstreamClient, FailsOverWhenTheFirstServerDoesNotAnswer) {
  asio::io_context io;
  // Accepts (the kernel completes the handshake from the backlog) and never says a word.
  tcp::acceptor silent(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const std::string silent_addr = "127.0.0.1:" + std::to_string(silent.local_endpoint().port());
  FakeSmtp second(io);
  second.serve([](Peer& p) -> Task<void> { co_await p.greet(); });
  auto cfg = config_for({silent_addr, second.address()});
  // How long the silent server gets to greet; the second one greets at once, well within it.
  cfg.upstream.command_timeout = 1s;
  net::Reply r;
  std::string server;
  run(io, [&]() -> Task<void> {
    upstream::UpstreamClient c(io.get_executor(), cfg, nullptr);
    r = co_await c.open(client_conn());
    server = c.server();
  }, [&] {
    second.stop();
    silent.close();
  });
  EXPECT_EQ(r.code, 250);
  EXPECT_EQ(server, second.address());
}

TEST(UpstreamClient, FailsOverWhenTheFirstServerGreetsWithA554) {
  asio::io_context io;
  FakeSmtp first(io), second(io);
  first.serve([](Peer& p) -> Task<void> { co_await p.send("554 5.3.2 not accepting mail\r\n"); });
  second.serve([](Peer& p) -> Task<void> { co_await p.greet(); });
  auto cfg = config_for({first.address(), second.address()});
  net::Reply r;
  std::string server;
  run(io, [&]() -> Task<void> {
    upstream::UpstreamClient c(io.get_executor(), cfg, nullptr);
    r = co_await c.open(client_conn());
    server = c.server();
  }, [&] {
    first.stop();
    second.stop();
  });
  EXPECT_EQ(r.code, 250);
  EXPECT_EQ(server, second.address());
  EXPECT_EQ(first.accepted(), 1);
}

TEST(UpstreamClient, NoServerReachableIs451_441) {
  asio::io_context io;
  RefusingPort a(io), b(io);
  auto cfg = config_for({a.address(), b.address()});
  net::Reply r;
  bool connected = true;
  run(io, [&]() -> Task<void> {
    upstream::UpstreamClient c(io.get_executor(), cfg, nullptr);
    r = co_await c.open(client_conn());
    connected = c.connected();
  }, [] {});
  expect_reply(r, 451, "4.4.1");
  EXPECT_FALSE(connected);
}

