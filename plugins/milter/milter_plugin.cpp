// The milter plugin ([plugins.milter], docs/milter.md): a client of the Sendmail milter protocol v6.
// One connection per client session and server, opened at connect (options negotiated there),
// ABORT between transactions, QUIT at the end of the session. Servers run in order; the first
// refusal ends the stage. A milter that fails is closed; with on_error = "tempfail" the client gets
// 451 4.7.1 at its next MAIL, RCPT or end of data (the next MAIL first tries a fresh connection),
// with "accept" the milter is skipped.
#include <boost/asio/this_coro.hpp>

#include "gateway/core/plugin.hpp"
#include "gateway/observe/log.hpp"
#include "gateway/observe/metrics.hpp"
#include "plugins/milter/client.hpp"
#include "plugins/milter/edits.hpp"
#include "plugins/milter/settings.hpp"

namespace gw::plugins::milter {
namespace {

using namespace gw::milter;
namespace asio = boost::asio;
using Macros = std::vector<std::pair<std::string, std::string>>;

// SMFIM_* indices of SMFIR_SETSYMLIST, by the command a macro packet precedes.
int symlist_stage(char command) {
  switch (command) {
    case cmd::connect: return 0;
    case cmd::helo: return 1;
    case cmd::mail: return 2;
    case cmd::rcpt: return 3;
    case cmd::data: return 4;
    case cmd::eob: return 5;
    case cmd::eoh: return 6;
  }
  return -1;
}

// Per session and server.
struct Link {
  const ServerSettings* server = nullptr;
  std::unique_ptr<Client> client;
  bool done_session = false;  // accepted (or refused) the session at CONNECT/HELO: no more traffic
  bool done_tx = false;       // accepted or discarded this transaction
  bool in_tx = false;         // MAIL was sent and the message not finished: ABORT at reset
  bool failed = false;        // failed in this session; reconnects at the next MAIL
  bool usable() const { return client && client->is_open() && !done_session; }
  bool has(std::uint32_t flag) const { return client && (client->protocol() & flag); }
};

struct SessionState {
  std::vector<Link> links;
  bool discarded = false;  // a milter said discard: the message is refused (never dropped silently)
};

enum class Step { proceed, done, refuse, error };
struct Outcome {
  Step step = Step::proceed;
  Verdict verdict;
  std::string error;
  bool discard = false;  // a discard: the whole transaction is refused
};

class MilterPlugin : public Plugin {
 public:
  explicit MilterPlugin(const PluginEnv& env)
      : name_(env.name), settings_(parse_settings(env.table)), hostname_(env.config.server.hostname),
        max_size_(static_cast<std::size_t>(env.config.server.max_message_size)) {
    auto& m = observe::Metrics::instance();
    for (auto& s : settings_.servers)
      errors_.push_back(&m.counter("smtpgw_milter_errors_total", "Milters that failed (unreachable, timed out, broken)",
                                   "milter=\"" + s.name + "\""));
  }

  unsigned stages() const override {
    return Stage::connect | Stage::helo | Stage::mail | Stage::rcpt | Stage::data | Stage::reset | Stage::disconnect;
  }

  Task<Verdict> on_connect(Transaction& tx) override {
    auto st = std::make_shared<SessionState>();
    tx.conn.plugin_state[name_] = st;
    for (std::size_t i = 0; i < settings_.servers.size(); ++i) {
      Link l;
      l.server = &settings_.servers[i];
      st->links.push_back(std::move(l));
    }
    for (std::size_t i = 0; i < st->links.size(); ++i) {
      Outcome o = co_await open(tx, st->links[i], i, false);
      if (o.step == Step::refuse) co_return o.verdict;
    }
    co_return Verdict::next();
  }

  Task<Verdict> on_helo(Transaction& tx, std::string_view name) override {
    auto st = tx.conn.state<SessionState>(name_);
    if (!st) co_return Verdict::next();
    for (std::size_t i = 0; i < st->links.size(); ++i) {
      Link& l = st->links[i];
      if (!l.usable()) continue;
      Outcome o = co_await helo(tx, l, name);
      if (o.step == Step::done) l.done_session = true;
      if (o.step == Step::error) fail(tx, l, i, "helo", o.error);
      if (o.step == Step::refuse) co_return o.verdict;
    }
    co_return Verdict::next();
  }

