// The session state machine in-process: a Session runs on a loopback socket whose other end is the
// test's scripted client, and talks to a scripted upstream (tests/unit/upstream/fake_smtp.hpp). One
// io_context thread runs all three, so every step happens where the script puts it.
#include "gateway/smtp/session.hpp"

#include <filesystem>
#include <fstream>

#include <boost/asio/detached.hpp>
#include <gtest/gtest.h>

#include "gateway/smtp/outcome.hpp"
#include "gateway/smtp/server_state.hpp"
#include "gateway/smtp/verdict_reply.hpp"
#include "tests/unit/store/store_test_util.hpp"
#include "tests/unit/upstream/fake_smtp.hpp"

using namespace gw;
using namespace gw::testing;

namespace {

std::vector<std::string>& journal() {
  static std::vector<std::string> j;
  return j;
}

// Refuses MAIL from spammer@, refuses recipients @example.invalid, tags the message at DATA, and
// records the notifications.
class SessionProbe : public Plugin {
 public:
  unsigned stages() const override { return Stage::mail | Stage::rcpt | Stage::data | Stage::reset | Stage::disconnect; }
  Task<Verdict> on_mail(Transaction& tx) override {
    if (tx.sender.starts_with("spammer@")) co_return Verdict::reject(550, "5.7.1", "go away");
    co_return Verdict::next();
  }
  Task<Verdict> on_rcpt(Transaction&, const std::string& r) override {
    if (r.ends_with("@example.invalid")) co_return Verdict::reject(550, "5.1.1", "no such user");
    co_return Verdict::next();
  }
  Task<Verdict> on_data(Transaction& tx) override {
    tx.add_header("X-Unit", "seen");
    co_return Verdict::next();
  }
  Task<void> on_reset(Transaction& tx) override {
    journal().push_back("reset:" + tx.sender + ":" + std::to_string(tx.recipients.size()));
    co_return;
  }
  Task<void> on_disconnect(Transaction&) override {
    journal().push_back("disconnect");
    co_return;
  }
};
GW_REGISTER_PLUGIN("ut_session_probe", [](const PluginEnv&) { return std::make_unique<SessionProbe>(); });

// Refuses every connection: permanently (ut_session_refuse) or for now (ut_session_defer).
class ConnectGate : public Plugin {
 public:
  explicit ConnectGate(bool permanent) : permanent_(permanent) {}
  unsigned stages() const override { return static_cast<unsigned>(Stage::connect); }
  Task<Verdict> on_connect(Transaction&) override {
    co_return permanent_ ? Verdict::reject(550, "5.7.1", "") : Verdict::tempfail(450, "4.7.1", "");
  }

 private:
  bool permanent_;
};
GW_REGISTER_PLUGIN("ut_session_refuse", [](const PluginEnv&) { return std::make_unique<ConnectGate>(true); });
GW_REGISTER_PLUGIN("ut_session_defer", [](const PluginEnv&) { return std::make_unique<ConnectGate>(false); });

struct TempDir {
  std::string path = temp_dir("session");
  TempDir() { std::filesystem::create_directories(path); }
  ~TempDir() { std::filesystem::remove_all(path); }
};

struct HarnessOptions {
  std::string extra;                              // appended to the config
  std::string upstream;                           // empty = the fake `up`
  std::string pipeline = "\"ut_session_probe\"";  // the inside of pipeline = [...]
  std::string server;                             // more keys of [server]
};

struct Harness {
  asio::io_context io;
  TempDir tmp;
  FakeSmtp up{io};
  tcp::acceptor clients{io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)};
  std::shared_ptr<const config::Config> cfg;
  Services services;
  smtp::ServerState state;

  Harness() : Harness(HarnessOptions{}) {}
  explicit Harness(HarnessOptions o) {
    if (o.upstream.empty()) o.upstream = up.address();
    const std::string path = tmp.path + "/gw.toml";
    std::ofstream(path) << "pipeline = [" << o.pipeline << "]\n"
                        << "[server]\nhostname = \"gw.test\"\n" << o.server
                        << "[[listener]]\naddress = \"127.0.0.1:2525\"\n"
                        << "[upstream]\nservers = [\"" << o.upstream << "\"]\nconnect_at = \"mail\"\npool_size = 0\n"
                        << "command_timeout = \"5s\"\ndata_timeout = \"5s\"\n"
                        << o.extra;
    cfg = config::load_config(path);
    state.set_runtime(std::make_shared<Runtime>(Runtime{cfg, Pipeline::build(*cfg, services)}));
    journal().clear();
  }

