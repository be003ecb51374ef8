// dkim_verify: checks every DKIM-Signature of inbound mail. Key records come from the gateway's
// asynchronous resolver (fetched once the message is in, before libopendkim runs), so the library
// never does DNS itself. Results go into tx.dkim and the one Authentication-Results header.
#include <memory>
#include <set>
#include <string>

#include "gateway/core/plugin.hpp"
#include "gateway/dns/resolver.hpp"
#include "gateway/observe/log.hpp"
#include "plugins/dkim_verify/verifier.hpp"

namespace gw::dkim {
namespace {

constexpr size_t kMaxLookups = 10;  // distinct key names fetched per message

class DkimVerify : public Plugin {
 public:
  explicit DkimVerify(const PluginEnv& env) : resolver_(env.services.resolver) {
    env.table.allow_only({"on_fail"});
    on_fail_ = env.table.choice("on_fail", {"reject", "tempfail", "tag"}).value_or("tag");
    verifier_ = std::make_shared<Verifier>();
  }

  unsigned stages() const override { return static_cast<unsigned>(Stage::data); }

  Task<Verdict> on_data(Transaction& tx) override {
    if (tx.conn.outbound()) co_return Verdict::next();  // our own users' mail: dkim_sign's business
    auto refs = signature_refs(tx.message);
    KeyMap keys;
    std::set<std::string> names;
    for (auto& r : refs) names.insert(r.key_name());
    size_t n = 0;
    for (auto& name : names) {
      KeyAnswer a;
      if (resolver_ && n++ < kMaxLookups) {
        dns::Answer ans = co_await resolver_->query(name, dns::Type::TXT);
        a.status = ans.status;
        a.records = std::move(ans.records);
      }  // else: no resolver (or too many keys): temperror
      keys.emplace(name, std::move(a));
    }
    auto results = verifier_->verify(tx.message, keys, tx.id.empty() ? "gw" : tx.id);
    if (results.empty()) {
      tx.auth_results.push_back("dkim=none");
      co_return Verdict::next();
    }
    bool pass = false, fail = false;
    for (auto& r : results) {
      tx.dkim.push_back(DkimFact{r.domain, r.selector, r.result, r.b});
      tx.auth_results.push_back(auth_results_part(r));
      pass = pass || r.result == "pass";
      fail = fail || r.result == "fail";
      log::debug("dkim_verify", {{"session", tx.conn.id}, {"domain", r.domain}, {"selector", r.selector},
                                 {"result", r.result}, {"reason", r.reason}});
    }
    if (fail && !pass) {
      if (on_fail_ == "reject") co_return Verdict::reject(550, "5.7.20", "DKIM signature verification failed");
      if (on_fail_ == "tempfail") co_return Verdict::tempfail(451, "4.7.20", "DKIM signature verification failed, try again later");
    }
    co_return Verdict::next();
  }

 private:
  std::shared_ptr<dns::Resolver> resolver_;
  std::shared_ptr<Verifier> verifier_;
  std::string on_fail_;
};

GW_REGISTER_PLUGIN("dkim_verify", [](const PluginEnv& env) { return std::make_unique<DkimVerify>(env); });

}  // namespace
}  // namespace gw::dkim
