// Pipeline and Transaction with tiny plugins defined here: the order the stages run in, which verdict
// wins, per-recipient refusals, the reset/disconnect notifications and the verdict counters.
#include "gateway/core/pipeline.hpp"

#include <filesystem>
#include <fstream>
#include <stdexcept>

#include <gtest/gtest.h>

#include "gateway/observe/metrics.hpp"
#include "tests/unit/store/store_test_util.hpp"

using namespace gw;

namespace {

// What the test plugins saw, "name:stage[:arg]", in call order.
std::vector<std::string>& journal() {
  static std::vector<std::string> j;
  return j;
}

constexpr unsigned kAll = Stage::connect | Stage::helo | Stage::mail | Stage::rcpt | Stage::data | Stage::reset | Stage::disconnect;

// Records every hook and answers `verdict` at the stages in `answer_at`; "next" everywhere else.
class Recorder : public Plugin {
 public:
  Recorder(std::string name, unsigned stages, Verdict verdict = Verdict::next(), unsigned answer_at = 0)
      : name_(std::move(name)), stages_(stages), verdict_(std::move(verdict)), answer_at_(answer_at) {}
  unsigned stages() const override { return stages_; }
  Task<Verdict> on_connect(Transaction&) override { co_return note(Stage::connect, ""); }
  Task<Verdict> on_helo(Transaction&, std::string_view name) override { co_return note(Stage::helo, std::string(name)); }
  Task<Verdict> on_mail(Transaction& tx) override { co_return note(Stage::mail, tx.sender); }
  Task<Verdict> on_rcpt(Transaction&, const std::string& r) override {
    // ut_rcpt refuses the recipients of example.invalid only.
    if (name_ == "ut_rcpt" && r.ends_with("@example.invalid")) {
      note(Stage::rcpt, r);
      co_return Verdict::reject(550, "5.1.1", "no such user");
    }
    co_return note(Stage::rcpt, r);
  }
  Task<Verdict> on_data(Transaction&) override { co_return note(Stage::data, ""); }
  Task<void> on_reset(Transaction& tx) override {
    journal().push_back(name_ + ":reset:" + tx.sender);  // tx still holds the transaction
    if (name_ == "ut_throw") throw std::runtime_error("boom");
    co_return;
  }
  Task<void> on_disconnect(Transaction&) override {
    journal().push_back(name_ + ":disconnect");
    if (name_ == "ut_throw") throw std::runtime_error("boom");
    co_return;
  }

 private:
  Verdict note(Stage s, const std::string& arg) {
    journal().push_back(name_ + ":" + stage_name(s) + (arg.empty() ? "" : ":" + arg));
    return (answer_at_ & static_cast<unsigned>(s)) ? verdict_ : Verdict::next();
  }
  std::string name_;
  unsigned stages_;
  Verdict verdict_;
  unsigned answer_at_;
};

const unsigned kMailData = Stage::mail | Stage::data;
GW_REGISTER_PLUGIN("ut_rec", [](const PluginEnv& env) { return std::make_unique<Recorder>(env.name, kAll); });
GW_REGISTER_PLUGIN("ut_mail_only", [](const PluginEnv& env) {
  return std::make_unique<Recorder>(env.name, static_cast<unsigned>(Stage::mail));
});
GW_REGISTER_PLUGIN("ut_reject", [](const PluginEnv& env) {
  return std::make_unique<Recorder>(env.name, kAll, Verdict::reject(550, "5.7.1", "rejected by test"), kMailData);
});
GW_REGISTER_PLUGIN("ut_tempfail", [](const PluginEnv& env) {
  return std::make_unique<Recorder>(env.name, kAll, Verdict::tempfail(451, "4.7.1", "later"), kMailData);
});
GW_REGISTER_PLUGIN("ut_accept", [](const PluginEnv& env) {
  return std::make_unique<Recorder>(env.name, kAll, Verdict::accept(), kMailData);
});
GW_REGISTER_PLUGIN("ut_rcpt", [](const PluginEnv& env) { return std::make_unique<Recorder>(env.name, kAll); });
GW_REGISTER_PLUGIN("ut_throw", [](const PluginEnv& env) {
  return std::make_unique<Recorder>(env.name, Stage::reset | Stage::disconnect);
});

struct TempDir {
  std::string path = gw::testing::temp_dir("pipeline");
  TempDir() { std::filesystem::create_directories(path); }
  ~TempDir() { std::filesystem::remove_all(path); }
};

struct Built {
  TempDir tmp;  // removed even when build() throws
  const std::string& dir = tmp.path;
  std::shared_ptr<const config::Config> cfg;
  Services services;
  std::shared_ptr<Pipeline> pipeline;
  explicit Built(const std::vector<std::string>& names, const std::string& extra = "") {
    std::string list;
    for (auto& n : names) list += (list.empty() ? "\"" : ", \"") + n + "\"";
    std::ofstream(dir + "/gw.toml") << "pipeline = [" << list << "]\n[[listener]]\naddress = \"127.0.0.1:2525\"\n"
                                    << "[upstream]\nservers = [\"127.0.0.1:10025\"]\n" << extra;
    cfg = config::load_config(dir + "/gw.toml");
    pipeline = Pipeline::build(*cfg, services);
    journal().clear();
  }
};

template <typename T>
T sync(boost::asio::awaitable<T> a) {
  boost::asio::io_context io;
  return gw::testing::run_on(io, std::move(a));
}
void sync(boost::asio::awaitable<void> a) {
  boost::asio::io_context io;
  auto wrapped = [](boost::asio::awaitable<void> inner) -> boost::asio::awaitable<int> {
    co_await std::move(inner);
    co_return 0;
  };
  gw::testing::run_on(io, wrapped(std::move(a)));
}

Transaction tx_from(std::string sender) {
  Transaction tx;
  tx.conn.id = "unit";
  tx.sender = std::move(sender);
  tx.has_sender = true;
  return tx;
}

std::uint64_t verdict_count(const std::string& plugin, const std::string& verdict) {
  return observe::Metrics::instance()
      .counter("smtpgw_plugin_verdicts_total", "Verdicts other than continue, by plugin",
               "plugin=\"" + plugin + "\",verdict=\"" + verdict + "\"")
      .value.load();
}

using J = std::vector<std::string>;

}  // namespace

