// The "dnsbl" plugin: DNS block and allow lists (RFC 5782), configured in [plugins.dnsbl]
// (docs/dnsbl.md). Client lists are queried at connect, all at once and in the background; sender
// domain lists at MAIL. The score (the summed weights of the lists that hit) refuses every RCPT
// when it reaches the threshold, or the connection itself with reject_at = "connect". Trusted
// clients are never looked up; an authenticated client is never refused (what was looked up before
// AUTH is ignored). The result is left in tx.dnsbl for a later plugin (Lua's tx.dnsbl).
#include <boost/asio/this_coro.hpp>

#include "gateway/core/plugin.hpp"
#include "gateway/observe/log.hpp"
#include "plugins/dnsbl/lookups.hpp"
#include "plugins/dnsbl/rules.hpp"
#include "plugins/dnsbl/settings.hpp"

namespace gw::plugins::dnsbl {
namespace {

namespace asio = boost::asio;

// Kept in tx.conn.plugin_state for the whole session.
struct SessionState {
  std::shared_ptr<Batch> client;  // started at connect; null for a client not looked up
  std::shared_ptr<Batch> domain;  // of transaction domain_tx; null without a sender domain
  std::string domain_name;
  std::string domain_tx;  // tx.id of the MAIL that started `domain`
};

class Dnsbl : public Plugin {
 public:
  explicit Dnsbl(const PluginEnv& env)
      : s_(parse_settings(env.table, env.config.dns.timeout)), resolver_(env.services.resolver), key_(env.name) {}

  unsigned stages() const override { return Stage::connect | Stage::mail | Stage::rcpt; }

  Task<Verdict> on_connect(Transaction& tx) override {
    if (tx.conn.trusted || s_->lists.empty()) co_return Verdict::next();
    auto st = state(tx);
    const auto& addr = tx.conn.client.address;
    st->client = std::make_shared<Batch>(co_await asio::this_coro::executor, s_, tx.conn.id, "client", tx.conn.client.ip);
    for (auto& l : s_->lists) {
      std::string name;
      if (addr.is_v4() || l.ipv6) name = client_query_name(addr, l.zone).value_or("");
      st->client->add(l, std::move(name));
    }
    st->client->start(resolver_);
    // A submission listener's clients authenticate later: they are only ever refused at RCPT.
    if (!s_->reject_at_connect || tx.conn.role == config::Role::submission) co_return Verdict::next();
    co_await st->client->wait();
    co_return judge(tx, *st, "connect", nullptr);
  }

  Task<Verdict> on_mail(Transaction& tx) override {
    if (tx.conn.outbound()) co_return Verdict::next();
    auto st = state(tx);
    st->domain.reset();
    st->domain_tx = tx.id;
    st->domain_name = s_->domain_lists.empty() ? std::string() : sender_domain(tx.sender);
    if (!st->domain_name.empty()) {
      st->domain = std::make_shared<Batch>(co_await asio::this_coro::executor, s_, tx.conn.id, "domain", st->domain_name);
      for (auto& l : s_->domain_lists) st->domain->add(l, domain_query_name(st->domain_name, l.zone).value_or(""));
      st->domain->start(resolver_);
    }
    if (!st->client && !st->domain) co_return Verdict::next();
    co_await wait_all(*st);
    fill(tx, evaluate(*st));  // the refusal itself comes at RCPT
    co_return Verdict::next();
  }

  Task<Verdict> on_rcpt(Transaction& tx, const std::string& rcpt) override {
    if (tx.conn.outbound()) co_return Verdict::next();
    auto st = tx.conn.state<SessionState>(key_);
    if (!st) co_return Verdict::next();
    // An earlier plugin's accept at MAIL skips ours: a previous transaction's domain lists do not apply.
    if (st->domain_tx != tx.id) {
      st->domain.reset();
      st->domain_name.clear();
    }
    if (!st->client && !st->domain) co_return Verdict::next();
    co_await wait_all(*st);
    co_return judge(tx, *st, "rcpt", &rcpt);
  }

 private:
  struct Evaluation {
    std::vector<Scored> lists;
    Score score;
  };

  std::shared_ptr<SessionState> state(Transaction& tx) {
    auto st = tx.conn.state<SessionState>(key_);
    if (!st) {
      st = std::make_shared<SessionState>();
      tx.conn.plugin_state[key_] = st;
    }
    return st;
  }

  static Task<void> wait_all(SessionState& st) {
    if (st.client && !st.client->done()) co_await st.client->wait();
    if (st.domain && !st.domain->done()) co_await st.domain->wait();
  }

  // Note: the Scored entries point into the batches' outcomes; `st` outlives the Evaluation.
  static std::unique_ptr<Evaluation> evaluate(const SessionState& st) {
    auto e = std::make_unique<Evaluation>();
    for (auto* b : {st.client.get(), st.domain.get()}) {
      if (!b) continue;
      for (auto& it : b->items()) e->lists.push_back(Scored{it.list->zone, it.list->weight, it.list->domain, &it.outcome});
    }
    e->score = score(e->lists);
    return e;
  }

  static void fill(Transaction& tx, const std::unique_ptr<Evaluation>& e) {
    DnsblFact f;
    f.score = e->score.score;
    for (auto* h : e->score.hits) f.hits.push_back(DnsblHit{h->zone, h->weight, h->outcome->code});
    tx.dnsbl = std::move(f);
  }

  Verdict judge(Transaction& tx, const SessionState& st, const char* stage, const std::string* rcpt) {
    auto e = evaluate(st);
    fill(tx, e);
    const Score& sc = e->score;
    switch (decide(sc, s_->threshold, s_->tempfail_on_error)) {
      case Decision::pass:
        return Verdict::next();
      case Decision::reject: {
        const Scored* top = sc.top;
        std::string text = top && top->domain
                               ? "Sender domain " + st.domain_name + " blocked using " + top->zone
                               : "Service unavailable; client [" + tx.conn.client.ip + "] blocked using " +
                                     (top ? top->zone : std::string("DNS lists"));
        log::info("dnsbl_refused", {{"session", tx.conn.id}, {"client", tx.conn.client.ip}, {"stage", stage},
                                    {"rcpt", rcpt ? *rcpt : std::string()}, {"score", sc.score},
                                    {"threshold", s_->threshold}, {"zone", top ? top->zone : std::string()}});
        return Verdict::reject(554, "5.7.1", std::move(text));
      }
      case Decision::tempfail: {
        if (!rcpt) return Verdict::next();  // on_error = tempfail answers at RCPT, not at connect
        std::string zones;
        for (auto* f : sc.failed) zones += (zones.empty() ? "" : ", ") + f->zone;
        log::info("dnsbl_tempfail", {{"session", tx.conn.id}, {"client", tx.conn.client.ip}, {"stage", stage},
                                     {"rcpt", *rcpt}, {"failed", zones}});
        return Verdict::tempfail(451, "4.7.1", "DNS list lookup failed (" + zones + "), try again later");
      }
    }
    return Verdict::next();
  }

  std::shared_ptr<const Settings> s_;
  std::shared_ptr<dns::Resolver> resolver_;
  std::string key_;
};

GW_REGISTER_PLUGIN("dnsbl", [](const PluginEnv& env) -> std::unique_ptr<Plugin> {
  return std::make_unique<Dnsbl>(env);
});

}  // namespace
}  // namespace gw::plugins::dnsbl
