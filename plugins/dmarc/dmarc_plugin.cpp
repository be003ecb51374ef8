// The "dmarc" plugin (RFC 7489, docs/dmarc.md): at the end of DATA, takes the RFC5322.From domain,
// fetches its DMARC policy through the gateway's asynchronous resolver (the From domain's record,
// else the organizational domain's), evaluates it against the SPF and DKIM results already in the
// transaction, adds the dmarc= part of Authentication-Results, fills tx.dmarc and applies
// on_reject / on_quarantine / on_temperror. With `reports = true` each evaluation of a policy with
// rua= is recorded in the store for `smtp-gateway dmarc-report`.
#include <chrono>
#include <map>
#include <memory>
#include <random>
#include <string>

#include "gateway/core/plugin.hpp"
#include "gateway/dns/resolver.hpp"
#include "gateway/observe/log.hpp"
#include "gateway/observe/metrics.hpp"
#include "gateway/store/store.hpp"
#include "plugins/dmarc/from_domain.hpp"
#include "plugins/dmarc/policy.hpp"
#include "plugins/dmarc/record.hpp"

namespace gw::dmarc {
namespace {

constexpr const char* kLog = "dmarc";  // the store log read by dmarc-report

enum class Action { reject, quarantine, tag };

Action action_of(const std::string& s) {
  return s == "reject" ? Action::reject : s == "quarantine" ? Action::quarantine : Action::tag;
}

int roll() {
  thread_local std::mt19937 rng{std::random_device{}()};
  return std::uniform_int_distribution<int>(0, 99)(rng);
}

class DmarcPlugin : public Plugin {
 public:
  explicit DmarcPlugin(const PluginEnv& env)
      : resolver_(env.services.resolver), store_(env.services.store), name_(env.name) {
    const auto& t = env.table;
    t.allow_only({"on_reject", "on_quarantine", "quarantine_header", "on_temperror", "public_suffix_list", "reports",
                  "report_org", "report_email"});
    // RFC 7489 needs the SPF and DKIM results: both plugins must run before this one.
    const auto& pl = env.config.pipeline;
    size_t self = 0;
    while (self < pl.size() && pl[self] != env.name) ++self;
    for (const char* need : {"spf", "dkim_verify"}) {
      bool before = false;
      for (size_t i = 0; i < self && i < pl.size(); ++i) before = before || pl[i] == need;
      if (!before)
        env.config.root.fail("pipeline", "\"" + env.name + "\" needs \"" + need + "\" before it in the pipeline (" +
                                             "DMARC uses the SPF and DKIM results)");
    }
    on_reject_ = action_of(t.choice("on_reject", {"reject", "quarantine", "tag"}).value_or("reject"));
    on_quarantine_ = action_of(t.choice("on_quarantine", {"quarantine", "reject", "tag"}).value_or("quarantine"));
    tempfail_on_temperror_ = t.choice("on_temperror", {"tag", "tempfail"}).value_or("tag") == "tempfail";
    std::string qh = t.string("quarantine_header").value_or("X-Spam-Flag: YES");
    auto colon = qh.find(':');
    bool ok_name = colon != std::string::npos && colon > 0;
    for (size_t i = 0; ok_name && i < colon; ++i) {
      unsigned char c = static_cast<unsigned char>(qh[i]);
      ok_name = c > 0x20 && c < 0x7f;
    }
    for (char c : qh) ok_name = ok_name && c != '\r' && c != '\n' && c != '\0';
    if (!ok_name) t.fail("quarantine_header", "must be \"Name: value\" (an RFC 5322 field name, no CR or LF)");
    qh_name_ = qh.substr(0, colon);
    qh_value_ = qh.substr(colon + 1);
    while (!qh_value_.empty() && (qh_value_[0] == ' ' || qh_value_[0] == '\t')) qh_value_.erase(0, 1);
    std::string psl = t.string("public_suffix_list").value_or("/usr/share/publicsuffix/public_suffix_list.dat");
    try {
      org_ = std::make_shared<OrgDomains>(psl);
    } catch (const std::exception& e) {
      if (t.has("public_suffix_list")) t.fail("public_suffix_list", e.what());
      env.config.root.fail("pipeline", std::string(e.what()) + " (set plugins.dmarc.public_suffix_list)");
    }
    reports_ = t.boolean("reports").value_or(false);
    if (reports_ && !store_) t.fail("reports", "needs the [store]");
    auto& m = observe::Metrics::instance();
    for (const char* r : {"pass", "fail", "none", "temperror", "permerror"})
      results_[r] = &m.counter("smtpgw_dmarc_results_total", "DMARC results", std::string("result=\"") + r + "\"");
    for (const char* d : {"none", "quarantine", "reject"})
      dispositions_[d] = &m.counter("smtpgw_dmarc_dispositions_total", "DMARC dispositions applied",
                                    std::string("disposition=\"") + d + "\"");
    record_errors_ = &m.counter("smtpgw_dmarc_record_errors_total", "DMARC report records the store refused", "");
  }

  unsigned stages() const override { return static_cast<unsigned>(Stage::data); }