TEST(Pipeline, EveryStageRunsThePluginsInPipelineOrder) {
  Built b({"ut_rec:a", "ut_rec:b", "ut_rec:c"});
  EXPECT_EQ(b.pipeline->names(), (J{"ut_rec:a", "ut_rec:b", "ut_rec:c"}));
  auto tx = tx_from("s@example.org");
  EXPECT_FALSE(sync(b.pipeline->run(Stage::connect, tx)).stops());
  EXPECT_FALSE(sync(b.pipeline->run(Stage::helo, tx, "client.example")).stops());
  EXPECT_FALSE(sync(b.pipeline->run(Stage::mail, tx)).stops());
  EXPECT_FALSE(sync(b.pipeline->run(Stage::rcpt, tx, "r@example.net")).stops());
  EXPECT_FALSE(sync(b.pipeline->run(Stage::data, tx)).stops());
  EXPECT_EQ(journal(), (J{"ut_rec:a:connect", "ut_rec:b:connect", "ut_rec:c:connect",
                          "ut_rec:a:helo:client.example", "ut_rec:b:helo:client.example", "ut_rec:c:helo:client.example",
                          "ut_rec:a:mail:s@example.org", "ut_rec:b:mail:s@example.org", "ut_rec:c:mail:s@example.org",
                          "ut_rec:a:rcpt:r@example.net", "ut_rec:b:rcpt:r@example.net", "ut_rec:c:rcpt:r@example.net",
                          "ut_rec:a:data", "ut_rec:b:data", "ut_rec:c:data"}));
  EXPECT_TRUE(tx.verdicts.empty());  // "continue" is not recorded
}

TEST(Pipeline, FirstRejectWinsAndLaterPluginsDoNotRun) {
  Built b({"ut_rec:a", "ut_reject", "ut_tempfail", "ut_rec:z"});
  auto tx = tx_from("s@example.org");
  Verdict v = sync(b.pipeline->run(Stage::mail, tx));
  EXPECT_EQ(v.kind, Verdict::Kind::reject);
  EXPECT_EQ(v.code, 550);
  EXPECT_EQ(v.enhanced, "5.7.1");
  EXPECT_EQ(journal(), (J{"ut_rec:a:mail:s@example.org", "ut_reject:mail:s@example.org"}));
  ASSERT_EQ(tx.verdicts.size(), 1u);
  EXPECT_EQ(tx.verdicts[0], (std::pair<std::string, std::string>{"ut_reject", "mail:reject"}));
  EXPECT_EQ(tx.facts["refused_by"], "ut_reject");
  EXPECT_EQ(tx.facts["refused_reply"], "550 5.7.1 rejected by test");
}