  // A client connection with a Session serving it.
  Task<std::unique_ptr<Peer>> connect() {
    tcp::socket c(io);
    co_await c.async_connect(clients.local_endpoint(), asio::use_awaitable);
    auto s = co_await clients.async_accept(asio::use_awaitable);
    auto session = std::make_shared<smtp::Session>(std::move(s), cfg->listeners.at(0), state);
    asio::co_spawn(io, [session]() -> Task<void> { co_await session->run(); }, asio::detached);
    co_return std::make_unique<Peer>(std::move(c));
  }

  void go(std::function<Task<void>()> body) {
    run(io, std::move(body), [this] {
      up.stop();
      boost::system::error_code ec;
      clients.close(ec);
    });
  }
};

// One whole reply (all its lines, joined by "\n").
Task<std::string> reply(Peer& c) {
  std::string out;
  for (;;) {
    auto l = co_await c.line();
    if (!l) co_return out + "<closed>";
    out += (out.empty() ? "" : "\n") + *l;
    if (l->size() < 4 || (*l)[3] != '-') co_return out;
  }
}

// Sends `line` with CRLF and returns the reply.
Task<std::string> cmd(Peer& c, std::string line) {
  co_await c.send(line + "\r\n");
  co_return co_await reply(c);
}

// Sends each line in turn and collects the replies.
Task<std::vector<std::string>> say(Peer& c, std::vector<std::string> lines) {
  std::vector<std::string> out;
  for (auto& l : lines) out.push_back(co_await cmd(c, l));
  co_return out;
}

// Reads the greeting and says EHLO; with `sender`, MAIL too (each reply checked).
Task<void> hello(Peer& c, std::string sender = "") {
  EXPECT_EQ((co_await reply(c)).substr(0, 4), "220 ");
  EXPECT_EQ((co_await cmd(c, "EHLO client.example")).substr(0, 4), "250-");
  if (!sender.empty()) EXPECT_EQ(co_await cmd(c, "MAIL FROM:<" + sender + ">"), "250 2.1.0 Ok");
}

// Ends the session with QUIT and waits until the session has closed the connection.
Task<void> bye(Peer& c) {
  EXPECT_EQ((co_await cmd(c, "QUIT")).substr(0, 4), "221 ");
  co_await c.until_closed();
}

// The upstream side: greeting, EHLO, MAIL and RCPT of `rcpt` answered 250.
Task<void> upstream_until_rcpt(Peer& p, std::string rcpt) {
  co_await p.greet();
  co_await p.expect("MAIL FROM:");
  co_await p.send("250 2.1.0 Ok\r\n");
  co_await p.expect("RCPT TO:<" + rcpt + ">");
  co_await p.send("250 2.1.5 Ok\r\n");
}

// The upstream side of one transaction up to the final reply to the message.
Task<std::vector<std::string>> upstream_accepts(Peer& p, std::string rcpt, std::string final_reply) {
  co_await upstream_until_rcpt(p, rcpt);
  co_await p.expect("DATA");
  co_await p.send("354 End data with <CR><LF>.<CR><LF>\r\n");
  auto body = co_await p.message();
  co_await p.send(final_reply);
  co_return body;
}

bool has_line_with(const std::vector<std::string>& lines, const std::string& needle) {
  for (auto& l : lines)
    if (l.find(needle) != std::string::npos) return true;
  return false;
}

}  // namespace

