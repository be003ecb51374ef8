// The greylist plugin ([plugins.greylist], docs/store.md). Decides at RCPT, per recipient, on the
// triplet (client /24 or /64, normalised sender, recipient):
//   gl:w:TRIPLET  passed triplet, lives whitelist_after from its successful retry
//   gl:t:TRIPLET  first try time (ms since the epoch), lives `expire` from the first try
//   gl:c:NET      messages of the client network that passed greylisting (auto-whitelist)
// A message counts as passed at DATA when one of its recipients passed by its triplet.
#include <algorithm>

#include "gateway/config/network.hpp"
#include "gateway/core/plugin.hpp"
#include "gateway/observe/log.hpp"
#include "gateway/observe/metrics.hpp"
#include "gateway/store/keys.hpp"
#include "gateway/store/store.hpp"

namespace gw::plugins::greylist {
namespace {

using namespace std::chrono_literals;

struct Settings {
  std::chrono::milliseconds delay = 5min;
  std::chrono::milliseconds expire = 4h;
  std::chrono::milliseconds whitelist_after = std::chrono::hours(24 * 36);
  std::int64_t auto_whitelist_after = 5;
  std::vector<config::Network> skip;
  bool tempfail_on_store_error = false;
};

Settings parse(const config::Table& t) {
  Settings s;
  t.allow_only({"delay", "expire", "whitelist_after", "auto_whitelist_after", "skip_networks", "on_store_error"});
  s.delay = t.duration("delay", s.delay);
  s.expire = t.duration("expire", s.expire);
  s.whitelist_after = t.duration("whitelist_after", s.whitelist_after);
  if (s.delay.count() < 0) t.fail("delay", "delay must not be negative");
  if (s.expire <= s.delay) t.fail("expire", "expire must be longer than delay");
  if (s.whitelist_after.count() <= 0) t.fail("whitelist_after", "whitelist_after must be positive");
  s.auto_whitelist_after = t.integer("auto_whitelist_after", s.auto_whitelist_after);
  if (s.auto_whitelist_after < 0) t.fail("auto_whitelist_after", "auto_whitelist_after must be 0 (off) or more");
  for (auto& n : t.strings("skip_networks").value_or(std::vector<std::string>{})) {
    auto net = config::Network::parse(n);
    if (!net) t.fail("skip_networks", "not a network: \"" + n + "\" (expected e.g. 192.0.2.0/24 or 2001:db8::/32)");
    s.skip.push_back(*net);
  }
  s.tempfail_on_store_error = t.choice("on_store_error", {"accept", "tempfail"}).value_or("accept") == "tempfail";
  return s;
}

class Greylist : public Plugin {
 public:
  explicit Greylist(const PluginEnv& env) : s_(parse(env.table)), store_(env.services.store) {}

  unsigned stages() const override { return Stage::rcpt | Stage::data; }

