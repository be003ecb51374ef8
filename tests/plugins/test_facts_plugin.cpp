// Test-only plugin "test_facts" (build/smtp-gateway-test only): leaves the facts other plugins would
// (SPF, DKIM, AUTH, reverse DNS) so the Lua tests can check what scripts see without DNS or TLS.
//   [plugins.test_facts]
//   rdns = "client.example.test"   # at connect: tx.conn.client.rdns
//   auth_user = "alice"            # at connect: tx.conn.auth_user
//   At DATA, from the message: "X-Test-Spf: RESULT [DOMAIN]" sets tx.spf, each
//   "X-Test-Dkim: DOMAIN SELECTOR RESULT" adds a tx.dkim entry, "X-Test-Dmarc: RESULT DOMAIN POLICY
//   DISPOSITION" sets tx.dmarc, each "X-Test-Dnsbl: ZONE WEIGHT CODE" adds a tx.dnsbl hit (score = sum),
//   "X-Test-Rspamd: ACTION SCORE REQUIRED [SYMBOL=SCORE...]" sets tx.rspamd (ACTION with _ for spaces).
//   When tx.dnsbl is set by a dnsbl plugin before it, adds "X-Test-Dnsbl-Fact: SCORE[ ZONE=WEIGHT=CODE...]".
#include <sstream>

#include "gateway/core/plugin.hpp"

namespace gw::testing {
namespace {

class FactsPlugin : public Plugin {
 public:
  explicit FactsPlugin(const PluginEnv& env) {
    env.table.allow_only({"rdns", "auth_user"});
    rdns_ = env.table.string("rdns").value_or("");
    auth_user_ = env.table.string("auth_user").value_or("");
  }
  unsigned stages() const override { return Stage::connect | Stage::data; }
  Task<Verdict> on_connect(Transaction& tx) override {
    if (!rdns_.empty()) tx.conn.client.rdns = rdns_;
    if (!auth_user_.empty()) tx.conn.auth_user = auth_user_;
    co_return Verdict::next();
  }
  Task<Verdict> on_data(Transaction& tx) override {
    if (auto spf = tx.message.header("X-Test-Spf")) {
      std::istringstream in(*spf);
      SpfFact f;
      in >> f.result >> f.domain;
      f.identity = "mailfrom";
      tx.spf = f;
    }
    for (auto& d : tx.message.headers("X-Test-Dkim")) {
      std::istringstream in(d);
      DkimFact f;
      in >> f.domain >> f.selector >> f.result;
      tx.dkim.push_back(f);
    }
    if (auto d = tx.message.header("X-Test-Dmarc")) {
      std::istringstream in(*d);
      DmarcFact f;
      in >> f.result >> f.domain >> f.policy >> f.disposition;
      tx.dmarc = f;
    }
    for (auto& d : tx.message.headers("X-Test-Dnsbl")) {
      std::istringstream in(d);
      DnsblHit h;
      in >> h.zone >> h.weight >> h.code;
      if (!tx.dnsbl) tx.dnsbl.emplace();
      tx.dnsbl->score += h.weight;
      tx.dnsbl->hits.push_back(h);
    }
    if (auto r = tx.message.header("X-Test-Rspamd")) {
      std::istringstream in(*r);
      RspamdFact f;
      in >> f.action >> f.score >> f.required_score;
      for (auto& ch : f.action)
        if (ch == '_') ch = ' ';
      std::string sym;
      while (in >> sym) {
        auto eq = sym.find('=');
        if (eq != std::string::npos) f.symbols.emplace_back(sym.substr(0, eq), std::stod(sym.substr(eq + 1)));
      }
      tx.rspamd = f;
    }
    if (tx.dnsbl) {
      std::string v = std::to_string(tx.dnsbl->score);
      for (auto& h : tx.dnsbl->hits) v += " " + h.zone + "=" + std::to_string(h.weight) + "=" + h.code;
      tx.add_header("X-Test-Dnsbl-Fact", v);
    }
    co_return Verdict::next();
  }

 private:
  std::string rdns_, auth_user_;
};

GW_REGISTER_PLUGIN("test_facts", [](const PluginEnv& env) { return std::make_unique<FactsPlugin>(env); });

}  // namespace
}  // namespace gw::testing