TEST(Session, DeliversAMessageAndPassesTheUpstreamsOwn250) {
  Harness h;
  std::vector<std::string> body;
  h.up.serve([&](Peer& p) -> Task<void> { body = co_await upstream_accepts(p, "bob@example.test", "250 2.0.0 Ok: queued as Q1\r\n"); });
  std::vector<std::string> got;
  h.go([&]() -> Task<void> {
    auto c = co_await h.connect();
    got.push_back(co_await reply(*c));
    const std::vector<std::string> lines{"EHLO client.example",
                                         "MAIL FROM:<alice@example.org>",
                                         "RCPT TO:<bob@example.test>",
                                         "DATA",
                                         "Subject: t\r\n\r\nhello\r\n.",
                                         "QUIT"};
    auto replies = co_await say(*c, lines);
    got.insert(got.end(), replies.begin(), replies.end());
    co_await c->until_closed();
  });
  ASSERT_EQ(got.size(), 7u);
  EXPECT_EQ(got[0], "220 gw.test ESMTP smtp-gateway");
  EXPECT_NE(got[1].find("250-PIPELINING"), std::string::npos) << got[1];
  EXPECT_NE(got[1].find("250-ENHANCEDSTATUSCODES"), std::string::npos) << got[1];
  EXPECT_EQ(got[2], "250 2.1.0 Ok");
  EXPECT_EQ(got[3], "250 2.1.5 Ok");
  EXPECT_EQ(got[4].substr(0, 4), "354 ");
  EXPECT_EQ(got[5], "250 2.0.0 Ok: queued as Q1");  // the upstream's own words
  EXPECT_EQ(got[6], "221 2.0.0 gw.test Bye");
  ASSERT_GE(body.size(), 4u);
  EXPECT_EQ(body[0].substr(0, 15), "Received: from ");
  EXPECT_TRUE(has_line_with(body, "X-Unit: seen"));
  std::vector<std::string> tail(body.end() - 3, body.end());
  EXPECT_EQ(tail, (std::vector<std::string>{"Subject: t", "", "hello"}));
  EXPECT_EQ(journal(), (std::vector<std::string>{"reset:alice@example.org:1", "disconnect"}));
}

TEST(Session, UpstreamCutAfterTheMessageIsA451NeverA250) {
  Harness h;
  h.up.serve([&](Peer& p) -> Task<void> {
    co_await upstream_accepts(p, "bob@example.test", "250 2.0.0 Ok: que");  // cut mid-line
    p.close();
  });
  std::string fin;
  h.go([&]() -> Task<void> {
    auto c = co_await h.connect();
    co_await hello(*c, "alice@example.org");
    co_await cmd(*c, "RCPT TO:<bob@example.test>");
    co_await cmd(*c, "DATA");
    fin = co_await cmd(*c, "Subject: t\r\n\r\nhello\r\n.");
    co_await bye(*c);
  });
  EXPECT_EQ(fin.substr(0, 10), "451 4.4.2 ") << fin;
  EXPECT_EQ(journal(), (std::vector<std::string>{"reset:alice@example.org:1", "disconnect"}));
}

TEST(Session, UpstreamRefusalOfTheMessageIsPassedThrough) {
  Harness h;
  h.up.serve([&](Peer& p) -> Task<void> { co_await upstream_accepts(p, "bob@example.test", "554 5.7.1 Spam detected\r\n"); });
  std::string fin, after;
  h.go([&]() -> Task<void> {
    auto c = co_await h.connect();
    co_await hello(*c, "alice@example.org");
    co_await cmd(*c, "RCPT TO:<bob@example.test>");
    co_await cmd(*c, "DATA");
    fin = co_await cmd(*c, "Subject: t\r\n\r\nhello\r\n.");
    after = co_await cmd(*c, "RCPT TO:<bob@example.test>");  // the transaction is over
    co_await bye(*c);
  });
  EXPECT_EQ(fin, "554 5.7.1 Spam detected");
  EXPECT_EQ(after.substr(0, 10), "503 5.5.1 ") << after;
}

TEST(Session, APluginRefusalOfOneRecipientRefusesThatOneOnly) {
  Harness h;
  h.up.serve([&](Peer& p) -> Task<void> {
    co_await upstream_until_rcpt(p, "bob@example.test");
    co_await p.expect("RSET");
    co_await p.send("250 2.0.0 Ok\r\n");
  });
  std::vector<std::string> got;
  h.go([&]() -> Task<void> {
    auto c = co_await h.connect();
    co_await hello(*c, "alice@example.org");
    const std::vector<std::string> lines{"RCPT TO:<nobody@example.invalid>",
                                         "RCPT TO:<bob@example.test>",
                                         "RSET"};
    auto replies = co_await say(*c, lines);
    got.insert(got.end(), replies.begin(), replies.end());
    co_await bye(*c);
  });
  EXPECT_EQ(got, (std::vector<std::string>{"550 5.1.1 no such user", "250 2.1.5 Ok", "250 2.0.0 Ok"}));
  ASSERT_EQ(h.up.accepted(), 1);
  EXPECT_FALSE(has_line_with(h.up.lines(0), "example.invalid"));  // the refused one never went upstream
  EXPECT_EQ(journal(), (std::vector<std::string>{"reset:alice@example.org:1", "disconnect"}));
}

