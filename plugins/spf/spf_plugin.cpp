// The "spf" plugin: checks the MAIL FROM identity (the HELO identity for the null sender) of inbound
// mail at the MAIL stage, records tx.spf, adds Received-SPF and the spf= part of
// Authentication-Results, and answers per [plugins.spf] on_fail / on_softfail / on_temperror /
// on_permerror. Trusted and authenticated clients are not checked.
#include <algorithm>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "gateway/core/plugin.hpp"
#include "gateway/dns/resolver.hpp"
#include "gateway/observe/log.hpp"
#include "gateway/observe/metrics.hpp"
#include "plugins/spf/spf_check.hpp"

namespace gw::spf {
namespace {

enum class Action { reject, tempfail, tag, ignore };

Action parse_action(const config::Table& t, const char* key, const char* def) {
  auto v = t.choice(key, {"reject", "tempfail", "tag", "ignore"}, def);
  if (v == "reject") return Action::reject;
  if (v == "tempfail") return Action::tempfail;
  if (v == "tag") return Action::tag;
  return Action::ignore;
}

// A quoted-string (RFC 5322 §3.2.4): printable ASCII, '"' and '\\' escaped, the rest dropped.
std::string quoted_string(const std::string& v) {
  std::string out = "\"";
  out.reserve(v.size() + 8);
  for (char c : v) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u > 0x7e) continue;
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// A key=value value for Received-SPF (RFC 7208 §9.1): a dot-atom as is, anything else quoted.
std::string kv_value(const std::string& v) {
  bool atom = !v.empty() && v.find('@') == std::string::npos;
  for (char c : v) {
    if (!atom) break;
    unsigned char u = static_cast<unsigned char>(c);
    if (!(std::isalnum(u) || std::string_view("!#$%&'*+-/=?^_`{|}~.").find(c) != std::string_view::npos)) atom = false;
  }
  if (atom) return v;
  return quoted_string(v);
}

// A comment's text: printable ASCII without parentheses or backslashes.
std::string comment_text(std::string_view s) {
  std::string out;
  out.reserve(std::min<std::size_t>(s.size(), 301));
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u > 0x7e || c == '(' || c == ')' || c == '\\') continue;
    out += c;
    if (out.size() > 300) break;
  }
  return out;
}

// A reply's text: printable ASCII, bounded.
std::string reply_text(std::string_view s) {
  std::string out;
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u > 0x7e) continue;
    out += c;
    if (out.size() >= 400) break;
  }
  return out;
}

// An RFC 8601 property value: the address when it is a plain token, else quoted.
std::string ar_value(const std::string& v) {
  bool plain = !v.empty();
  for (char c : v) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u > 0x7e || std::string_view("()<>,;:\\\"/[]?=").find(c) != std::string_view::npos) plain = false;
  }
  if (plain) return v;
  return quoted_string(v);
}

class SpfPlugin : public Plugin {
 public:
  explicit SpfPlugin(const PluginEnv& env) : resolver_(env.services.resolver), hostname_(env.config.server.hostname) {
    const auto& t = env.table;
    t.allow_only({"on_fail", "on_softfail", "on_temperror", "on_permerror", "explanation"});
    on_fail_ = parse_action(t, "on_fail", "reject");
    on_softfail_ = parse_action(t, "on_softfail", "tag");
    on_temperror_ = parse_action(t, "on_temperror", "tempfail");
    on_permerror_ = parse_action(t, "on_permerror", "tag");
    opts_.default_explanation = t.string("explanation", opts_.default_explanation);
    if (opts_.default_explanation.empty() || opts_.default_explanation.size() > 300)
      t.fail("explanation", "must hold 1 to 300 characters");
    opts_.budget = std::chrono::duration_cast<std::chrono::milliseconds>(env.config.dns.timeout) * 4;
    if (opts_.budget < std::chrono::seconds(20)) opts_.budget = std::chrono::seconds(20);
    opts_.cache_results = true;  // docs/spf.md, "Result cache"
    receiver_kv_ = kv_value(sanitize(hostname_));
    for (const char* result : {"pass", "fail", "softfail", "neutral", "none", "temperror", "permerror"})
      counters_.emplace_back(result, &observe::Metrics::instance().counter("smtpgw_spf_results_total", "SPF results",
                                                                            std::string("result=\"") + result + "\""));
  }

  unsigned stages() const override { return static_cast<unsigned>(Stage::mail); }

