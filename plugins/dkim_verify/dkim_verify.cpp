// dkim_verify: checks every DKIM-Signature of inbound mail. Key records come from the gateway's
// asynchronous resolver (fetched once the message is in, before libopendkim runs), so the library
// never does DNS itself. Results go into tx.dkim and the one Authentication-Results header.
#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "gateway/core/plugin.hpp"
#include "gateway/dns/resolver.hpp"
#include "gateway/observe/log.hpp"
#include "gateway/observe/metrics.hpp"
#include "plugins/dkim_verify/verifier.hpp"

namespace gw::dkim {
namespace {

namespace asio = boost::asio;

constexpr size_t kMaxLookups = 10;  // distinct key names fetched per message

class DkimVerify : public Plugin {
 public:
  explicit DkimVerify(const PluginEnv& env) : resolver_(env.services.resolver) {
    env.table.allow_only({"on_fail"});
    on_fail_ = env.table.choice("on_fail", {"reject", "tempfail", "tag"}).value_or("tag");
    verifier_ = std::make_shared<Verifier>();
    for (const char* r : {"pass", "fail", "neutral", "policy", "temperror", "permerror", "none"})
      counters_[r] = &observe::Metrics::instance().counter(
          "smtpgw_dkim_verify_results_total", "DKIM signatures verified, by result", std::string("result=\"") + r + "\"");
  }

  void count(const std::string& result) {
    auto it = counters_.find(result);
    if (it != counters_.end()) it->second->inc();
  }

  unsigned stages() const override { return static_cast<unsigned>(Stage::data); }

  Task<Verdict> on_data(Transaction& tx) override {
    if (tx.conn.outbound()) co_return Verdict::next();  // our own users' mail: dkim_sign's business
    auto refs = signature_refs(tx.message);
    KeyMap keys;
    std::vector<std::string> names;
    for (auto& r : refs) {
      std::string n = r.key_name();
      if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
    }
    for (auto& n : names) keys.emplace(n, KeyAnswer{});  // temperror unless answered below
    if (names.size() > kMaxLookups) names.resize(kMaxLookups);
    if (resolver_ && !names.empty()) {
      // all key lookups at once: a message's wait is its slowest key, not the sum
      auto ex = co_await asio::this_coro::executor;
      using Op = decltype(asio::co_spawn(ex, resolver_->query(std::string(), dns::Type::TXT), asio::deferred));
      std::vector<Op> ops;
      for (auto& n : names) ops.push_back(asio::co_spawn(ex, resolver_->query(n, dns::Type::TXT), asio::deferred));
      auto [order, errors, answers] = co_await asio::experimental::make_parallel_group(std::move(ops))
                                          .async_wait(asio::experimental::wait_for_all(), asio::use_awaitable);
      for (size_t i = 0; i < names.size(); ++i) {
        if (errors[i]) continue;  // a resolver exception counts as temperror
        KeyAnswer& a = keys[names[i]];
        a.status = answers[i].status;
        a.records = std::move(answers[i].records);
      }
    }
    auto results = verifier_->verify(tx.message, keys, tx.id.empty() ? "gw" : tx.id);
    if (results.empty()) {
      tx.auth_results.push_back("dkim=none");
      count("none");
      co_return Verdict::next();
    }
    bool pass = false, fail = false;
    for (auto& r : results) {
      tx.dkim.push_back(DkimFact{r.domain, r.selector, r.result, r.b});
      tx.auth_results.push_back(auth_results_part(r));
      count(r.result);
      pass = pass || r.result == "pass";
      fail = fail || r.result == "fail";
      if (log::enabled(log::Level::debug))
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
  std::map<std::string, observe::Counter*> counters_;
};

GW_REGISTER_PLUGIN("dkim_verify", [](const PluginEnv& env) { return std::make_unique<DkimVerify>(env); });

}  // namespace
}  // namespace gw::dkim