  Task<Verdict> on_data(Transaction& tx) override {
    if (tx.conn.outbound()) co_return Verdict::next();  // trusted and authenticated clients: no query
    FromDomain from = from_domain(tx.message.headers("From"));
    if (!from.domain) {
      finish(tx, "permerror", "", 'n', "none");
      log::debug("dmarc", {{"session", tx.conn.id}, {"result", "permerror"}, {"problem", from.problem}});
      co_return Verdict::next();
    }
    const std::string& domain = *from.domain;

    Discovery found;
    if (resolver_) {
      auto a = co_await resolver_->query("_dmarc." + domain, dns::Type::TXT);
      auto d = discover_at(a, domain);
      std::string org = d ? std::string() : org_->of(domain);
      if (!d && org != domain) {
        auto b = co_await resolver_->query("_dmarc." + org, dns::Type::TXT);
        d = discover_at(b, org);
      }
      if (d) found = std::move(*d);
    } else {
      found.kind = Discovery::Kind::temperror;
      found.problem = "no resolver";
    }

    if (found.kind == Discovery::Kind::temperror) {
      finish(tx, "temperror", domain, 'n', "none");
      log::info("dmarc", {{"session", tx.conn.id}, {"result", "temperror"}, {"domain", domain}, {"problem", found.problem}});
      if (tempfail_on_temperror_)
        co_return Verdict::tempfail(451, "4.7.1", "DMARC policy of " + domain + " unavailable, try again later");
      co_return Verdict::next();
    }
    if (found.kind == Discovery::Kind::none) {
      finish(tx, "none", domain, 'n', "none");
      if (!found.problem.empty()) log::debug("dmarc", {{"session", tx.conn.id}, {"domain", domain}, {"problem", found.problem}});
      co_return Verdict::next();
    }

    Identifiers ids;
    ids.from_domain = domain;
    if (tx.spf) {
      ids.spf_result = tx.spf->result;
      ids.spf_domain = tx.spf->domain;
    }
    for (auto& d : tx.dkim) ids.dkim.push_back({d.domain, d.selector, d.result});
    const Record& rec = found.record;
    Evaluation ev = evaluate(rec, ids, *org_, roll());

    Action act = Action::tag;
    if (ev.applied == 'r') act = on_reject_;
    else if (ev.applied == 'q') act = on_quarantine_;
    const char* dis = act == Action::reject ? "reject" : act == Action::quarantine ? "quarantine" : "none";
    finish(tx, ev.result, domain, ev.policy, dis);
    if (log::enabled(log::Level::debug))
      log::debug("dmarc", {{"session", tx.conn.id}, {"domain", domain}, {"record_domain", rec.domain},
                           {"result", ev.result}, {"policy", policy_word(ev.policy)}, {"disposition", dis},
                           {"sampled_out", ev.sampled_out}});

    if (reports_ && !rec.rua.empty()) co_await record(tx, ids, rec, ev, dis);

    if (act == Action::reject)
      co_return Verdict::reject(550, "5.7.1", "Message rejected by the DMARC policy of " + domain);
    if (act == Action::quarantine) tx.add_header(qh_name_, qh_value_);
    co_return Verdict::next();
  }

 private:
  void finish(Transaction& tx, const std::string& result, const std::string& domain, char policy, const char* dis) {
    std::string part = "dmarc=" + result + " (p=" + policy_word(policy) + " dis=" + dis + ")";
    if (!domain.empty()) part += " header.from=" + domain;
    tx.auth_results.push_back(part);
    tx.dmarc = DmarcFact{result, domain, policy_word(policy), dis};
    tx.verdicts.emplace_back(name_, result);
    if (auto it = results_.find(result); it != results_.end()) it->second->inc();
    if (auto it = dispositions_.find(dis); it != dispositions_.end()) it->second->inc();
  }

  Task<void> record(Transaction& tx, const Identifiers& ids, const Record& rec, const Evaluation& ev, const char* dis) {
    ReportRecord r;
    r.time = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    r.source_ip = tx.conn.client.ip;
    r.header_from = ids.from_domain;
    r.spf_scope = tx.spf && tx.spf->identity == "helo" ? "helo" : "mfrom";
    r.envelope_from = tx.spf ? tx.spf->domain : std::string();
    r.spf_result = ids.spf_result.empty() ? "none" : ids.spf_result;
    for (auto& d : ids.dkim) r.dkim.push_back({d.domain, d.selector, d.result});
    r.policy_domain = rec.domain;
    r.adkim = rec.adkim;
    r.aspf = rec.aspf;
    r.p = rec.p;
    r.sp = rec.sp;
    r.pct = rec.pct;
    r.fo = rec.fo;
    r.rua = rec.rua;
    r.disposition = dis;
    r.dkim_aligned = ev.dkim_aligned;
    r.spf_aligned = ev.spf_aligned;
    r.sampled_out = ev.sampled_out;
    auto res = co_await store_->log_append(kLog, r.encode());
    if (!res.ok) {
      record_errors_->inc();
      log::warn("dmarc_record", {{"session", tx.conn.id}, {"error", res.error}});
    }
  }

  std::shared_ptr<dns::Resolver> resolver_;
  std::shared_ptr<store::Store> store_;
  std::string name_;
  std::shared_ptr<OrgDomains> org_;
  Action on_reject_ = Action::reject, on_quarantine_ = Action::quarantine;
  bool tempfail_on_temperror_ = false;
  std::string qh_name_, qh_value_;
  bool reports_ = false;
  std::map<std::string, observe::Counter*> results_, dispositions_;
  observe::Counter* record_errors_ = nullptr;
};

GW_REGISTER_PLUGIN("dmarc", [](const PluginEnv& env) { return std::make_unique<DmarcPlugin>(env); });

}  // namespace
}  // namespace gw::dmarc
