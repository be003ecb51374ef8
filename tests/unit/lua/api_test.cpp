// The Lua host's newer API against fakes: gateway.dns through a resolver that answers after a pause
// (the hook is suspended and resumed), the lookup bound, gateway.regex, tx.session_data / tx.data
// and on_disconnect, tx:remove_header.
#include <unistd.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include "gateway/dns/resolver.hpp"
#include "lua/host.hpp"

namespace gw::lua {
namespace {
namespace asio = boost::asio;

class FakeResolver : public dns::Resolver {
 public:
  int queries = 0;
  asio::awaitable<dns::Answer> query(std::string name, dns::Type type) override {
    ++queries;
    co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);  // answers later
    if (name == "nx.test") co_return dns::Answer{dns::Status::nxdomain, {}, 0};
    if (type == dns::Type::MX) co_return dns::Answer{dns::Status::ok, {"10 mx.example.test"}, 60};
    co_return dns::Answer{dns::Status::ok, {"127.0.0.2", "127.0.0.3"}, 60};
  }
};

Options opts(const std::string& text, std::shared_ptr<dns::Resolver> r = nullptr) {
  auto dir = std::filesystem::temp_directory_path() / ("gw_lua_api_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto path = (dir / "t.lua").string();
  std::ofstream(path) << text;
  Options o;
  o.scripts = {path};
  o.resolver = std::move(r);
  o.max_memory = 8 << 20;
  o.max_instructions = 200000;
  o.max_dns_lookups = 3;
  return o;
}

template <typename T>
T run(asio::awaitable<T> a) {
  asio::io_context io;
  auto f = asio::co_spawn(io, std::move(a), asio::use_future);
  io.run();
  return f.get();
}

Transaction make_tx() {
  Transaction tx;
  tx.conn.id = "S1";
  tx.conn.client.ip = "192.0.2.1";
  tx.has_sender = true;
  tx.sender = "a@sender.test";
  tx.message.buffer() = "Subject: Cheap Pills\r\nX-Spam: 1\r\nx-spam: 2\r\n\r\nbody\r\n";
  return tx;
}

TEST(LuaApi, DnsYieldsAndIsBounded) {
  auto r = std::make_shared<FakeResolver>();
  Host h(opts(R"lua(
    function on_rcpt_to(tx, addr)
      if addr == "loop" then while true do pcall(gateway.dns.lookup, "x.test", "A") end end
      local a = gateway.dns.lookup("x.test", "A")
      local mx = gateway.dns.lookup("x.test.", "MX")
      local nx = gateway.dns.lookup("nx.test", "TXT")
      return gateway.reject(550, "5.7.1", table.concat({a.status, a.answers[1], a.answers[2], mx.answers[1],
        nx.status, #nx.answers, tostring(gateway.dns.rbl ~= nil)}, " "))
    end)lua", r));
  auto tx = make_tx();
  auto v = run(h.call(Hook::rcpt_to, tx, "x"));
  EXPECT_EQ(v.text, "ok 127.0.0.2 127.0.0.3 10 mx.example.test nxdomain 0 true");
  EXPECT_EQ(r->queries, 3);
  v = run(h.call(Hook::rcpt_to, tx, "loop"));  // max_dns_lookups = 3, even under pcall
  EXPECT_EQ(v.kind, Verdict::Kind::tempfail);
  EXPECT_EQ(r->queries, 6);
  Host none(opts(R"lua(
    function on_rcpt_to(tx, addr)
      return gateway.reject(550, "5.7.1", gateway.dns.lookup("x.test", "A").status .. " " ..
                            tostring(gateway.dns.rbl("2001:db8::1", "zen.test")))
    end)lua"));
  EXPECT_EQ(run(none.call(Hook::rcpt_to, tx, "x")).text, "temperror nil");  // no resolver
}

// A resolver whose cache holds "cached.test": gateway.dns takes such answers without yielding (the
// same table as after a query), still counted against max_dns_lookups.
class CachingResolver : public FakeResolver {
 public:
  int cache_hits = 0;
  bool cached_answer(const std::string& name, dns::Type type, dns::Answer& out) override {
    if (name != "cached.test" || type != dns::Type::A) return false;
    ++cache_hits;
    out = dns::Answer{dns::Status::ok, {"192.0.2.7"}, 30};
    return true;
  }
};

TEST(LuaApi, DnsCachedAnswerWithoutYield) {
  auto r = std::make_shared<CachingResolver>();
  Host h(opts(R"lua(
    function on_rcpt_to(tx, addr)
      if addr == "loop" then while true do pcall(gateway.dns.lookup, "cached.test", "A") end end
      local a = gateway.dns.lookup("cached.test", "A")
      local b = gateway.dns.lookup("x.test", "A")
      return gateway.reject(550, "5.7.1", table.concat({a.status, #a.answers, a.answers[1], b.answers[1],
        tostring(gateway.dns.rbl("192.0.2.9", "x.test"))}, " "))
    end)lua", r));
  auto tx = make_tx();
  EXPECT_EQ(run(h.call(Hook::rcpt_to, tx, "x")).text, "ok 1 192.0.2.7 127.0.0.2 127.0.0.2");
  EXPECT_EQ(r->cache_hits, 1);
  EXPECT_EQ(r->queries, 2);  // x.test and the rbl name went to query()
  EXPECT_EQ(run(h.call(Hook::rcpt_to, tx, "loop")).kind, Verdict::Kind::tempfail);  // still bounded
  EXPECT_EQ(r->cache_hits, 4);  // max_dns_lookups = 3
}

TEST(LuaApi, Regex) {
  Host h(opts(R"lua(
    local re = gateway.regex.new("^(cheap|free)\\s+(\\w+)", "i")
    local evil = gateway.regex.new("^(a+)+$")
    function on_rcpt_to(tx, addr)
      if addr == "evil" then evil:match(string.rep("a", 32) .. "b") end
      local whole, w1, w2 = re:match("CHEAP pills")
      local s, e = re:find("xx free stuff")
      return gateway.reject(550, "5.7.1", table.concat({whole, w1, w2, tostring(s), tostring(e),
        tostring(re:match("nothing"))}, "|"))
    end)lua"));
  auto tx = make_tx();
  EXPECT_EQ(run(h.call(Hook::rcpt_to, tx, "x")).text, "CHEAP pills|CHEAP|pills|nil|nil|nil");
  EXPECT_EQ(run(h.call(Hook::rcpt_to, tx, "evil")).kind, Verdict::Kind::tempfail);
  EXPECT_THROW(Host(opts("gateway.regex.new('(')")), LoadError);
  EXPECT_THROW(Host(opts("gateway.regex.new('a', 'q')")), LoadError);
}

TEST(LuaApi, SessionAndTransactionTables) {
  Host h(opts(R"lua(
    function on_mail_from(tx, addr)
      tx.session_data.n = (tx.session_data.n or 0) + 1
      local had = tx.data.seen
      tx.data.seen = true
      tx.session_data.blob = string.rep("x", 100000)
      return gateway.reject(550, "5.7.1", tx.session_data.n .. " " .. tostring(had))
    end
    function on_disconnect(tx) gateway.log("info", "bye " .. tx.session_data.n) end
    function on_helo(tx, name) collectgarbage("collect") end)lua"));
  auto tx = make_tx();
  EXPECT_EQ(run(h.call(Hook::mail_from, tx, "a")).text, "1 nil");
  EXPECT_EQ(run(h.call(Hook::mail_from, tx, "a")).text, "2 true");
  h.end_transaction(tx);
  EXPECT_EQ(run(h.call(Hook::mail_from, tx, "a")).text, "3 nil");
  run(h.end_session(tx));
  EXPECT_TRUE(tx.conn.plugin_state.empty());
  EXPECT_EQ(run(h.call(Hook::mail_from, tx, "a")).text, "1 nil");  // a new session
  run(h.end_session(tx));
  Transaction probe = make_tx();
  run(h.call(Hook::helo, probe, "x"));  // a full collection
  auto before = h.memory_used();
  for (int i = 0; i < 20; ++i) {
    Transaction other = make_tx();
    run(h.call(Hook::mail_from, other, "a"));
    run(h.end_session(other));
  }
  run(h.call(Hook::helo, probe, "x"));
  EXPECT_LE(h.memory_used(), before + 20000);  // 20 x 100 kB blobs would stay if kept
}

TEST(LuaApi, RemoveHeader) {
  Host h(opts(R"lua(
    function on_data(tx, msg)
      tx:add_header("X-Spam", "mine")
      return gateway.reject(550, "5.7.1", tx:remove_header("x-SPAM") .. " " .. tostring(msg:header("X-Spam")))
    end)lua"));
  auto tx = make_tx();
  EXPECT_EQ(run(h.call(Hook::data, tx)).text, "2 nil");
  ASSERT_EQ(tx.prepend.size(), 1u);
  EXPECT_EQ(tx.prepend[0].value, "mine");
}

}  // namespace
}  // namespace gw::lua
