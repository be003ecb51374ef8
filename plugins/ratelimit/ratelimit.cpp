#include "plugins/ratelimit/ratelimit.hpp"

#include <charconv>

#include "gateway/observe/log.hpp"
#include "gateway/observe/metrics.hpp"
#include "gateway/store/keys.hpp"
#include "gateway/store/store.hpp"

namespace gw::plugins::ratelimit {

const char* key_name(Key k) {
  switch (k) {
    case Key::client_ip: return "client_ip";
    case Key::client_net: return "client_net";
    case Key::sender: return "sender";
    case Key::sender_domain: return "sender_domain";
    case Key::auth_user: return "auth_user";
    case Key::recipient: return "recipient";
  }
  return "?";
}

const char* count_name(Count c) {
  switch (c) {
    case Count::messages: return "messages";
    case Count::recipients: return "recipients";
    case Count::connections: return "connections";
  }
  return "?";
}

std::optional<std::string> key_value(Key k, const Transaction& tx, const std::string* recipient) {
  switch (k) {
    case Key::client_ip: {
      // A session keeps its client address unmapped, with its text in client.ip: no formatting here.
      const auto& a = tx.conn.client.address;
      if (!tx.conn.client.ip.empty() && !(a.is_v6() && a.to_v6().is_v4_mapped())) return tx.conn.client.ip;
      return config::unmap(a).to_string();
    }
    case Key::client_net: return store::keys::client_net(tx.conn.client.address);
    case Key::sender: return tx.sender.empty() ? std::string("<>") : store::keys::lower(tx.sender);
    case Key::sender_domain: {
      auto d = store::keys::domain_of(tx.sender);
      return d.empty() ? std::string("<>") : d;
    }
    case Key::auth_user:
      if (!tx.conn.auth_user) return std::nullopt;
      return *tx.conn.auth_user;
    case Key::recipient:
      if (!recipient) return std::nullopt;
      return store::keys::lower(*recipient);
  }
  return std::nullopt;
}

std::string store_key(const Rule& r, const std::string& value) {
  // rl:<key>:<count's first letter>:<limit>/<per in ms>:<value>, built in one string (once per rule
  // and event).
  std::string k;
  k.reserve(48 + value.size());
  k += "rl:";
  k += key_name(r.key);
  k += ':';
  k += count_name(r.count)[0];
  k += ':';
  char num[24];
  k.append(num, std::to_chars(num, num + sizeof num, r.limit).ptr);
  k += '/';
  k.append(num, std::to_chars(num, num + sizeof num, static_cast<std::int64_t>(r.per.count())).ptr);
  k += ':';
  k += value;
  return k;
}

Settings parse(const config::Table& t) {
  Settings s;
  t.allow_only({"rules", "on_store_error"});
  s.tempfail_on_store_error = t.choice("on_store_error", {"accept", "tempfail"}).value_or("accept") == "tempfail";
  for (auto& rt : t.tables("rules")) {
    rt.allow_only({"key", "limit", "per", "action", "count", "name"});
    Rule r;
    auto key = rt.choice("key", {"client_ip", "client_net", "sender", "sender_domain", "auth_user", "recipient"});
    if (!key) rt.fail("", "a rule needs key = \"client_ip\" | \"client_net\" | \"sender\" | \"sender_domain\" | \"auth_user\" | \"recipient\"");
    r.key = *key == "client_ip" ? Key::client_ip : *key == "client_net" ? Key::client_net : *key == "sender" ? Key::sender
          : *key == "sender_domain" ? Key::sender_domain : *key == "auth_user" ? Key::auth_user : Key::recipient;
    auto limit = rt.integer("limit");
    if (!limit) rt.fail("", "a rule needs limit = N (events per `per`)");
    if (*limit <= 0) rt.fail("limit", "limit must be a positive integer");
    r.limit = *limit;
    r.per = rt.duration("per", r.per);
    if (r.per.count() <= 0) rt.fail("per", "per must be a positive duration");
    r.per_text = config::format_duration(r.per);
    auto action = rt.choice("action", {"tempfail", "defer", "reject", "log"}).value_or("tempfail");
    r.action = action == "tempfail" ? Action::tempfail : action == "defer" ? Action::defer
             : action == "reject" ? Action::reject : Action::log;
    auto count = rt.choice("count", {"messages", "recipients", "connections"}).value_or("messages");
    r.count = count == "messages" ? Count::messages : count == "recipients" ? Count::recipients : Count::connections;
    if (r.count == Count::connections && r.key != Key::client_ip && r.key != Key::client_net)
      rt.fail("key", "count = \"connections\" is counted at connect, where only client_ip and client_net are known");
    if (r.count == Count::messages && r.key == Key::recipient)
      rt.fail("key", "key = \"recipient\" needs count = \"recipients\" (messages are counted at MAIL, before any recipient)");
    r.name = rt.string("name").value_or(key_name(r.key));
    s.rules.push_back(std::move(r));
  }
  return s;
}

namespace {

class RateLimit : public Plugin {
 public:
  explicit RateLimit(const PluginEnv& env) : settings_(parse(env.table)), store_(env.services.store) {
    for (auto& r : settings_.rules)
      stages_ |= static_cast<unsigned>(r.count == Count::connections ? Stage::connect
                                       : r.count == Count::messages  ? Stage::mail
                                                                      : Stage::rcpt);
  }

