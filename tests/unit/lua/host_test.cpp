// The Lua host without sockets: verdicts, bounds, sandbox, store yields (with an in-memory store).
#include <unistd.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include "gateway/store/store.hpp"
#include "lua/host.hpp"

namespace gw::lua {
namespace {
namespace asio = boost::asio;

class MemStore : public store::Store {
 public:
  std::map<std::string, std::string> data;
  std::map<std::string, Ttl> ttls;
  bool fail = false;
  int ops = 0;
  asio::awaitable<void> pause() {  // answers on a later turn of the loop, like a real backend
    asio::steady_timer t(co_await asio::this_coro::executor);
    t.expires_after(std::chrono::milliseconds(1));
    co_await t.async_wait(asio::use_awaitable);
  }
  asio::awaitable<store::Result<std::int64_t>> incr(std::string key, std::int64_t n, Ttl ttl) override {
    co_await pause();
    ++ops;
    if (fail) co_return store::Result<std::int64_t>{false, "backend down", 0};
    auto it = data.find(key);
    std::int64_t v = (it == data.end() ? 0 : std::stoll(it->second)) + n;
    if (it == data.end()) ttls[key] = ttl;
    data[key] = std::to_string(v);
    co_return store::Result<std::int64_t>{true, "", v};
  }
  asio::awaitable<store::Result<std::optional<std::string>>> get(std::string key) override {
    co_await pause();
    ++ops;
    if (fail) co_return store::Result<std::optional<std::string>>{false, "backend down", std::nullopt};
    auto it = data.find(key);
    co_return store::Result<std::optional<std::string>>{true, "", it == data.end() ? std::nullopt : std::optional(it->second)};
  }
  asio::awaitable<store::Result<bool>> set(std::string key, std::string value, Ttl ttl) override {
    co_await pause();
    ++ops;
    if (fail) co_return store::Result<bool>{false, "backend down", false};
    data[key] = value;
    ttls[key] = ttl;
    co_return store::Result<bool>{true, "", true};
  }
  asio::awaitable<store::Result<bool>> set_if_absent(std::string key, std::string value, Ttl ttl) override {
    co_await pause();
    bool stored = !data.count(key);
    if (stored) data[key] = value;
    co_return store::Result<bool>{true, "", stored};
  }
};

std::string write_script(const std::string& name, const std::string& text) {
  // one folder per test process: CTest runs the tests of this file in parallel processes
  auto dir = std::filesystem::temp_directory_path() / ("gw_lua_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto path = (dir / name).string();
  std::ofstream(path) << text;
  return path;
}

Options options(const std::string& text, std::shared_ptr<store::Store> store = nullptr) {
  Options o;
  o.scripts = {write_script("t.lua", text)};
  o.store = std::move(store);
  o.max_memory = 8 << 20;
  o.max_instructions = 200000;
  return o;
}

Verdict run(Host& h, Hook hook, Transaction& tx, std::string_view arg = {}) {
  asio::io_context io;
  auto f = asio::co_spawn(io, h.call(hook, tx, arg), asio::use_future);
  io.run();
  return f.get();
}

Transaction make_tx() {
  Transaction tx;
  tx.conn.id = "S1";
  tx.conn.client.ip = "192.0.2.1";
  tx.conn.client.port = 4242;
  tx.has_sender = true;
  tx.sender = "a@sender.test";
  tx.recipients = {"b@example.test"};
  tx.message.buffer() = "Subject: hi\r\nX-A: 1\r\n  2\r\n\r\nbody\r\n";
  return tx;
}

TEST(LuaHost, Verdicts) {
  Host h(options(R"(
    function on_rcpt_to(tx, addr)
      if addr == "r@x" then return gateway.reject(550, "5.7.1", "no") end
      if addr == "t@x" then return gateway.tempfail(452, "4.2.2", "later") end
      if addr == "a@x" then return gateway.accept() end
    end)"));
  EXPECT_EQ(h.hooks(), hook_bit(Hook::rcpt_to));
  auto tx = make_tx();
  auto v = run(h, Hook::rcpt_to, tx, "r@x");
  EXPECT_EQ(v.kind, Verdict::Kind::reject);
  EXPECT_EQ(v.code, 550);
  EXPECT_EQ(v.enhanced, "5.7.1");
  EXPECT_EQ(v.text, "no");
  v = run(h, Hook::rcpt_to, tx, "t@x");
  EXPECT_EQ(v.kind, Verdict::Kind::tempfail);
  EXPECT_EQ(v.code, 452);
  EXPECT_EQ(run(h, Hook::rcpt_to, tx, "a@x").kind, Verdict::Kind::accept);
  EXPECT_EQ(run(h, Hook::rcpt_to, tx, "n@x").kind, Verdict::Kind::proceed);
  EXPECT_EQ(run(h, Hook::data, tx).kind, Verdict::Kind::proceed);  // no such hook
}

TEST(LuaHost, CompileErrorHasFileAndLine) {
  try {
    Host h(options("x = 1\nfunction on_data(tx\n"));
    FAIL() << "no error";
  } catch (const LoadError& e) {
    EXPECT_NE(std::string(e.what()).find("t.lua:3:"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Host(options("error('at load')")), LoadError);
  EXPECT_THROW(Host(options("while true do end")), LoadError);  // main chunks are bounded too
}

TEST(LuaHost, InstructionBoundEvenWhenCaught) {
  for (const char* body : {"while true do end", "while true do pcall(function() while true do end end) end",
                           "while true do xpcall(error, function() while true do end end) end",
                           "while true do coroutine.resume(coroutine.create(function() while true do end end)) end",
                           "while true do xpcall(function() while true do end end, function() while true do end end) end",
                           "local co = coroutine.wrap(function() local co2 = coroutine.create(function() local x <close> = setmetatable({}, {__close = function() while true do end end}) while true do end end) coroutine.resume(co2) for i = 1, 500 do end coroutine.close(co2) end) co() while true do end",
                           "table.move({}, 1, 1e15, 2)",
                           "table.insert(setmetatable({}, {__len = function() return 1e15 end}), 1, 'x')",
                           "table.remove(setmetatable({}, {__len = function() return 1e15 end}), 1)",
                           "local t = setmetatable({}, {__index = function(t, k) while true do end end}) while true do pcall(function() return t.x end) end"}) {
    Host h(options(std::string("function on_helo(tx, name) ") + body + " end"));
    auto tx = make_tx();
    auto t0 = std::chrono::steady_clock::now();
    auto v = run(h, Hook::helo, tx, "x");
    EXPECT_EQ(v.kind, Verdict::Kind::tempfail) << body;
    EXPECT_EQ(v.code, 451);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2)) << body;
  }
}

// Hook threads are reused after a normal return (State::idle_threads): each call still gets its own
// instruction budget, a clean stack, and a thread that errored or was stopped is not reused.
TEST(LuaHost, ReusedThreadsStartClean) {
  Host h(options(R"(
    n = 0
    function on_helo(tx, name, extra)
      n = n + 1
      if name == "err" then error("boom") end
      if name == "stop" then while true do end end
      for i = 1, 30000 do end  -- well under 200,000 instructions alone, over it across 10 calls
      if name == "n" then return gateway.reject(550, "5.7.1", tostring(n) .. " " .. tostring(extra)) end
    end)"));
  auto tx = make_tx();
  for (int i = 0; i < 10; ++i) EXPECT_EQ(run(h, Hook::helo, tx, "x").kind, Verdict::Kind::proceed) << i;
  EXPECT_EQ(run(h, Hook::helo, tx, "err").kind, Verdict::Kind::tempfail);
  EXPECT_EQ(run(h, Hook::helo, tx, "x").kind, Verdict::Kind::proceed);
  EXPECT_EQ(run(h, Hook::helo, tx, "stop").kind, Verdict::Kind::tempfail);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(run(h, Hook::helo, tx, "x").kind, Verdict::Kind::proceed) << i;
  auto v = run(h, Hook::helo, tx, "n");  // the 19th call, with only its own two arguments
  EXPECT_EQ(v.kind, Verdict::Kind::reject);
  EXPECT_EQ(v.text, "19 nil");
  // the tx of one call is refused by name in the next (its Box outlives the call)
  Host h2(options(R"(
    function on_helo(tx, name)
      if name == "keep" then kept = tx return end
      local ok, err = pcall(function() return kept.helo end)
      return gateway.reject(550, "5.7.1", tostring(ok) .. " " .. tostring(err))
    end)"));
  run(h2, Hook::helo, tx, "keep");
  v = run(h2, Hook::helo, tx, "use");
  EXPECT_EQ(v.kind, Verdict::Kind::reject);
  EXPECT_NE(v.text.find("false"), std::string::npos) << v.text;
  EXPECT_NE(v.text.find("outside the hook call"), std::string::npos) << v.text;
}

TEST(LuaHost, MemoryCap) {
  Host h(options("function on_helo(tx) local t = {} while true do t[#t + 1] = string.rep('x', 1000) .. #t end end"));
  auto tx = make_tx();
  EXPECT_EQ(run(h, Hook::helo, tx, "x").kind, Verdict::Kind::tempfail);
  EXPECT_LE(h.memory_used(), 8u << 20);
  EXPECT_EQ(run(h, Hook::helo, tx, "x").kind, Verdict::Kind::tempfail);  // again: the state recovered
}

TEST(LuaHost, StateFullAfterMemoryErrorIsReplaced) {
  Host h(options(R"(
    function on_rcpt_to(tx, addr)
      if addr == "fill" then
        big = {}
        while true do big[#big + 1] = string.rep("x", 1000) .. #big end
      end
      return gateway.reject(550, "5.7.1", big == nil and "fresh" or "old")
    end)"));
  auto tx = make_tx();
  EXPECT_EQ(run(h, Hook::rcpt_to, tx, "fill").kind, Verdict::Kind::tempfail);
  EXPECT_EQ(run(h, Hook::rcpt_to, tx, "check").text, "fresh");  // the full state was rebuilt
  EXPECT_LT(h.memory_used(), 2u << 20);
}

TEST(LuaHost, TableFunctionsStillWork) {
  Host h(options(R"(
    function on_helo(tx, name)
      local t = {1, 2, 3}
      table.insert(t, 1, 0)
      table.insert(t, 4)
      assert(table.remove(t, 1) == 0 and table.remove(t) == 4 and #t == 3)
      assert(table.concat(table.move(t, 1, 3, 2, {}), ",", 2, 4) == "1,2,3")
      local s = 0
      for w in ("a b c"):gmatch("%a") do s = s + 1 end
      assert(s == 3 and load("return 1 + 1")() == 2)
      return gateway.reject(550, "5.7.1", "ok")
    end)"));
  auto tx = make_tx();
  EXPECT_EQ(run(h, Hook::helo, tx, "x").text, "ok");
}

TEST(LuaHost, MessageAccessors) {
  Host h(options(R"(
    function on_data(tx, msg)
      assert(msg:header("subject") == "hi")
      assert(msg:header("X-A") == "1  2", msg:header("X-A"))
      assert(msg:header("nope") == nil)
      assert(#msg:headers() == 2)
      assert(msg:body() == "body\r\n")
      assert(math.type(msg.size) == "integer")
      assert(tx.client.port == 4242 and math.type(tx.client.port) == "integer")
      assert(tx.client.rdns == nil and tx.auth_user == nil and tx.trusted == false and tx.tls == false)
      assert(tx.recipients[1] == "b@example.test")
      tx:add_header("X-Seen", "yes")
    end)"));
  auto tx = make_tx();
  EXPECT_EQ(run(h, Hook::data, tx).kind, Verdict::Kind::proceed);
  ASSERT_EQ(tx.prepend.size(), 1u);
  EXPECT_EQ(tx.prepend[0].name, "X-Seen");
}

TEST(LuaHost, StoreYieldsAndResumes) {
  auto store = std::make_shared<MemStore>();
  Host h(options(R"(
    function on_rcpt_to(tx, addr)
      local n = gateway.store.incr("c:" .. tx.sender, 1, "1h")
      gateway.store.set("s", "text", 60)
      gateway.store.set("n", 42)
      assert(gateway.store.get("s") == "text")
      assert(gateway.store.get("n") == 42)
      assert(gateway.store.get("missing") == nil)
      local ok, err = pcall(gateway.store.get, "x")  -- yields across pcall
      assert(ok, err)
      if n > 2 then return gateway.reject(550, "5.7.1", "count " .. n) end
    end)", store));
  auto tx = make_tx();
  EXPECT_EQ(run(h, Hook::rcpt_to, tx, "x").kind, Verdict::Kind::proceed);
  EXPECT_EQ(run(h, Hook::rcpt_to, tx, "x").kind, Verdict::Kind::proceed);
  auto v = run(h, Hook::rcpt_to, tx, "x");
  EXPECT_EQ(v.kind, Verdict::Kind::reject);
  EXPECT_EQ(v.text, "count 3");
  EXPECT_EQ(store->data["lua:c:a@sender.test"], "3");
  EXPECT_EQ(store->ttls["lua:c:a@sender.test"], std::chrono::hours(1));
  EXPECT_EQ(store->ttls["lua:s"], std::chrono::seconds(60));
  store->fail = true;
  EXPECT_EQ(run(h, Hook::rcpt_to, tx, "x").kind, Verdict::Kind::tempfail);  // store error -> on_error
}

TEST(LuaHost, ConcurrentCallsOnOneState) {
  auto store = std::make_shared<MemStore>();
  Host h(options(R"(
    function on_rcpt_to(tx, addr)
      local before = tx.sender
      gateway.store.incr("k", 1)
      if tx.sender ~= before then error("mixed up") end
      return gateway.reject(550, "5.7.1", tx.sender)
    end)", store));
  asio::io_context io;
  std::vector<Transaction> txs(20);
  std::vector<std::future<Verdict>> fs;
  for (int i = 0; i < 20; ++i) {
    txs[i] = make_tx();
    txs[i].sender = "s" + std::to_string(i) + "@x";
    fs.push_back(asio::co_spawn(io, h.call(Hook::rcpt_to, txs[i], "r@x"), asio::use_future));
  }
  io.run();
  for (int i = 0; i < 20; ++i) EXPECT_EQ(fs[i].get().text, "s" + std::to_string(i) + "@x");
  EXPECT_EQ(store->data["lua:k"], "20");
}

TEST(LuaHost, StoreAbsentRaises) {
  Host h(options("function on_helo(tx) gateway.store.get('x') end"));
  auto tx = make_tx();
  EXPECT_EQ(run(h, Hook::helo, tx, "x").kind, Verdict::Kind::tempfail);
}

TEST(LuaHost, ReadLinesOnlyAtLoad) {
  auto list = write_script("list.txt", "a@x\r\n# comment\nb@x\n");
  Host h(options("local l = gateway.read_lines('" + list + "')\n"
                 "n = #l\n"
                 "function on_helo(tx) if n ~= 3 then return gateway.reject() end gateway.read_lines('" + list + "') end"));
  auto tx = make_tx();
  EXPECT_EQ(run(h, Hook::helo, tx, "x").kind, Verdict::Kind::tempfail);  // read_lines in a hook raises
  EXPECT_THROW(Host(options("gateway.read_lines('/nonexistent/file')")), LoadError);
}

}  // namespace
}  // namespace gw::lua

namespace gw::lua {
namespace {

std::string policy_text(const std::string& name) {
  std::ifstream in(std::string(GATEWAY_SOURCE_DIR) + "/policies/" + name);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(LuaPolicies, RecipientCapsCountsInTheStore) {
  auto text = std::regex_replace(policy_text("recipient_caps.lua"), std::regex("local LIMIT = \\d+"), "local LIMIT = 3");
  ASSERT_NE(text.find("local LIMIT = 3"), std::string::npos);
  auto store = std::make_shared<MemStore>();
  Host h(options(text, store));
  auto tx = make_tx();
  std::vector<Verdict::Kind> got;
  for (int i = 0; i < 5; ++i) got.push_back(run(h, Hook::rcpt_to, tx, "r@example.test").kind);
  EXPECT_EQ(got, (std::vector<Verdict::Kind>{Verdict::Kind::proceed, Verdict::Kind::proceed, Verdict::Kind::proceed,
                                             Verdict::Kind::tempfail, Verdict::Kind::tempfail}));
  EXPECT_EQ(store->data["lua:rcptcap:192.0.2.0/24"], "5");
  EXPECT_EQ(store->ttls["lua:rcptcap:192.0.2.0/24"], std::chrono::hours(1));
  tx.sender = "x@other.test";  // another MAIL FROM domain does not dodge the cap of the client network
  EXPECT_EQ(run(h, Hook::rcpt_to, tx, "r@example.test").kind, Verdict::Kind::tempfail);
  tx.conn.auth_user = "alice";  // an authenticated user has a count of its own
  EXPECT_EQ(run(h, Hook::rcpt_to, tx, "r@example.test").kind, Verdict::Kind::proceed);
  EXPECT_EQ(store->data["lua:rcptcap:alice"], "1");
  tx.conn.auth_user.reset();
  tx.conn.client.ip = "2001:db8:0:7:1::5";
  EXPECT_EQ(run(h, Hook::rcpt_to, tx, "r@example.test").kind, Verdict::Kind::proceed);
  EXPECT_EQ(store->data["lua:rcptcap:2001:db8:0:7::/64"], "1");
  tx.conn.client.ip = "2001:db8::5";
  EXPECT_EQ(run(h, Hook::rcpt_to, tx, "r@example.test").kind, Verdict::Kind::proceed);
  EXPECT_EQ(store->data["lua:rcptcap:2001:db8:0:0::/64"], "1");
  tx.conn.client.ip = "192.0.2.1";
  tx.conn.trusted = true;  // trusted networks are not counted
  tx.sender = "a@sender.test";
  EXPECT_EQ(run(h, Hook::rcpt_to, tx, "r@example.test").kind, Verdict::Kind::proceed);
  tx.conn.trusted = false;
  store->fail = true;  // ON_STORE_ERROR = "accept"
  EXPECT_EQ(run(h, Hook::rcpt_to, tx, "r@example.test").kind, Verdict::Kind::proceed);
}

TEST(LuaPolicies, AllCompile) {
  for (auto& e : std::filesystem::directory_iterator(std::string(GATEWAY_SOURCE_DIR) + "/policies")) {
    if (e.path().extension() != ".lua" || e.path().filename() == "access_lists.lua" ||
        e.path().filename() == "map_access.lua")
      continue;  // they need their list files
    EXPECT_NO_THROW(Host(options(policy_text(e.path().filename().string())))) << e.path();
  }
}

}  // namespace
}  // namespace gw::lua