TEST(Pipeline, FirstTempfailWinsOverALaterReject) {
  Built b({"ut_tempfail", "ut_reject"});
  auto tx = tx_from("s@example.org");
  Verdict v = sync(b.pipeline->run(Stage::data, tx));
  EXPECT_EQ(v.kind, Verdict::Kind::tempfail);
  EXPECT_EQ(v.code, 451);
  EXPECT_EQ(journal(), (J{"ut_tempfail:data"}));
  EXPECT_EQ(tx.verdicts.at(0).second, "data:tempfail");
  EXPECT_EQ(tx.facts["refused_by"], "ut_tempfail");
}

TEST(Pipeline, AcceptEndsTheStageWithoutRefusing) {
  Built b({"ut_accept", "ut_reject"});
  auto tx = tx_from("s@example.org");
  Verdict v = sync(b.pipeline->run(Stage::mail, tx));
  EXPECT_EQ(v.kind, Verdict::Kind::accept);
  EXPECT_FALSE(v.refuses());
  EXPECT_EQ(journal(), (J{"ut_accept:mail:s@example.org"}));
  EXPECT_EQ(tx.verdicts.at(0).second, "mail:accept");
  EXPECT_EQ(tx.facts.count("refused_by"), 0u);
  // At a stage where ut_accept says nothing, ut_reject (which only refuses at mail/data) runs too.
  journal().clear();
  EXPECT_FALSE(sync(b.pipeline->run(Stage::rcpt, tx, "r@example.net")).stops());
  EXPECT_EQ(journal(), (J{"ut_accept:rcpt:r@example.net", "ut_reject:rcpt:r@example.net"}));
}

TEST(Pipeline, OnlyPluginsHookingAStageAreCalled) {
  Built b({"ut_mail_only", "ut_rec"});
  EXPECT_TRUE(b.pipeline->has(Stage::mail));
  EXPECT_TRUE(b.pipeline->has(Stage::rcpt));
  auto tx = tx_from("s@example.org");
  sync(b.pipeline->run(Stage::rcpt, tx, "r@example.net"));
  sync(b.pipeline->run(Stage::mail, tx));
  EXPECT_EQ(journal(), (J{"ut_rec:rcpt:r@example.net", "ut_mail_only:mail:s@example.org", "ut_rec:mail:s@example.org"}));

  Built only({"ut_mail_only"});
  EXPECT_TRUE(only.pipeline->has(Stage::mail));
  EXPECT_FALSE(only.pipeline->has(Stage::rcpt));
  EXPECT_FALSE(only.pipeline->has(Stage::reset));
  EXPECT_FALSE(sync(only.pipeline->run(Stage::rcpt, tx, "r@example.net")).stops());
  sync(only.pipeline->notify(Stage::reset, tx));
  EXPECT_TRUE(journal().empty());
}

TEST(Pipeline, ARecipientRefusalRefusesThatRecipientOnly) {
  Built b({"ut_rcpt", "ut_rec:after"});
  auto tx = tx_from("s@example.org");
  Verdict bad = sync(b.pipeline->run(Stage::rcpt, tx, "nobody@example.invalid"));
  Verdict good = sync(b.pipeline->run(Stage::rcpt, tx, "someone@example.net"));
  EXPECT_EQ(bad.kind, Verdict::Kind::reject);
  EXPECT_EQ(bad.code, 550);
  EXPECT_EQ(bad.enhanced, "5.1.1");
  EXPECT_EQ(good.kind, Verdict::Kind::proceed);
  // The refusal stopped the stage for its recipient; the next recipient went through every plugin.
  EXPECT_EQ(journal(), (J{"ut_rcpt:rcpt:nobody@example.invalid", "ut_rcpt:rcpt:someone@example.net",
                          "ut_rec:after:rcpt:someone@example.net"}));
  ASSERT_EQ(tx.verdicts.size(), 1u);
  EXPECT_EQ(tx.verdicts[0].second, "rcpt:reject");
  // And the next transaction starts with nothing of it.
  tx.reset();
  EXPECT_TRUE(tx.verdicts.empty());
  EXPECT_TRUE(tx.facts.empty());
}

TEST(Pipeline, ResetAndDisconnectReachEveryHookingPluginInOrderEvenAfterAThrow) {
  Built b({"ut_rec:a", "ut_throw", "ut_mail_only", "ut_rec:b"});
  EXPECT_TRUE(b.pipeline->has(Stage::reset));
  EXPECT_TRUE(b.pipeline->has(Stage::disconnect));
  auto tx = tx_from("s@example.org");
  sync(b.pipeline->notify(Stage::reset, tx));
  sync(b.pipeline->notify(Stage::disconnect, tx));
  EXPECT_EQ(journal(), (J{"ut_rec:a:reset:s@example.org", "ut_throw:reset:s@example.org", "ut_rec:b:reset:s@example.org",
                          "ut_rec:a:disconnect", "ut_throw:disconnect", "ut_rec:b:disconnect"}));
  // run() of a notification stage is a no-op: notifications cannot answer the client.
  journal().clear();
  EXPECT_FALSE(sync(b.pipeline->run(Stage::reset, tx)).stops());
  EXPECT_TRUE(journal().empty());
}