  unsigned stages() const override { return stages_; }

  Task<Verdict> on_connect(Transaction& tx) override { co_return co_await check(Count::connections, tx, nullptr); }
  Task<Verdict> on_mail(Transaction& tx) override { co_return co_await check(Count::messages, tx, nullptr); }
  Task<Verdict> on_rcpt(Transaction& tx, const std::string& rcpt) override {
    co_return co_await check(Count::recipients, tx, &rcpt);
  }

 private:
  Task<Verdict> check(Count count, Transaction& tx, const std::string* rcpt) {
    static auto& metrics = observe::Metrics::instance();
    for (auto& r : settings_.rules) {
      if (r.count != count) continue;
      auto value = key_value(r.key, tx, rcpt);
      if (!value) continue;
      store::Result<store::RateDecision> d;
      if (store_) d = co_await store_->rate(store_key(r, *value), r.limit, r.per, 1);
      else d.error = "no store";
      if (!d.ok) {
        metrics.counter("smtpgw_store_errors_total", "Store operations that failed, by plugin", R"(plugin="ratelimit")").inc();
        log::warn("ratelimit_store_error", {{"session", tx.conn.id}, {"rule", r.name}, {"error", d.error},
                                            {"action", settings_.tempfail_on_store_error ? "tempfail" : "accept"}});
        if (settings_.tempfail_on_store_error)
          co_return Verdict::tempfail(451, "4.7.1", "Rate limit check unavailable, try again later");
        continue;
      }
      if (d.value.allowed) continue;
      metrics.counter("smtpgw_ratelimit_exceeded_total", "Events over a ratelimit rule, by rule",
                      "rule=\"" + r.name + "\"").inc();
      auto secs = std::max<std::int64_t>(1, (d.value.retry_after.count() + 999) / 1000);
      std::string text = "Rate limit exceeded: at most " + std::to_string(r.limit) + " " + count_name(r.count) +
                         " per " + r.per_text + " for " + key_name(r.key) + " " + *value + ", try again in " +
                         std::to_string(secs) + "s";
      log::info("ratelimit_exceeded", {{"session", tx.conn.id}, {"rule", r.name}, {"key", key_name(r.key)},
                                       {"value", *value}, {"limit", r.limit}, {"per", r.per_text},
                                       {"count", count_name(r.count)},
                                       {"action", r.action == Action::log ? "log" : "refuse"}});
      switch (r.action) {
        case Action::tempfail: co_return Verdict::tempfail(451, "4.7.1", text);
        case Action::defer: co_return Verdict::tempfail(450, "4.7.1", text);
        case Action::reject: co_return Verdict::reject(550, "5.7.1", text);
        case Action::log: break;
      }
    }
    co_return Verdict::next();
  }

  Settings settings_;
  std::shared_ptr<store::Store> store_;
  unsigned stages_ = 0;
};

GW_REGISTER_PLUGIN("ratelimit", [](const PluginEnv& env) -> std::unique_ptr<Plugin> {
  return std::make_unique<RateLimit>(env);
});

}  // namespace
}  // namespace gw::plugins::ratelimit