TEST(Session, APluginRejectAtMailNeverOpensTheUpstream) {
  Harness h;
  h.up.serve([&](Peer& p) -> Task<void> { co_await p.greet(); });
  std::string mail;
  h.go([&]() -> Task<void> {
    auto c = co_await h.connect();
    co_await hello(*c);
    mail = co_await cmd(*c, "MAIL FROM:<spammer@example.org>");
    co_await bye(*c);
  });
  EXPECT_EQ(mail, "550 5.7.1 go away");
  EXPECT_EQ(h.up.accepted(), 0);
  EXPECT_EQ(journal(), (std::vector<std::string>{"reset:spammer@example.org:0", "disconnect"}));
}

TEST(Session, CommandsOutOfSequenceGet503AndUnknownOnes500) {
  Harness h;
  std::vector<std::string> got;
  h.go([&]() -> Task<void> {
    auto c = co_await h.connect();
    co_await reply(*c);
    const std::vector<std::string> lines{"MAIL FROM:<a@example.org>",
                                         "HELO client.example",
                                         "RCPT TO:<b@example.test>",
                                         "DATA",
                                         "DATA now",
                                         "FROB",
                                         "NOOP",
                                         "BDAT 10 LAST",
                                         "QUIT"};
    auto replies = co_await say(*c, lines);
    got.insert(got.end(), replies.begin(), replies.end());
    co_await c->until_closed();
  });
  ASSERT_EQ(got.size(), 9u);
  EXPECT_EQ(got[0].substr(0, 10), "503 5.5.1 ") << got[0];
  EXPECT_EQ(got[1], "250 gw.test");  // HELO: one line, no extensions
  EXPECT_EQ(got[2].substr(0, 10), "503 5.5.1 ") << got[2];
  EXPECT_EQ(got[3].substr(0, 10), "503 5.5.1 ") << got[3];
  EXPECT_EQ(got[4].substr(0, 10), "501 5.5.4 ") << got[4];
  EXPECT_EQ(got[5].substr(0, 10), "500 5.5.1 ") << got[5];
  EXPECT_EQ(got[6], "250 2.0.0 Ok");
  EXPECT_EQ(got[7].substr(0, 10), "502 5.5.1 ") << got[7];
  EXPECT_EQ(got[8].substr(0, 4), "221 ");
  EXPECT_EQ(h.up.accepted(), 0);
  EXPECT_EQ(journal(), (std::vector<std::string>{"disconnect"}));  // no transaction got as far as MAIL
}

TEST(Session, NoUpstreamReachableAtMailIs451_441) {
  asio::io_context probe;
  tcp::socket reserved(probe);  // bound, never listening: connections to it are refused
  reserved.open(tcp::v4());
  reserved.bind(tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  Harness h({.upstream = "127.0.0.1:" + std::to_string(reserved.local_endpoint().port())});
  std::string mail, again;
  h.go([&]() -> Task<void> {
    auto c = co_await h.connect();
    co_await hello(*c);
    mail = co_await cmd(*c, "MAIL FROM:<alice@example.org>");
    again = co_await cmd(*c, "RCPT TO:<bob@example.test>");  // no transaction was opened
    co_await bye(*c);
  });
  EXPECT_EQ(mail.substr(0, 10), "451 4.4.1 ") << mail;
  EXPECT_EQ(again.substr(0, 10), "503 5.5.1 ") << again;
}

TEST(Session, PipelinedCommandsAreAnsweredInOrder) {
  Harness h;
  std::vector<std::string> body;
  h.up.serve([&](Peer& p) -> Task<void> { body = co_await upstream_accepts(p, "bob@example.test", "250 2.0.0 Ok: queued as Q2\r\n"); });
  std::vector<std::string> got;
  h.go([&]() -> Task<void> {
    auto c = co_await h.connect();
    co_await hello(*c);
    co_await c->send("MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n");
    for (int i = 0; i < 3; ++i) got.push_back(co_await reply(*c));
    got.push_back(co_await cmd(*c, "Subject: p\r\n\r\n..dot line\r\n."));
    co_await bye(*c);
  });
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0], "250 2.1.0 Ok");
  EXPECT_EQ(got[1], "250 2.1.5 Ok");
  EXPECT_EQ(got[2].substr(0, 4), "354 ");
  EXPECT_EQ(got[3], "250 2.0.0 Ok: queued as Q2");
  ASSERT_FALSE(body.empty());
  EXPECT_EQ(body.back(), "..dot line");  // unstuffed from the client, stuffed again towards the upstream
}