  Task<Verdict> on_rcpt(Transaction& tx, const std::string& rcpt) override {
    if (tx.conn.outbound()) co_return Verdict::next();
    for (auto& n : s_.skip)
      if (n.contains(tx.conn.client.address)) co_return Verdict::next();
    if (!store_) co_return store_error(tx, "no store");

    const std::string net = store::keys::client_net(tx.conn.client.address);
    if (s_.auto_whitelist_after > 0) {
      auto it = tx.facts.find("greylist.client");
      if (it == tx.facts.end()) {
        auto c = co_await store_->get("gl:c:" + net);
        if (!c.ok) co_return store_error(tx, c.error);
        auto n = c.value ? store::parse_int(*c.value).value_or(0) : 0;
        it = tx.facts.emplace("greylist.client", n >= s_.auto_whitelist_after ? "whitelisted" : "greylisted").first;
      }
      if (it->second == "whitelisted") co_return Verdict::next();
    }

    const std::string sender = store::keys::normalize_sender(tx.sender);
    const std::string triplet = net + "|" + sender + "|" + store::keys::lower(rcpt);

    auto w = co_await store_->get("gl:w:" + triplet);
    if (!w.ok) co_return store_error(tx, w.error);
    if (w.value) {
      tx.facts["greylist.passed"] = "1";
      co_return Verdict::next();
    }

    const std::int64_t now = store::now_ms();
    auto first = co_await store_->set_if_absent("gl:t:" + triplet, std::to_string(now), s_.expire);
    if (!first.ok) co_return store_error(tx, first.error);
    std::int64_t waited = 0;
    if (!first.value) {
      auto t = co_await store_->get("gl:t:" + triplet);
      if (!t.ok) co_return store_error(tx, t.error);
      if (t.value) waited = now - store::parse_int(*t.value).value_or(now);
    }
    if (first.value || waited < s_.delay.count()) {
      const std::int64_t left = std::max<std::int64_t>(1, (s_.delay.count() - waited + 999) / 1000);
      static auto& greylisted = observe::Metrics::instance().counter(
          "smtpgw_greylist_total", "Greylist decisions", R"(result="greylisted")");
      greylisted.inc();
      log::info("greylisted", {{"session", tx.conn.id}, {"client_net", net}, {"sender", sender}, {"rcpt", rcpt},
                               {"attempt", first.value ? "first" : "early"}, {"retry_in_s", left}});
      co_return Verdict::tempfail(451, "4.7.1", std::string("Greylisted") +
                                                    (first.value ? ", first delivery attempt" : ", retried too early") +
                                                    ": please try again in " + std::to_string(left) + " seconds");
    }
    auto set = co_await store_->set("gl:w:" + triplet, "1", s_.whitelist_after);
    if (!set.ok) co_return store_error(tx, set.error);
    static auto& passed = observe::Metrics::instance().counter("smtpgw_greylist_total", "Greylist decisions",
                                                               R"(result="passed")");
    passed.inc();
    log::info("greylist_passed", {{"session", tx.conn.id}, {"client_net", net}, {"sender", sender}, {"rcpt", rcpt},
                                  {"waited_s", waited / 1000}});
    tx.facts["greylist.passed"] = "1";
    co_return Verdict::next();
  }

  Task<Verdict> on_data(Transaction& tx) override {
    if (s_.auto_whitelist_after <= 0 || !store_ || !tx.facts.count("greylist.passed")) co_return Verdict::next();
    const std::string net = store::keys::client_net(tx.conn.client.address);
    auto r = co_await store_->incr("gl:c:" + net, 1, s_.whitelist_after);
    if (!r.ok) {
      log::warn("greylist_store_error", {{"session", tx.conn.id}, {"error", r.error}, {"action", "accept"}});
    } else if (r.value == s_.auto_whitelist_after) {
      log::info("greylist_auto_whitelisted", {{"session", tx.conn.id}, {"client_net", net}, {"messages", r.value}});
    }
    co_return Verdict::next();
  }

 private:
  Verdict store_error(Transaction& tx, const std::string& error) {
    static auto& errors = observe::Metrics::instance().counter(
        "smtpgw_store_errors_total", "Store operations that failed, by plugin", R"(plugin="greylist")");
    errors.inc();
    log::warn("greylist_store_error", {{"session", tx.conn.id}, {"error", error},
                                       {"action", s_.tempfail_on_store_error ? "tempfail" : "accept"}});
    if (s_.tempfail_on_store_error) return Verdict::tempfail(451, "4.7.1", "Greylisting unavailable, please try again later");
    return Verdict::next();
  }

  Settings s_;
  std::shared_ptr<store::Store> store_;
};

GW_REGISTER_PLUGIN("greylist", [](const PluginEnv& env) -> std::unique_ptr<Plugin> {
  return std::make_unique<Greylist>(env);
});

}  // namespace
}  // namespace gw::plugins::greylist
