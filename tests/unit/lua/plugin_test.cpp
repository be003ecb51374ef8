// The Lua plugin glue (plugins/lua): built through the registry from a config file, like the gateway
// does, and run by the Pipeline at mail/rcpt/data on a Transaction. The Host itself is tested in
// host_test.cpp and api_test.cpp; here: config keys, stage bits, verdicts and header effects as the
// pipeline sees them, on_error, tx.data/session_data lifetimes through the notifications.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "gateway/core/pipeline.hpp"
#include "tests/unit/store/store_test_util.hpp"

using namespace gw;

namespace {

struct LuaPipeline {
  struct Dir {
    std::string path = gw::testing::temp_dir("luaplugin");
    Dir() { std::filesystem::create_directories(path); }
    ~Dir() { std::filesystem::remove_all(path); }
  } dir;  // removed even when the build throws
  std::shared_ptr<const config::Config> cfg;
  Services services;
  std::shared_ptr<Pipeline> pipeline;

  std::string script(const std::string& name, const std::string& text) {
    auto p = dir.path + "/" + name;
    std::ofstream(p) << text;
    return p;
  }
  // `config` is appended to a minimal file; "@DIR@" in it stands for the temp folder.
  void build(const std::string& pipeline_list, std::string config) {
    for (auto at = config.find("@DIR@"); at != std::string::npos; at = config.find("@DIR@"))
      config.replace(at, 5, dir.path);
    std::ofstream(dir.path + "/gw.toml") << "pipeline = [" << pipeline_list << "]\n[[listener]]\naddress = \"127.0.0.1:2525\"\n"
                                         << "[upstream]\nservers = [\"127.0.0.1:10025\"]\n" << config;
    cfg = config::load_config(dir.path + "/gw.toml");
    pipeline = Pipeline::build(*cfg, services);
  }
};

template <typename T>
T sync(boost::asio::awaitable<T> a) {
  boost::asio::io_context io;
  return gw::testing::run_on(io, std::move(a));
}
void sync(boost::asio::awaitable<void> a) {
  auto wrapped = [](boost::asio::awaitable<void> inner) -> boost::asio::awaitable<int> {
    co_await std::move(inner);
    co_return 0;
  };
  sync(wrapped(std::move(a)));
}

Transaction make_tx(std::string sender) {
  Transaction tx;
  tx.conn.id = "S1";
  tx.conn.client.address = boost::asio::ip::make_address("192.0.2.7");
  tx.conn.client.ip = "192.0.2.7";
  tx.conn.client.port = 4242;
  tx.conn.helo = "client.example";
  tx.has_sender = true;
  tx.sender = std::move(sender);
  return tx;
}

std::string config_error(LuaPipeline& lp, const std::string& list, const std::string& cfg) {
  try {
    lp.build(list, cfg);
  } catch (const config::ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

const char* kPolicy = R"lua(
function on_mail_from(tx, addr)
  if addr:match("^bad@") then return gateway.reject(550, "5.7.1", "sender " .. addr .. " refused") end
  tx.data.mail_seen = addr
  tx.session_data.mails = (tx.session_data.mails or 0) + 1
  tx:add_header("X-Lua-Mail", "from " .. addr)
end
function on_rcpt_to(tx, addr)
  if addr:match("^later@") then return gateway.tempfail(452, "4.2.2", "mailbox full") end
  if addr:match("^probe@") then
    return gateway.reject(550, "5.1.1", tostring(tx.data.mail_seen) .. " " .. tostring(tx.session_data.mails))
  end
end
function on_data(tx, msg)
  if msg:header("Subject") == "boom" then error("policy bug") end
  tx:add_header("X-Lua-Subject", msg:header("Subject") or "none")
  tx:remove_header("X-Remove-Me")
  if msg:header("Subject") == "spam" then return gateway.reject(554, "5.7.1", "looks like spam") end
end
)lua";

}  // namespace

TEST(LuaPlugin, BuiltFromConfigHooksOnlyTheStagesItsScriptsDefine) {
  LuaPipeline lp;
  lp.script("policy.lua", kPolicy);
  lp.build("\"lua:ut\"", "[plugins.\"lua:ut\"]\nscripts = [\"@DIR@/policy.lua\"]\n");
  EXPECT_EQ(lp.pipeline->names(), std::vector<std::string>{"lua:ut"});
  EXPECT_TRUE(lp.pipeline->has(Stage::mail));
  EXPECT_TRUE(lp.pipeline->has(Stage::rcpt));
  EXPECT_TRUE(lp.pipeline->has(Stage::data));
  EXPECT_FALSE(lp.pipeline->has(Stage::connect));
  EXPECT_FALSE(lp.pipeline->has(Stage::helo));
  EXPECT_TRUE(lp.pipeline->has(Stage::reset));       // tx.data ends with each transaction
  EXPECT_TRUE(lp.pipeline->has(Stage::disconnect));  // tx.session_data with the session
}

TEST(LuaPlugin, VerdictsAndHeadersAtMailRcptAndData) {
  LuaPipeline lp;
  lp.script("policy.lua", kPolicy);
  lp.build("\"lua:ut\"", "[plugins.\"lua:ut\"]\nscripts = [\"@DIR@/policy.lua\"]\n");
  auto& p = *lp.pipeline;

  auto bad = make_tx("bad@example.org");
  Verdict v = sync(p.run(Stage::mail, bad));
  EXPECT_EQ(v.kind, Verdict::Kind::reject);
  EXPECT_EQ(v.code, 550);
  EXPECT_EQ(v.enhanced, "5.7.1");
  EXPECT_EQ(v.text, "sender bad@example.org refused");
  EXPECT_TRUE(bad.prepend.empty());
  ASSERT_EQ(bad.verdicts.size(), 1u);
  EXPECT_EQ(bad.verdicts[0], (std::pair<std::string, std::string>{"lua:ut", "mail:reject"}));

  auto tx = make_tx("alice@example.org");
  EXPECT_EQ(sync(p.run(Stage::mail, tx)).kind, Verdict::Kind::proceed);
  v = sync(p.run(Stage::rcpt, tx, "later@example.net"));
  EXPECT_EQ(v.kind, Verdict::Kind::tempfail);
  EXPECT_EQ(v.code, 452);
  EXPECT_EQ(v.enhanced, "4.2.2");
  EXPECT_EQ(v.text, "mailbox full");
  EXPECT_EQ(sync(p.run(Stage::rcpt, tx, "bob@example.net")).kind, Verdict::Kind::proceed);
  tx.recipients.push_back("bob@example.net");

  tx.message.buffer() = "Subject: hello\r\nX-Remove-Me: 1\r\nX-Keep: 2\r\n\r\nbody\r\n";
  EXPECT_EQ(sync(p.run(Stage::data, tx)).kind, Verdict::Kind::proceed);
  ASSERT_EQ(tx.prepend.size(), 2u);  // in the order of the calls
  EXPECT_EQ(tx.prepend[0].name, "X-Lua-Mail");
  EXPECT_EQ(tx.prepend[0].value, "from alice@example.org");
  EXPECT_EQ(tx.prepend[1].name, "X-Lua-Subject");
  EXPECT_EQ(tx.prepend[1].value, "hello");
  EXPECT_FALSE(tx.message.header("X-Remove-Me"));
  EXPECT_EQ(tx.message.header("X-Keep"), "2");

  tx.message.clear();  // a new message: buffer() alone would keep the old parse
  tx.message.buffer() = "Subject: spam\r\n\r\nbuy\r\n";
  v = sync(p.run(Stage::data, tx));
  EXPECT_EQ(v.kind, Verdict::Kind::reject);
  EXPECT_EQ(v.code, 554);
  EXPECT_EQ(tx.facts["refused_by"], "lua:ut");
}

TEST(LuaPlugin, OnErrorDecidesWhatAScriptErrorBecomes) {
  LuaPipeline deflt;
  deflt.script("policy.lua", kPolicy);
  deflt.build("\"lua\"", "[plugins.lua]\nscripts = [\"@DIR@/policy.lua\"]\n");
  auto tx = make_tx("alice@example.org");
  tx.message.buffer() = "Subject: boom\r\n\r\nx\r\n";
  Verdict v = sync(deflt.pipeline->run(Stage::data, tx));
  EXPECT_EQ(v.kind, Verdict::Kind::tempfail);
  EXPECT_EQ(v.code, 451);
  EXPECT_EQ(v.enhanced, "4.7.1");

  LuaPipeline strict;
  strict.script("policy.lua", kPolicy);
  strict.build("\"lua\"", "[plugins.lua]\nscripts = [\"@DIR@/policy.lua\"]\non_error = \"reject\"\n");
  auto tx2 = make_tx("alice@example.org");
  tx2.message.buffer() = "Subject: boom\r\n\r\nx\r\n";
  v = sync(strict.pipeline->run(Stage::data, tx2));
  EXPECT_EQ(v.kind, Verdict::Kind::reject);
  EXPECT_EQ(v.code, 550);
  EXPECT_EQ(v.enhanced, "5.7.1");
}

TEST(LuaPlugin, TxDataEndsWithTheTransactionAndSessionDataWithTheSession) {
  LuaPipeline lp;
  lp.script("policy.lua", kPolicy);
  lp.build("\"lua:ut\"", "[plugins.\"lua:ut\"]\nscripts = [\"@DIR@/policy.lua\"]\n");
  auto& p = *lp.pipeline;
  auto tx = make_tx("alice@example.org");
  sync(p.run(Stage::mail, tx));
  EXPECT_EQ(sync(p.run(Stage::rcpt, tx, "probe@x")).text, "alice@example.org 1");
  EXPECT_FALSE(tx.conn.plugin_state.empty());  // the session's Lua tables live on the connection

  sync(p.notify(Stage::reset, tx));  // the transaction ends: tx.data is emptied
  tx.reset();
  tx.sender = "carol@example.org";
  tx.has_sender = true;
  EXPECT_EQ(sync(p.run(Stage::rcpt, tx, "probe@x")).text, "nil 1");
  sync(p.run(Stage::mail, tx));
  EXPECT_EQ(sync(p.run(Stage::rcpt, tx, "probe@x")).text, "carol@example.org 2");

  sync(p.notify(Stage::disconnect, tx));  // the session ends: session_data goes too
  EXPECT_TRUE(tx.conn.plugin_state.empty());
}

TEST(LuaPlugin, TwoInstancesAndAcceptEndsTheStageForLaterPlugins) {
  LuaPipeline lp;
  lp.script("allow.lua", "function on_mail_from(tx, addr)\n  if addr:match('@friend%.example$') then return gateway.accept() end\nend\n");
  lp.script("deny.lua", "function on_mail_from(tx, addr)\n  return gateway.reject(550, '5.7.1', 'deny all')\nend\n");
  lp.build("\"lua:allow\", \"lua:deny\"",
           "[plugins.\"lua:allow\"]\nscripts = [\"@DIR@/allow.lua\"]\n[plugins.\"lua:deny\"]\nscripts = [\"@DIR@/deny.lua\"]\n");
  auto friend_tx = make_tx("x@friend.example");
  Verdict v = sync(lp.pipeline->run(Stage::mail, friend_tx));
  EXPECT_EQ(v.kind, Verdict::Kind::accept);
  EXPECT_EQ(friend_tx.verdicts, (std::vector<std::pair<std::string, std::string>>{{"lua:allow", "mail:accept"}}));
  auto other = make_tx("x@stranger.example");
  v = sync(lp.pipeline->run(Stage::mail, other));
  EXPECT_EQ(v.kind, Verdict::Kind::reject);
  EXPECT_EQ(v.text, "deny all");
  EXPECT_EQ(other.verdicts, (std::vector<std::pair<std::string, std::string>>{{"lua:deny", "mail:reject"}}));
}

TEST(LuaPlugin, ConfigErrorsNameTheKey) {
  {
    LuaPipeline lp;
    lp.script("policy.lua", kPolicy);
    auto e = config_error(lp, "\"lua\"", "[plugins.lua]\nscripts = [\"@DIR@/policy.lua\"]\nmax_instrucions = 5000\n");
    EXPECT_NE(e.find("max_instrucions"), std::string::npos) << e;  // unknown key (a typo)
    EXPECT_NE(e.find("gw.toml:"), std::string::npos) << e;          // PATH:LINE:COL
  }
  {
    LuaPipeline lp;
    lp.script("policy.lua", kPolicy);
    auto e = config_error(lp, "\"lua\"", "[plugins.lua]\nscripts = [\"@DIR@/policy.lua\"]\nmax_instructions = 10\n");
    EXPECT_NE(e.find("max_instructions"), std::string::npos) << e;
  }
  {
    LuaPipeline lp;
    lp.script("policy.lua", kPolicy);
    auto e = config_error(lp, "\"lua\"",
                          "[plugins.lua]\nscripts = [\"@DIR@/policy.lua\"]\nmax_memory = \"2MiB\"\nmax_body_bytes = \"4MiB\"\n");
    EXPECT_NE(e.find("max_body_bytes"), std::string::npos) << e;
  }
  {
    LuaPipeline lp;
    lp.script("broken.lua", "function on_data(tx\n");
    auto e = config_error(lp, "\"lua\"", "[plugins.lua]\nscripts = [\"@DIR@/broken.lua\"]\n");
    EXPECT_NE(e.find("broken.lua:2:"), std::string::npos) << e;  // the script's own file:line
  }
  {
    LuaPipeline lp;
    lp.script("policy.lua", kPolicy);
    auto e = config_error(lp, "\"lua\"", "[plugins.lua]\nscripts = [\"@DIR@/policy.lua\"]\non_error = \"ignore\"\n");
    EXPECT_NE(e.find("on_error"), std::string::npos) << e;
  }
}