  Task<Verdict> on_mail(Transaction& tx) override {
    if (tx.conn.outbound() || !resolver_) co_return Verdict::next();
    Request req{tx.conn.client.address, tx.sender, tx.conn.helo, hostname_};
    Result r = co_await check(*resolver_, req, opts_);

    result_counter(r.result).inc();

    SpfFact fact;
    fact.result = r.result;
    fact.identity = r.identity;
    fact.domain = r.domain;
    fact.explanation = r.explanation;
    tx.spf = std::move(fact);
    tx.verdicts.emplace_back("spf", r.result);

    const std::string helo = sanitize(tx.conn.helo.empty() ? std::string("unknown") : tx.conn.helo);
    if (log::enabled(log::Level::debug))
      log::debug("spf", {{"session", tx.conn.id}, {"result", r.result}, {"identity", r.identity}, {"domain", r.domain},
                         {"rounds", r.rounds}, {"queries", r.queries}, {"problem", r.problem}});

    Action action = Action::tag;
    if (r.result == "fail") action = on_fail_;
    else if (r.result == "softfail") action = on_softfail_;
    else if (r.result == "temperror") action = on_temperror_;
    else if (r.result == "permerror") action = on_permerror_;

    if (action == Action::reject) {
      std::string text = r.result == "fail" && !r.explanation.empty() ? reply_text(r.explanation)
                                                                      : "SPF " + r.result + " for " + r.domain;
      co_return Verdict::reject(550, "5.7.23", text);
    }
    if (action == Action::tempfail)
      co_return Verdict::tempfail(451, "4.7.24", "SPF " + r.result + " for " + r.domain + ", try again later");
    if (action == Action::ignore) co_return Verdict::next();

    tx.add_header("Received-SPF", received_spf(r, tx, helo));

    // Authentication-Results part (RFC 8601 §2.7.2)
    std::string part = "spf=";
    part += r.result;
    if (r.identity == "helo") part += " smtp.helo=" + ar_value(sanitize(r.domain));
    else part += " smtp.mailfrom=" + ar_value(tx.sender);
    tx.auth_results.push_back(std::move(part));
    co_return Verdict::next();
  }

 private:
  // The Received-SPF value (RFC 7208 §9.1), built in one string: it is made for every inbound message.
  std::string received_spf(const Result& r, const Transaction& tx, const std::string& helo) const {
    std::string comment;
    comment.reserve(160);
    comment += hostname_;
    comment += ": ";
    std::string who = r.identity == "helo" ? "helo " + r.domain : "domain of " + r.sender;
    const std::string& ip = tx.conn.client.ip;
    auto add = [&](std::initializer_list<std::string_view> parts) {
      for (auto p : parts) comment += p;
    };
    if (r.result == "pass") add({who, " designates ", ip, " as permitted sender"});
    else if (r.result == "fail") add({who, " does not designate ", ip, " as permitted sender"});
    else if (r.result == "softfail") add({"transitioning ", who, " does not designate ", ip, " as permitted sender"});
    else if (r.result == "neutral") add({ip, " is neither permitted nor denied by ", who});
    else if (r.result == "none") add({who, " does not provide an SPF record"});
    else if (r.result == "temperror") add({"temporary error checking ", who});
    else add({"permanent error in the SPF record of ", who});
    if (!r.problem.empty() && (r.result == "permerror" || r.result == "temperror")) add({": ", r.problem});
    std::string v;
    v.reserve(comment.size() + ip.size() + tx.sender.size() + helo.size() + receiver_kv_.size() + 96);
    v += r.result;
    v += " (";
    v += comment_text(comment);
    v += ")\r\n\tclient-ip=";
    v += ip;
    v += "; envelope-from=";
    v += kv_value(r.identity == "helo" ? std::string() : tx.sender);
    v += "; helo=";
    v += kv_value(helo);
    v += "; receiver=";
    v += receiver_kv_;
    v += "; identity=";
    v += r.identity;
    v += ';';
    if (!r.problem.empty() && r.result == "permerror") {
      v += " problem=";
      v += kv_value(comment_text(r.problem));
      v += ';';
    }
    return v;
  }

  // smtpgw_spf_results_total by result, looked up once (not by name for every message).
  observe::Counter& result_counter(const std::string& result) {
    for (auto& [name, counter] : counters_)
      if (name == result) return *counter;
    return observe::Metrics::instance().counter("smtpgw_spf_results_total", "SPF results", "result=\"" + result + "\"");
  }

  std::shared_ptr<dns::Resolver> resolver_;
  std::string hostname_;
  std::string receiver_kv_;  // kv_value(sanitize(server.hostname))
  std::vector<std::pair<std::string, observe::Counter*>> counters_;
  Options opts_;
  Action on_fail_, on_softfail_, on_temperror_, on_permerror_;
};

GW_REGISTER_PLUGIN("spf", [](const PluginEnv& env) { return std::make_unique<SpfPlugin>(env); });

}  // namespace
}  // namespace gw::spf