  Task<Verdict> on_mail(Transaction& tx) override {
    auto st = tx.conn.state<SessionState>(name_);
    if (!st) co_return Verdict::next();
    for (std::size_t i = 0; i < st->links.size(); ++i) {
      Link& l = st->links[i];
      if (!l.failed && l.usable() && l.client->idle_broken()) {
        // The milter closed the idle connection between transactions (a restart): reconnect quietly.
        log::info("milter_reconnect", {{"session", tx.conn.id}, {"milter", l.server->name}});
        l.client->close();
        l.failed = true;
      }
      if (l.failed) {
        // Broken earlier in the session: a fresh connection (CONNECT and HELO again) for this transaction.
        Outcome o = co_await open(tx, l, i, true);
        if (o.step == Step::refuse) co_return o.verdict;
        if (o.step == Step::error) {
          if (l.server->tempfail_on_error) co_return unavailable();
          continue;
        }
      }
      if (!l.usable()) continue;
      l.in_tx = true;
      Outcome o;
      if (!l.has(proto::nomail)) {
        std::vector<std::string> args{"<" + tx.sender + ">"};
        if (tx.declared_size) args.push_back("SIZE=" + std::to_string(tx.declared_size));
        if (!tx.body_type.empty()) args.push_back("BODY=" + tx.body_type);
        if (tx.smtputf8) args.push_back("SMTPUTF8");
        Macros m{{"i", tx.id}, {"{mail_addr}", tx.sender}};
        if (tx.conn.auth_user) m.emplace_back("{auth_authen}", *tx.conn.auth_user);
        o = co_await step(l, macro_packet(l, cmd::mail, m) + envelope(cmd::mail, args), !l.has(proto::nr_mail),
                          tx, "mail");
      }
      if (auto v = settle(tx, *st, l, i, "mail", o)) co_return *v;
    }
    co_return Verdict::next();
  }

  Task<Verdict> on_rcpt(Transaction& tx, const std::string& rcpt) override {
    auto st = tx.conn.state<SessionState>(name_);
    if (!st) co_return Verdict::next();
    if (st->discarded) co_return discarded();
    for (std::size_t i = 0; i < st->links.size(); ++i) {
      Link& l = st->links[i];
      if (l.failed && l.server->tempfail_on_error) co_return unavailable();
      if (!l.usable() || l.done_tx || !l.in_tx || l.has(proto::norcpt)) continue;
      Macros m{{"i", tx.id}, {"{rcpt_addr}", rcpt}};
      std::vector<std::string> args{"<" + rcpt + ">"};
      Outcome o = co_await step(l, macro_packet(l, cmd::rcpt, m) + envelope(cmd::rcpt, args),
                                !l.has(proto::nr_rcpt), tx, "rcpt");
      if (auto v = settle(tx, *st, l, i, "rcpt", o)) co_return *v;
    }
    co_return Verdict::next();
  }

  Task<Verdict> on_data(Transaction& tx) override {
    auto st = tx.conn.state<SessionState>(name_);
    if (!st) co_return Verdict::next();
    if (st->discarded) co_return discarded();
    for (std::size_t i = 0; i < st->links.size(); ++i) {
      Link& l = st->links[i];
      if (l.failed && l.server->tempfail_on_error) co_return unavailable();
      if (!l.usable() || l.done_tx || !l.in_tx) continue;
      Outcome o = co_await message(tx, l);
      if (auto v = settle(tx, *st, l, i, "data", o)) co_return *v;
    }
    co_return Verdict::next();
  }

  Task<void> on_reset(Transaction& tx) override {
    auto st = tx.conn.state<SessionState>(name_);
    if (!st) co_return;
    st->discarded = false;
    for (auto& l : st->links) {
      if (l.in_tx && l.usable()) co_await l.client->send(packet(cmd::abort, {}));
      l.in_tx = false;
      l.done_tx = false;
    }
  }

  Task<void> on_disconnect(Transaction& tx) override {
    auto st = tx.conn.state<SessionState>(name_);
    if (!st) co_return;
    for (auto& l : st->links) {
      if (l.client && l.client->is_open()) co_await l.client->send(packet(cmd::quit, {}));
      l.client.reset();
    }
    tx.conn.plugin_state.erase(name_);
  }