TEST(Pipeline, VerdictCountersCountEachVerdictOfEachPlugin) {
  Built b({"ut_accept", "ut_reject"});
  Built t({"ut_tempfail"});
  const auto accept0 = verdict_count("ut_accept", "accept");
  const auto reject0 = verdict_count("ut_reject", "reject");
  const auto temp0 = verdict_count("ut_tempfail", "tempfail");
  auto tx = tx_from("s@example.org");
  sync(b.pipeline->run(Stage::mail, tx));
  sync(b.pipeline->run(Stage::data, tx));
  sync(b.pipeline->run(Stage::rcpt, tx, "r@example.net"));  // continue: not counted
  sync(t.pipeline->run(Stage::mail, tx));
  EXPECT_EQ(verdict_count("ut_accept", "accept"), accept0 + 2);
  EXPECT_EQ(verdict_count("ut_reject", "reject"), reject0);  // never reached: ut_accept ended both stages
  EXPECT_EQ(verdict_count("ut_tempfail", "tempfail"), temp0 + 1);
  EXPECT_EQ(verdict_count("ut_accept", "reject"), 0u);
}

TEST(Pipeline, BuildNamesEveryConfigError) {
  try {
    Built b({"ut_rec", "no_such_plugin"}, "[plugins.also_missing]\nx = 1\n");
    FAIL() << "built a pipeline with an unknown plugin";
  } catch (const config::ConfigError& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("unknown plugin \"no_such_plugin\""), std::string::npos) << what;
    EXPECT_NE(what.find("ut_rec"), std::string::npos) << what;  // the known names are listed
    EXPECT_NE(what.find("also_missing"), std::string::npos) << what;
  }
}

TEST(Transaction, ResetClearsTheTransactionAndKeepsTheConnection) {
  Transaction tx = tx_from("s@example.org");
  tx.conn.helo = "client.example";
  tx.conn.plugin_state["ut"] = std::make_shared<int>(7);
  tx.id = "T1";
  tx.recipients = {"a@example.net"};
  tx.declared_size = 10;
  tx.smtputf8 = true;
  tx.body_type = "8BITMIME";
  tx.message.buffer() = "Subject: x\r\n\r\nbody\r\n";
  tx.add_header("X-A", "1");
  tx.auth_results.push_back("spf=pass smtp.mailfrom=example.org");
  tx.spf = SpfFact{"pass", "mailfrom", "example.org", ""};
  tx.dmarc = DmarcFact{"pass", "example.org", "none", "none"};
  tx.dkim.push_back({"example.org", "s1", "pass", "abcdefgh"});
  tx.facts["k"] = "v";
  tx.verdicts.emplace_back("p", "mail:accept");
  tx.reset();
  EXPECT_FALSE(tx.has_sender);
  EXPECT_TRUE(tx.sender.empty());
  EXPECT_TRUE(tx.id.empty());
  EXPECT_TRUE(tx.recipients.empty());
  EXPECT_EQ(tx.declared_size, 0u);
  EXPECT_FALSE(tx.smtputf8);
  EXPECT_TRUE(tx.body_type.empty());
  EXPECT_EQ(tx.message.size(), 0u);
  EXPECT_TRUE(tx.prepend.empty());
  EXPECT_TRUE(tx.auth_results.empty());
  EXPECT_FALSE(tx.spf);
  EXPECT_FALSE(tx.dmarc);
  EXPECT_TRUE(tx.dkim.empty());
  EXPECT_TRUE(tx.facts.empty());
  EXPECT_TRUE(tx.verdicts.empty());
  EXPECT_EQ(tx.conn.helo, "client.example");
  ASSERT_TRUE(tx.conn.state<int>("ut"));
  EXPECT_EQ(*tx.conn.state<int>("ut"), 7);
  EXPECT_FALSE(tx.conn.state<int>("other"));
}

TEST(Transaction, OutboundMeansTrustedOrAuthenticated) {
  Connection c;
  EXPECT_FALSE(c.outbound());
  c.trusted = true;
  EXPECT_TRUE(c.outbound());
  c.trusted = false;
  c.auth_user = "alice";
  EXPECT_TRUE(c.outbound());
}