TEST(Session, RelayToAForeignDomainIsDeniedForAnUntrustedClient) {
  Harness h({.extra = "[trusted]\nnetworks = []\n[relay]\ndomains = [\"example.test\"]\n"});
  h.up.serve([&](Peer& p) -> Task<void> {
    co_await upstream_until_rcpt(p, "bob@example.test");
    co_await p.expect("RSET");
    co_await p.send("250 2.0.0 Ok\r\n");
  });
  std::string foreign, local;
  h.go([&]() -> Task<void> {
    auto c = co_await h.connect();
    co_await hello(*c, "alice@example.org");
    foreign = co_await cmd(*c, "RCPT TO:<carol@elsewhere.example>");
    local = co_await cmd(*c, "RCPT TO:<bob@example.test>");
    co_await bye(*c);
  });
  EXPECT_EQ(foreign, "554 5.7.1 <carol@elsewhere.example>: Relay access denied");
  EXPECT_EQ(local, "250 2.1.5 Ok");
  EXPECT_FALSE(has_line_with(h.up.lines(0), "elsewhere.example"));
}

TEST(Session, ClientLostMidMessageNeverReachesTheUpstreamAsData) {
  Harness h;
  h.up.serve([&](Peer& p) -> Task<void> {
    co_await upstream_until_rcpt(p, "bob@example.test");
    co_await p.expect("RSET");  // not DATA: the upstream never sees the partial message
    co_await p.send("250 2.0.0 Ok\r\n");
  });
  h.go([&]() -> Task<void> {
    auto c = co_await h.connect();
    co_await hello(*c, "alice@example.org");
    co_await cmd(*c, "RCPT TO:<bob@example.test>");
    co_await cmd(*c, "DATA");
    co_await c->send("Subject: partial\r\n\r\nhalf a mess");
    c->close();
  });
  ASSERT_EQ(h.up.accepted(), 1);
  EXPECT_FALSE(has_line_with(h.up.lines(0), "DATA"));
  EXPECT_FALSE(has_line_with(h.up.lines(0), "partial"));
  EXPECT_EQ(h.up.lines(0).back(), "QUIT");
  EXPECT_EQ(journal(), (std::vector<std::string>{"reset:alice@example.org:1", "disconnect"}));
}

TEST(Session, ARejectAtConnectIs554Then503ToAllButQuit) {
  Harness h({.pipeline = "\"ut_session_refuse\", \"ut_session_probe\""});
  std::vector<std::string> got;
  h.go([&]() -> Task<void> {
    auto c = co_await h.connect();
    got.push_back(co_await reply(*c));
    const std::vector<std::string> lines{"EHLO client.example",
                                         "MAIL FROM:<a@example.org>",
                                         "QUIT"};
    auto replies = co_await say(*c, lines);
    got.insert(got.end(), replies.begin(), replies.end());
    co_await c->until_closed();
  });
  EXPECT_EQ(got, (std::vector<std::string>{"554 5.7.1 gw.test Connection refused", "503 5.5.1 Bad sequence of commands",
                                           "503 5.5.1 Bad sequence of commands", "221 2.0.0 gw.test Bye"}));
  EXPECT_EQ(journal(), (std::vector<std::string>{"disconnect"}));  // a refused session is still told it ended
}

TEST(Session, ATempfailAtConnectIs421AndTheConnectionCloses) {
  Harness h({.pipeline = "\"ut_session_defer\", \"ut_session_probe\""});
  std::string greeting, after;
  h.go([&]() -> Task<void> {
    auto c = co_await h.connect();
    greeting = co_await reply(*c);
    after = co_await reply(*c);
  });
  EXPECT_EQ(greeting, "421 4.7.1 gw.test Service not available, try again later");
  EXPECT_EQ(after, "<closed>");
  EXPECT_EQ(journal(), (std::vector<std::string>{"disconnect"}));
}

