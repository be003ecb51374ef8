// Test-only plugins "test_a" and "test_b" (linked into build/smtp-gateway-test, never into
// smtp-gateway). Each reads [plugins.test_X]:
//   rules = [{ stage = "rcpt", contains = "deny", verdict = "reject", code = 550, enhanced = "5.7.1", text = "..." }]
//   header = true       # at DATA, prepend "X-Test-Order: NAME" (shows the order plugins ran in)
//   set_fact = "v"      # at MAIL, leave fact test=v; a later plugin with show_fact copies it into a header
//   show_fact = true
//   remove_header = "X-Remove-Me"   # at DATA, remove that field from the message
//   delay = "200ms"     # every hook waits this long (asynchronously) first
//   delay_stage = "mail"  # only that stage's hook waits
//   block = true        # the wait blocks the thread (std::this_thread::sleep_for): the control case
//                       # that shows a test of "hooks never block" can fail
#include <thread>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "gateway/core/plugin.hpp"

namespace gw::testing {
namespace {

struct Rule {
  Stage stage;
  std::string contains;
  Verdict verdict;
};

class TestPlugin : public Plugin {
 public:
  TestPlugin(std::string name, const PluginEnv& env) : name_(std::move(name)) {
    const auto& t = env.table;
    t.allow_only({"rules", "header", "set_fact", "show_fact", "remove_header", "delay", "delay_stage", "block"});
    for (auto& r : t.tables("rules")) {
      r.allow_only({"stage", "contains", "verdict", "code", "enhanced", "text"});
      Rule rule;
      auto st = r.choice("stage", {"connect", "helo", "mail", "rcpt", "data"}).value_or("rcpt");
      rule.stage = st == "connect" ? Stage::connect : st == "helo" ? Stage::helo : st == "mail" ? Stage::mail
                 : st == "rcpt" ? Stage::rcpt : Stage::data;
      rule.contains = r.string("contains").value_or("");
      auto v = r.choice("verdict", {"accept", "reject", "tempfail"}).value_or("reject");
      int code = static_cast<int>(r.integer("code").value_or(v == "tempfail" ? 451 : 550));
      std::string enh = r.string("enhanced").value_or(v == "tempfail" ? "4.7.1" : "5.7.1");
      std::string text = r.string("text").value_or("test plugin " + name_);
      rule.verdict = v == "accept" ? Verdict::accept() : v == "reject" ? Verdict::reject(code, enh, text) : Verdict::tempfail(code, enh, text);
      rules_.push_back(rule);
    }
    header_ = t.boolean("header").value_or(false);
    set_fact_ = t.string("set_fact").value_or("");
    show_fact_ = t.boolean("show_fact").value_or(false);
    remove_header_ = t.string("remove_header").value_or("");
    delay_ = t.duration("delay").value_or(std::chrono::milliseconds(0));
    if (auto ds = t.choice("delay_stage", {"connect", "helo", "mail", "rcpt", "data"}))
      delay_stage_ = *ds == "connect" ? Stage::connect : *ds == "helo" ? Stage::helo : *ds == "mail" ? Stage::mail
                   : *ds == "rcpt" ? Stage::rcpt : Stage::data;
    block_ = t.boolean("block").value_or(false);
  }

  unsigned stages() const override { return Stage::connect | Stage::helo | Stage::mail | Stage::rcpt | Stage::data; }

  Task<Verdict> on_connect(Transaction& tx) override { co_return co_await match(Stage::connect, tx.conn.client.ip); }
  Task<Verdict> on_helo(Transaction&, std::string_view name) override { co_return co_await match(Stage::helo, name); }
  Task<Verdict> on_mail(Transaction& tx) override {
    if (!set_fact_.empty()) tx.facts["test"] = set_fact_;
    co_return co_await match(Stage::mail, tx.sender);
  }
  Task<Verdict> on_rcpt(Transaction&, const std::string& rcpt) override { co_return co_await match(Stage::rcpt, rcpt); }
  Task<Verdict> on_data(Transaction& tx) override {
    if (header_) tx.add_header("X-Test-Order", name_);
    if (show_fact_) tx.add_header("X-Test-Fact", tx.facts.count("test") ? tx.facts["test"] : "none");
    if (!remove_header_.empty()) {
      const auto& fields = tx.message.fields();
      for (size_t i = 0; i < fields.size(); ++i)
        if (iequals(tx.message.field_name(fields[i]), remove_header_)) tx.message.remove_field(i);
    }
    auto subject = tx.message.header("Subject").value_or("");
    co_return co_await match(Stage::data, subject);
  }

 private:
  Task<Verdict> match(Stage stage, std::string_view arg) {
    if (delay_.count() > 0 && delay_stage_ && *delay_stage_ != stage) {
    } else if (delay_.count() > 0 && block_) {
      std::this_thread::sleep_for(delay_);
    } else if (delay_.count() > 0) {
      boost::asio::steady_timer t(co_await boost::asio::this_coro::executor);
      t.expires_after(delay_);
      co_await t.async_wait(boost::asio::use_awaitable);
    }
    for (auto& r : rules_)
      if (r.stage == stage && arg.find(r.contains) != std::string_view::npos) co_return r.verdict;
    co_return Verdict::next();
  }

  std::string name_;
  std::vector<Rule> rules_;
  bool header_ = false;
  std::string set_fact_;
  bool show_fact_ = false;
  std::string remove_header_;
  std::chrono::milliseconds delay_{0};
  std::optional<Stage> delay_stage_;
  bool block_ = false;
};

GW_REGISTER_PLUGIN("test_a", [](const PluginEnv& env) { return std::make_unique<TestPlugin>("test_a", env); });
GW_REGISTER_PLUGIN("test_b", [](const PluginEnv& env) { return std::make_unique<TestPlugin>("test_b", env); });

}  // namespace
}  // namespace gw::testing
