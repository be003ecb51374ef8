// The sandbox's step-counted string.find/match/gmatch/gsub give the same results and errors as the
// standard library, and a backtracking pattern over a large subject is bounded by max_instructions.
#include <unistd.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <lua.hpp>

#include "lua/host.hpp"

namespace gw::lua {
namespace {

const char* kHarness = R"LUA(
local function ser(...)
  local t = table.pack(...)
  local o = {}
  for i = 1, t.n do o[#o + 1] = type(t[i]) .. ":" .. tostring(t[i]) end
  return table.concat(o, ",")
end
local function all(it) local o = {} for a, b in it do o[#o + 1] = tostring(a) .. (b and ("=" .. tostring(b)) or "") end return table.concat(o, "|") end
local cases = {
  function() return ser(string.find("hello world", "o w")) end,
  function() return ser(string.find("hello", "l+")) end,
  function() return ser(string.find("hello", "xyz")) end,
  function() return ser(string.find("a.b", ".", 1, true)) end,
  function() return ser(string.find("hello", "", 10)) end,
  function() return ser(string.find("hello", "", 6)) end,
  function() return ser(string.find("hello", "l", -2)) end,
  function() return ser(string.find("abc", "b", 100)) end,
  function() return ser(string.find("abc", "b", -100)) end,
  function() return ser(string.find("a+b", "+")) end,
  function() return ser(string.find("aaa", "a-b")) end,
  function() return ser(string.find("key=val", "(%w+)=(%w+)")) end,
  function() return ser(string.match("key = value", "(%w+)%s*=%s*(%w+)")) end,
  function() return ser(string.match("hello", "()ll()")) end,
  function() return ser(string.match("  trim  ", "^%s*(.-)%s*$")) end,
  function() return ser(string.match("THE (quick) fox", "%((%a+)%)")) end,
  function() return ser(string.match("f(a(b)c)d", "%b()")) end,
  function() return ser(string.match("THE (quick) fox", "%f[%a]%a+", 5)) end,
  function() return ser(string.match("hello hello", "(h%a+) %1")) end,
  function() return ser(string.match("x]y", "[]]")) end,
  function() return ser(string.match("a-b", "[a%-]+")) end,
  function() return ser(string.match("2024-01-05", "(%d+)-(%d+)-(%d+)")) end,
  function() return ser(string.match("abc", "^(a)(b)(c)$")) end,
  function() return ser(string.match("[[x]]", "%[(.-)%]")) end,
  function() return ser(string.match("hello", ".-(l+)(.*)")) end,
  function() return ser(string.match("x", "()")) end,
  function() return ser(string.match("hello", "(h)(e)(l)(l)(o)")) end,
  function() return ser(string.match("caf\xc3\xa9!", "[\x80-\xff]+")) end,
  function() return ser(string.match("aaab", "a*"), string.match("aaab", "a-b"), string.match("b", "a?b")) end,
  function() return ser(string.match("ab12cd", "%a*(%d*)%u*")) end,
  function() return ser(string.match("x = 'q'", "[\"']([^\"']*)[\"']")) end,
  function() return ser(string.match("hello", "[^%s]+$")) end,
  function() return ser(string.match("MiXeD", "%u%l%U%L")) end,
  function() return ser(string.match("end", "end$"), string.match("a$b", "a$b")) end,
  function() return ser(string.gsub("hello world", "o", "0")) end,
  function() return ser(string.gsub("hello world", "(%w+)", "<%1>")) end,
  function() return ser(string.gsub("abc", "%w", "%0%0")) end,
  function() return ser(string.gsub("hello world", "%w+", {hello = "HI"})) end,
  function() return ser(string.gsub("abc", "", "-")) end,
  function() return ser(string.gsub("hello", "l", function(x) return nil end)) end,
  function() return ser(string.gsub("hello world", "^h", "H")) end,
  function() return ser(string.gsub("one two", "(%w+) (%w+)", "%2 %1")) end,
  function() return ser(string.gsub("ababab", "(a)(b)", "%2%1", 2)) end,
  function() return ser(string.gsub("abc", "%f[%w]%w", "X")) end,
  function() return ser(string.gsub("a,b,,c", ",", ";", 0)) end,
  function() return ser(string.gsub("x y", "%s", 5)) end,
  function() return ser(string.gsub("abc", "()", "%1")) end,
  function() return ser(("hello"):gsub("l+", string.upper)) end,
  function() return all(string.gmatch("one two  three", "%a+")) end,
  function() return all(string.gmatch("a=1, b=2", "(%w+)=(%w+)")) end,
  function() local n = 0 for _ in string.gmatch("abc", "") do n = n + 1 end return n end,
  function() return all(string.gmatch("hello", "l", 4)) end,
  function() return all(("k1=v1;k2=v2"):gmatch("([^;=]+)=([^;]*)")) end,
  function() return all(string.gmatch("abc", "^a")) end,
  function() return ser(string.gsub("abc", "b", "%2")) end,
  function() return ser(string.gsub("abc", "b", "%x")) end,
  function() return ser(string.find("abc", "[")) end,
  function() return ser(string.find("abc", "[a")) end,
  function() return ser(string.find("abc", "%")) end,
  function() return ser(string.find("abc", "(")) end,
  function() return ser(string.find("abc", ")")) end,
  function() return ser(string.find("abc", "%1")) end,
  function() return ser(string.find("abc", "%b")) end,
  function() return ser(string.find("abc", "%fx")) end,
  function() return ser(string.gsub("abc", ".", {a = 1, b = true})) end,
  function() return ser(string.gsub("abc", "(", "x")) end,
  function() return ser(string.match(string.rep("a", 40), string.rep("(a)", 33))) end,
}
function results()
  local out = {}
  for i, f in ipairs(cases) do
    local ok, r = pcall(f)
    out[i] = ok and tostring(r) or ("error:" .. tostring(r):gsub("^[^:]*:%d+: ", ""))
  end
  return out
end
)LUA";

std::vector<std::string> stock_results() {
  lua_State* L = luaL_newstate();
  luaL_openlibs(L);
  EXPECT_EQ(luaL_dostring(L, kHarness), LUA_OK) << lua_tostring(L, -1);
  lua_getglobal(L, "results");
  EXPECT_EQ(lua_pcall(L, 0, 1, 0), LUA_OK) << lua_tostring(L, -1);
  std::vector<std::string> out;
  for (lua_Integer i = 1; lua_rawgeti(L, -1, i) == LUA_TSTRING; ++i) {
    out.push_back(lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  lua_close(L);
  return out;
}

std::string script(const std::string& name, const std::string& text) {
  // per test process: CTest runs these tests in parallel processes
  auto path = (std::filesystem::temp_directory_path() / (std::to_string(::getpid()) + "-" + name)).string();
  std::ofstream(path) << text;
  return path;
}

Verdict run(Host& h, Transaction& tx) {
  boost::asio::io_context io;
  auto f = boost::asio::co_spawn(io, h.call(Hook::data, tx), boost::asio::use_future);
  io.run();
  return f.get();
}

TEST(LuaPatterns, SameResultsAsTheStandardLibrary) {
  auto expected = stock_results();
  ASSERT_GT(expected.size(), 60u);
  Options o;
  o.scripts = {script("patterns.lua", std::string(kHarness) + R"LUA(
    function on_data(tx, msg)
      for i, r in ipairs(results()) do tx:add_header("R" .. i, (r:gsub("[\r\n%z]", "?"))) end
    end)LUA")};
  Host h(o);
  Transaction tx;
  tx.message.buffer() = "Subject: x\r\n\r\n";
  ASSERT_EQ(run(h, tx).kind, Verdict::Kind::proceed);
  ASSERT_EQ(tx.prepend.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    std::string want = expected[i];
    for (auto& c : want)
      if (c == '\r' || c == '\n' || c == '\0') c = '?';
    EXPECT_EQ(tx.prepend[i].value, want) << "case " << i + 1;
  }
}

TEST(LuaPatterns, BacktrackingIsBounded) {
  for (const char* expr : {"s:find('.-b')", "s:match('.*b')", "s:gsub('(.-)b', '')", "for x in s:gmatch('a.-b') do end",
                           "s:find('(a*)*b')", "s:find(('.-'):rep(3) .. 'b')"}) {
    Options o;
    o.max_instructions = 1000000;
    o.scripts = {script("bt.lua", std::string("function on_data(tx, msg) local s = string.rep('a', 200000) ") + expr +
                                      " end")};
    Host h(o);
    Transaction tx;
    auto t0 = std::chrono::steady_clock::now();
    auto v = run(h, tx);
    EXPECT_EQ(v.kind, Verdict::Kind::tempfail) << expr;
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2)) << expr;
  }
}

TEST(LuaPatterns, LinearScansStayCheap) {
  Options o;
  o.max_instructions = 1000000;
  o.scripts = {script("lin.lua", R"LUA(
    function on_data(tx, msg)
      local s = string.rep("line of text\r\n", 20000) .. "needle"
      assert(s:find("needle", 1, true))
      assert(s:find("needle"))
      assert(s:match("(nee%a+)$") == "needle")
      local n = 0
      for _ in s:gmatch("\r\n") do n = n + 1 end
      assert(n == 20000)
    end)LUA")};
  Host h(o);
  Transaction tx;
  EXPECT_EQ(run(h, tx).kind, Verdict::Kind::proceed);
}

}  // namespace
}  // namespace gw::lua