TEST(Session, TooManyRecipientsIs452AndAnOversizedMessageIs552) {
  Harness h({.server = "max_recipients = 1\nmax_message_size = \"1KiB\"\n"});
  h.up.serve([&](Peer& p) -> Task<void> {
    co_await upstream_until_rcpt(p, "bob@example.test");
    co_await p.expect("RSET");  // the refused message never reaches the upstream
    co_await p.send("250 2.0.0 Ok\r\n");
  });
  std::string second, fin;
  h.go([&]() -> Task<void> {
    auto c = co_await h.connect();
    co_await hello(*c, "alice@example.org");
    co_await cmd(*c, "RCPT TO:<bob@example.test>");
    second = co_await cmd(*c, "RCPT TO:<carol@example.test>");
    co_await cmd(*c, "DATA");
    fin = co_await cmd(*c, "Subject: big\r\n\r\n" + std::string(2000, 'x') + "\r\n.");
    co_await bye(*c);
  });
  EXPECT_EQ(second, "452 4.5.3 Error: too many recipients");
  EXPECT_EQ(fin, "552 5.3.4 Error: message too big");
  EXPECT_FALSE(has_line_with(h.up.lines(0), "DATA"));
  EXPECT_FALSE(has_line_with(h.up.lines(0), "carol"));
}

TEST(Session, TooManyErrorsEndTheSessionWith421) {
  Harness h;
  std::vector<std::string> got;
  std::string last, end;
  h.go([&]() -> Task<void> {
    auto c = co_await h.connect();
    co_await reply(*c);
    for (int i = 0; i < 20; ++i) got.push_back(co_await cmd(*c, "FROB"));
    last = co_await reply(*c);  // the 20th error's 500 came with a 421
    end = co_await reply(*c);
  });
  ASSERT_EQ(got.size(), 20u);
  for (auto& r : got) EXPECT_EQ(r.substr(0, 10), "500 5.5.1 ") << r;
  EXPECT_EQ(last, "421 4.7.0 gw.test Error: too many errors");
  EXPECT_EQ(end, "<closed>");
}

TEST(Session, AnIdleClientGets421AfterTheCommandTimeout) {
  Harness h({.server = "command_timeout = \"200ms\"\n"});
  std::string greeting, timeout;
  h.go([&]() -> Task<void> {
    auto c = co_await h.connect();
    greeting = co_await reply(*c);
    timeout = co_await reply(*c);  // says nothing: the server's own timer ends the wait
    co_await c->until_closed();
  });
  EXPECT_EQ(greeting.substr(0, 4), "220 ");
  EXPECT_EQ(timeout, "421 4.4.2 gw.test Error: timeout exceeded");
  EXPECT_EQ(journal(), (std::vector<std::string>{"disconnect"}));
}

// The pure seams the session uses: the one verdict-to-reply mapping and the outcome of a reply.
TEST(SessionSeams, VerdictReplyMapsEveryVerdictToAValidReply) {
  using smtp::verdict_reply;
  auto r = verdict_reply(Verdict::reject(550, "5.7.1", "no"), Stage::rcpt, "gw.test");
  EXPECT_EQ(r.summary(), "550 5.7.1 no");
  r = verdict_reply(Verdict::reject(451, "4.7.1", "wrong class"), Stage::mail, "gw.test");  // a reject is 5xx
  EXPECT_EQ(r.code, 550);
  EXPECT_EQ(r.enhanced, "5.7.1");
  r = verdict_reply(Verdict::tempfail(550, "", ""), Stage::data, "gw.test");  // a tempfail is 4xx
  EXPECT_EQ(r.code, 451);
  EXPECT_EQ(r.enhanced, "4.7.1");
  EXPECT_EQ(r.lines.at(0), "Try again later");
  r = verdict_reply(Verdict::reject(550, "5.7.1", ""), Stage::connect, "gw.test");  // connect: 554
  EXPECT_EQ(r.code, 554);
  EXPECT_EQ(r.lines.at(0), "gw.test Connection refused");
  r = verdict_reply(Verdict::tempfail(450, "4.2.0", "busy"), Stage::connect, "gw.test");  // connect: 421
  EXPECT_EQ(r.code, 421);
  EXPECT_EQ(r.enhanced, "4.2.0");
}

TEST(SessionSeams, OutcomeOfAReply) {
  EXPECT_EQ(smtp::outcome_of(net::Reply::make(250, "2.0.0", "ok")), smtp::Outcome::delivered);
  EXPECT_EQ(smtp::outcome_of(net::Reply::make(554, "5.7.1", "no")), smtp::Outcome::rejected);
  EXPECT_EQ(smtp::outcome_of(net::Reply::make(451, "4.4.2", "later")), smtp::Outcome::tempfailed);
  EXPECT_EQ(smtp::outcome_of_refusal(true), smtp::Outcome::rejected);
  EXPECT_EQ(smtp::outcome_of_refusal(false), smtp::Outcome::tempfailed);
  EXPECT_STREQ(smtp::outcome_name(smtp::Outcome::aborted), "aborted");
}
