// The rspamd plugin: once per message at end of data, POST /checkv2 with the message as it would be
// forwarded, then rspamd's action decides (docs/rspamd.md). Runs for every client, trusted and
// authenticated ones included: rspamd's own settings tell them apart by the User and IP headers.
#include <array>
#include <chrono>
#include <cstdio>
#include <stdexcept>

#include "gateway/config/table.hpp"
#include "gateway/core/plugin.hpp"
#include "gateway/observe/log.hpp"
#include "gateway/observe/metrics.hpp"
#include "plugins/rspamd/answer.hpp"
#include "plugins/rspamd/edits.hpp"
#include "plugins/rspamd/http_client.hpp"

namespace gw::plugins::rspamd {

namespace {

namespace asio = boost::asio;

struct Settings {
  Url url;
  std::chrono::milliseconds timeout{15000};
  bool tempfail_on_error = false;
};

Settings parse(const config::Table& t) {
  Settings s;
  t.allow_only({"url", "timeout", "on_error"});
  std::string url = t.string("url").value_or("http://127.0.0.1:11333");
  try {
    s.url = parse_url(url);
  } catch (const std::invalid_argument& e) {
    t.fail("url", std::string(e.what()) + " (e.g. \"http://127.0.0.1:11333\")");
  }
  if (auto d = t.duration("timeout")) {
    if (d->count() <= 0) t.fail("timeout", "timeout must be a positive duration");
    s.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(*d);
  }
  s.tempfail_on_error = t.choice("on_error", {"accept", "tempfail"}).value_or("accept") == "tempfail";
  return s;
}

std::string number(double d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", d);
  return buf;
}

// A request header value: CR, LF and NUL never reach the wire.
std::string header_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v)
    if (c != '\r' && c != '\n' && c != '\0') out += c;
  return out;
}

struct Counters {
  std::array<observe::Counter*, 6> actions{};
  observe::Counter* errors;
  observe::Counter* connects;
  observe::Counter* reused;
  observe::Histogram* latency;
};

Counters make_counters() {
  auto& m = observe::Metrics::instance();
  Counters c;
  const char* help = "rspamd answers by action (error = unreachable, timed out or a bad answer)";
  for (int i = 0; i < 6; ++i) {
    auto a = static_cast<Action>(i);
    c.actions[static_cast<size_t>(i)] = &m.counter("smtpgw_rspamd_results_total", help, std::string("action=\"") + action_name(a) + "\"");
  }
  c.errors = &m.counter("smtpgw_rspamd_results_total", help, R"(action="error")");
  c.connects = &m.counter("smtpgw_rspamd_connections_total", "Connections to rspamd, opened or reused from the keep-alive pool", R"(kind="opened")");
  c.reused = &m.counter("smtpgw_rspamd_connections_total", "Connections to rspamd, opened or reused from the keep-alive pool", R"(kind="reused")");
  c.latency = &m.histogram("smtpgw_rspamd_request_seconds", "Time to get rspamd's answer, errors included");
  return c;
}

class Rspamd : public Plugin {
 public:
  explicit Rspamd(const PluginEnv& env)
      : settings_(parse(env.table)),
        client_(settings_.url),
        target_(settings_.url.path + "/checkv2"),
        hostname_(env.config.server.hostname),
        name_(env.name),
        counters_(make_counters()) {}

  unsigned stages() const override { return static_cast<unsigned>(Stage::data); }

  Task<Verdict> on_data(Transaction& tx) override {
    const auto& c = tx.conn;
    std::vector<std::pair<std::string, std::string>> headers;
    headers.reserve(6 + tx.recipients.size());
    headers.emplace_back("IP", c.client.ip);
    if (!c.helo.empty()) headers.emplace_back("Helo", header_value(c.helo));
    headers.emplace_back("From", tx.sender.empty() ? std::string("<>") : header_value(tx.sender));
    for (auto& r : tx.recipients) headers.emplace_back("Rcpt", header_value(r));
    if (c.client.rdns) headers.emplace_back("Hostname", header_value(*c.client.rdns));
    if (c.auth_user) headers.emplace_back("User", header_value(*c.auth_user));
    headers.emplace_back("Queue-Id", tx.id);

    // The body is the message as it would be forwarded: the headers the gateway writes above it, then
    // the message without the fields a plugin removed, streamed from the transaction's buffer.
    std::string top;
    for (auto& h : tx.final_headers(hostname_)) {
      top += h.name;
      top += ": ";
      top += h.value;
      top += "\r\n";
    }
    std::vector<asio::const_buffer> body;
    body.emplace_back(top.data(), top.size());
    std::string_view data = tx.message.data();
    size_t pos = 0;
    for (auto& f : tx.message.fields()) {
      if (!f.removed) continue;
      if (f.offset > pos) body.emplace_back(data.data() + pos, f.offset - pos);
      pos = f.offset + f.length;
    }
    if (pos < data.size()) body.emplace_back(data.data() + pos, data.size() - pos);

    const auto started = std::chrono::steady_clock::now();
    HttpResponse r = co_await client_.post(target_, headers, body, started + settings_.timeout);
    counters_.latency->observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    counters_.connects->inc(r.connects);
    if (r.reused) counters_.reused->inc();
    if (!r.ok) co_return failed(tx, r.error);
    if (r.status != 200) co_return failed(tx, "HTTP status " + std::to_string(r.status));
    Parsed parsed = parse_answer(r.body);
    if (!parsed.answer) co_return failed(tx, "bad answer: " + parsed.error);
    const Answer& a = *parsed.answer;
    counters_.actions[static_cast<size_t>(a.action)]->inc();

    RspamdFact fact;
    fact.action = action_name(a.action);
    fact.score = a.score;
    fact.required_score = a.required_score;
    fact.symbols = a.symbols;
    tx.rspamd = std::move(fact);

    // Header edits apply whatever the action; on a refusal nobody sees them, so skip the work.
    Verdict v = verdict_for(a);
    EditCount edits;
    if (!v.refuses()) {
      edits = apply_edits(a, tx.message);
      if (needs_spam_header(a)) tx.add_header("X-Spam", "Yes");
    }
    std::string ignored;
    for (auto& i : a.ignored) ignored += (ignored.empty() ? "" : ",") + i;
    log::info("rspamd", {{"session", c.id}, {"id", tx.id}, {"action", action_name(a.action)}, {"score", number(a.score)},
                         {"required_score", number(a.required_score)}, {"symbols", a.symbols.size()},
                         {"removed", edits.removed}, {"added", edits.added}, {"ignored", ignored}});
    co_return v;
  }

 private:
  Verdict failed(Transaction& tx, const std::string& why) {
    counters_.errors->inc();
    log::warn("rspamd_error", {{"session", tx.conn.id}, {"id", tx.id}, {"plugin", name_}, {"error", why},
                               {"on_error", settings_.tempfail_on_error ? "tempfail" : "accept"}});
    if (settings_.tempfail_on_error) return Verdict::tempfail(451, "4.7.1", "Content filter unavailable, try again later");
    return Verdict::next();
  }

  Settings settings_;
  HttpClient client_;
  std::string target_;
  std::string hostname_;
  std::string name_;
  Counters counters_;
};

}  // namespace

GW_REGISTER_PLUGIN("rspamd", [](const PluginEnv& env) { return std::make_unique<Rspamd>(env); });

}  // namespace gw::plugins::rspamd