 private:
  // Connects, negotiates, sends CONNECT (and, when reopening at MAIL, the session's HELO).
  Task<Outcome> open(Transaction& tx, Link& l, std::size_t i, bool replay_helo) {
    auto ex = co_await asio::this_coro::executor;
    l.done_session = false;
    l.client = std::make_unique<Client>(ex, l.server->command_timeout);
    Result r = co_await l.client->open(l.server->address, l.server->connect_timeout);
    Outcome o;
    if (!r.ok) {
      fail(tx, l, i, "connect", r.error);
      o.step = Step::error;
      co_return o;
    }
    l.failed = false;
    if (!l.has(proto::noconnect)) {
      const auto& c = tx.conn.client;
      std::string name = c.rdns ? *c.rdns : std::string("unknown");
      Macros m{{"j", hostname_}, {"{daemon_name}", "smtp-gateway"}, {"{client_addr}", c.ip}, {"{client_name}", name}};
      char family = c.address.is_v4() ? '4' : c.address.is_v6() ? '6' : 'U';
      o = co_await step(l, macro_packet(l, cmd::connect, m) + connect(name, family, c.port, c.ip),
                        !l.has(proto::nr_conn), tx, "connect");
    }
    if (o.step == Step::proceed && replay_helo && !tx.conn.helo.empty()) o = co_await helo(tx, l, tx.conn.helo);
    if (o.step == Step::done) l.done_session = true;
    if (o.step == Step::refuse) l.done_session = true;
    if (o.step == Step::error) fail(tx, l, i, "connect", o.error);
    co_return o;
  }

  Task<Outcome> helo(Transaction& tx, Link& l, std::string_view name) {
    if (l.has(proto::nohelo)) co_return Outcome{};
    Macros m;
    if (tx.conn.tls) m.emplace_back("{tls_version}", tx.conn.tls_version);
    co_return co_await step(l, macro_packet(l, cmd::helo, m) + gw::milter::helo(name), !l.has(proto::nr_helo), tx,
                            "helo");
  }

  // DATA, the header fields, EOH, the body and EOM, then the modifications.
  Task<Outcome> message(Transaction& tx, Link& l) {
    Outcome o;
    Macros id{{"i", tx.id}};
    if (!l.has(proto::nodata)) {
      o = co_await step(l, macro_packet(l, cmd::data, id) + packet(cmd::data, {}), !l.has(proto::nr_data), tx, "data");
      if (o.step != Step::proceed) co_return o;
    }
    const bool leadspc = l.has(proto::hdr_leadspc);
    if (!l.has(proto::nohdrs)) {
      const bool reply = !l.has(proto::nr_hdr);
      std::string batch;  // without replies, all fields go in one write
      for (std::size_t idx : visible_fields(tx.message)) {
        const auto& f = tx.message.fields()[idx];
        std::string p = header(tx.message.field_name(f), milter_value(tx.message, f, leadspc));
        if (!reply) {
          batch += p;
          continue;
        }
        o = co_await step(l, std::move(p), true, tx, "header");
        if (o.step != Step::proceed) co_return o;
      }
      if (!batch.empty()) {
        o = co_await step(l, std::move(batch), false, tx, "header");
        if (o.step != Step::proceed) co_return o;
      }
    }
    if (!l.has(proto::noeoh)) {
      o = co_await step(l, macro_packet(l, cmd::eoh, id) + packet(cmd::eoh, {}), !l.has(proto::nr_eoh), tx, "eoh");
      if (o.step != Step::proceed) co_return o;
    }
    if (!l.has(proto::nobody) && !tx.message.body().empty()) {
      Result r = co_await l.client->body(tx.message.body(), !l.has(proto::nr_body));
      o = classify(r, tx, "body");
      if (o.step != Step::proceed) co_return o;
    }
    Result r = co_await l.client->exchange(macro_packet(l, cmd::eob, id) + packet(cmd::eob, {}), true, true,
                                           max_size_ + kMaxPacket);
    if (r.ok) l.in_tx = false;  // the message is over for this milter: no ABORT needed
    o = classify(r, tx, "eom");
    if (o.step == Step::refuse || o.step == Step::error) co_return o;
    auto edits = apply_edits(tx.message, r.edits, leadspc, max_size_);
    if (!edits.ok) co_return Outcome{Step::error, {}, edits.error};
    for (auto& reason : edits.quarantine) tx.add_header("X-Milter-Quarantine", reason);
    if (edits.applied)
      log::info("milter_edits", {{"session", tx.conn.id}, {"milter", l.server->name}, {"count", edits.applied}});
    o.step = Step::done;  // the message is finished for this milter either way (continue or accept)
    co_return o;
  }

  Task<Outcome> step(Link& l, std::string out, bool want_reply, Transaction& tx, const char* stage) {
    Result r = co_await l.client->exchange(std::move(out), want_reply);
    co_return classify(r, tx, stage);
  }

  // Maps a milter's reply to what the stage does with it.
  Outcome classify(const Result& r, Transaction& tx, const char* stage) const {
    Outcome o;
    if (!r.ok) return Outcome{Step::error, {}, r.error};
    const bool msg = std::string_view(stage) == "eom" || std::string_view(stage) == "body" ||
                     std::string_view(stage) == "header" || std::string_view(stage) == "eoh" ||
                     std::string_view(stage) == "data";
    switch (r.reply.command) {
      case rep::cont:
      case rep::skip: return o;
      case rep::accept: o.step = Step::done; return o;
      case rep::reject:
        o.step = Step::refuse;
        o.verdict = Verdict::reject(550, "5.7.1", msg ? "Message content rejected" : "Command rejected");
        return o;
      case rep::tempfail:
      case rep::conn_fail:
        o.step = Step::refuse;
        o.verdict = Verdict::tempfail(451, "4.7.1", "Service unavailable, try again later");
        return o;
      case rep::discard:
        o.step = Step::refuse;
        o.verdict = discarded();
        o.discard = true;
        return o;
      case rep::replycode: {
        auto rc = parse_replycode(r.reply.data);
        if (!rc) return Outcome{Step::error, {}, "malformed reply code \"" + std::string(cstring(r.reply.data)).substr(0, 80) + "\""};
        std::string enhanced = rc->enhanced.empty() ? (rc->code >= 500 ? "5.7.1" : "4.7.1") : rc->enhanced;
        std::string text = rc->text.empty() ? (rc->code >= 500 ? "Command rejected" : "Try again later") : rc->text;
        o.step = Step::refuse;
        o.verdict = rc->code >= 500 ? Verdict::reject(rc->code, enhanced, text) : Verdict::tempfail(rc->code, enhanced, text);
        return o;
      }
      default:
        return Outcome{Step::error, {}, std::string("unexpected reply '") + r.reply.command + "' at " + stage};
    }
  }

  // Applies an outcome of MAIL/RCPT/DATA for link l; a value is the stage's answer.
  std::optional<Verdict> settle(Transaction& tx, SessionState& st, Link& l, std::size_t i, const char* stage,
                                const Outcome& o) {
    switch (o.step) {
      case Step::proceed: return std::nullopt;
      case Step::done: l.done_tx = true; return std::nullopt;
      case Step::error:
        fail(tx, l, i, stage, o.error);
        if (l.server->tempfail_on_error) return unavailable();
        return std::nullopt;
      case Step::refuse:
        if (o.discard) st.discarded = true;
        log::info("milter_refused", {{"session", tx.conn.id}, {"milter", l.server->name}, {"stage", stage},
                                     {"reply", std::to_string(o.verdict.code) + " " + o.verdict.enhanced + " " + o.verdict.text}});
        return o.verdict;
    }
    return std::nullopt;
  }

  void fail(Transaction& tx, Link& l, std::size_t i, const char* stage, const std::string& error) {
    errors_[i]->inc();
    log::warn("milter_error", {{"session", tx.conn.id}, {"milter", l.server->name}, {"stage", stage}, {"error", error},
                               {"action", l.server->tempfail_on_error ? "tempfail" : "accept"}});
    if (l.client) l.client->close();
    l.failed = true;
    l.in_tx = false;
  }

  static Verdict unavailable() {
    return Verdict::tempfail(451, "4.7.1", "Content filter unavailable, try again later");
  }
  static Verdict discarded() { return Verdict::reject(550, "5.7.1", "Message discarded by content filter"); }

  // SMFIC_MACRO before a command: the values the milter asked for with SETSYMLIST, else all of them.
  std::string macro_packet(const Link& l, char command, Macros values) const {
    int stage = symlist_stage(command);
    for (auto& [s, names] : l.client->symlists()) {
      if (static_cast<int>(s) != stage) continue;
      auto bare = [](std::string_view n) {
        if (n.size() > 2 && n.front() == '{' && n.back() == '}') n = n.substr(1, n.size() - 2);
        return n;
      };
      std::erase_if(values, [&](const auto& kv) {
        for (auto& n : names)
          if (bare(n) == bare(kv.first)) return false;
        return true;
      });
    }
    if (values.empty()) return {};
    return macros(command, values);
  }

  std::string name_;
  Settings settings_;
  std::string hostname_;
  std::size_t max_size_;
  std::vector<observe::Counter*> errors_;
};

GW_REGISTER_PLUGIN("milter", [](const PluginEnv& env) -> std::unique_ptr<Plugin> {
  return std::make_unique<MilterPlugin>(env);
});

}  // namespace
}  // namespace gw::plugins::milter
