// Cost of Lua policy hook calls (one worker's state, no sockets):
//   BM_LuaEmptyHook       a hook that returns nothing: the fixed cost of entering Lua (coroutine,
//                         tx userdata, instruction hook armed)
//   BM_LuaTypicalMessage  the "typical policy" of issue 7 for one message: on_rcpt_to with a
//                         gateway.store.incr (answered at once by an in-memory store) plus on_data
//                         with a header lookup and tx:add_header
//   BM_LuaAttachmentScan  policies/dangerous_attachments.lua over a 64 KiB MIME message
//   BM_LuaRegexMapDns     the typical policy of the richer API for one message: on_connect with a
//                         gateway.map lookup (10,000 networks) and a gateway.dns.lookup answered at
//                         once (as from the resolver's cache), on_data with a PCRE2 rule on the Subject
//                         and the body, tx.session_data and tx:add_header
#include <benchmark/benchmark.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "gateway/dns/resolver.hpp"
#include "gateway/store/store.hpp"
#include "lua/host.hpp"

namespace {
namespace asio = boost::asio;
using namespace gw;

class InstantStore : public store::Store {
 public:
  std::map<std::string, std::int64_t> counts;
  asio::awaitable<store::Result<std::int64_t>> incr(std::string key, std::int64_t n, Ttl) override {
    co_return store::Result<std::int64_t>{true, "", counts[key] += n};
  }
  asio::awaitable<store::Result<std::optional<std::string>>> get(std::string) override {
    co_return store::Result<std::optional<std::string>>{true, "", std::nullopt};
  }
  asio::awaitable<store::Result<bool>> set(std::string, std::string, Ttl) override { co_return store::Result<bool>{true, "", true}; }
  asio::awaitable<store::Result<bool>> set_if_absent(std::string, std::string, Ttl) override {
    co_return store::Result<bool>{true, "", true};
  }
};

class InstantResolver : public dns::Resolver {
 public:
  asio::awaitable<dns::Answer> query(std::string, dns::Type) override {
    co_return dns::Answer{dns::Status::ok, {"10 mx.sender.test"}, 300};
  }
};

std::string script_file(const std::string& name, const std::string& text) {
  auto path = (std::filesystem::temp_directory_path() / name).string();
  std::ofstream(path) << text;
  return path;
}

Transaction make_tx() {
  Transaction tx;
  tx.conn.id = "BENCH";
  tx.conn.client.ip = "192.0.2.1";
  tx.has_sender = true;
  tx.sender = "alice@sender.test";
  tx.recipients = {"bob@example.test"};
  tx.message.buffer() = "From: Alice <alice@sender.test>\r\nTo: bob@example.test\r\nSubject: hello\r\n"
                        "Message-ID: <1@sender.test>\r\n\r\nHello Bob.\r\n";
  return tx;
}

template <typename F>
void drive(benchmark::State& state, F body) {
  asio::io_context io;
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    for (auto _ : state) co_await body();
  }, asio::detached);
  io.run();
}

void BM_LuaEmptyHook(benchmark::State& state) {
  lua::Options o;
  o.scripts = {script_file("bench_empty.lua", "function on_rcpt_to(tx, addr) end")};
  lua::Host h(o);
  auto tx = make_tx();
  drive(state, [&] { return h.call(lua::Hook::rcpt_to, tx, "bob@example.test"); });
}
BENCHMARK(BM_LuaEmptyHook);

void BM_LuaTypicalMessage(benchmark::State& state) {
  lua::Options o;
  o.store = std::make_shared<InstantStore>();
  o.scripts = {script_file("bench_typical.lua", R"(
    function on_rcpt_to(tx, addr)
      local n = gateway.store.incr("rcpt:" .. tx.sender, 1, "1h")
      if n > 1e12 then return gateway.tempfail(451, "4.7.1", "too many") end
    end
    function on_data(tx, msg)
      local subject = msg:header("Subject")
      if subject and subject:find("VIAGRA", 1, true) then return gateway.reject(550, "5.7.1", "spam") end
      tx:add_header("X-Policy", "checked")
    end)")};
  lua::Host h(o);
  auto tx = make_tx();
  drive(state, [&]() -> asio::awaitable<Verdict> {
    co_await h.call(lua::Hook::rcpt_to, tx, "bob@example.test");
    auto v = co_await h.call(lua::Hook::data, tx);
    tx.prepend.clear();
    co_return v;
  });
  state.counters["msgs/s"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_LuaTypicalMessage);

void BM_LuaAttachmentScan(benchmark::State& state) {
  lua::Options o;
  // the source tree from this file's path (relative to the build directory under ccache's base_dir)
  auto exe_dir = std::filesystem::read_symlink("/proc/self/exe").parent_path();
  auto root = (exe_dir / __FILE__).parent_path().parent_path().parent_path();
  o.scripts = {(root / "policies" / "dangerous_attachments.lua").string()};
  lua::Host h(o);
  auto tx = make_tx();
  std::string m = "Subject: x\r\nContent-Type: multipart/mixed; boundary=\"B\"\r\n\r\n";
  for (int i = 0; i < 8; ++i) {
    m += "--B\r\nContent-Type: application/pdf; name=\"r" + std::to_string(i) + ".pdf\"\r\n\r\n";
    for (int j = 0; j < 100; ++j) m += std::string(76, 'A') + "\r\n";
  }
  m += "--B--\r\n";
  tx.message.buffer() = m;
  drive(state, [&] { return h.call(lua::Hook::data, tx); });
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * m.size()));
}
BENCHMARK(BM_LuaAttachmentScan);

void BM_LuaRegexMapDns(benchmark::State& state) {
  std::string nets;
  for (int i = 0; i < 10000; ++i) nets += "10." + std::to_string(i / 256) + "." + std::to_string(i % 256) + ".0/24\n";
  auto list = script_file("bench_nets.list", nets);
  lua::Options o;
  o.resolver = std::make_shared<InstantResolver>();
  o.scripts = {script_file("bench_rich.lua", R"(
    local nets = gateway.map(")" + list + R"(", "ip")
    local spam = gateway.regex.new([[\b(?:viagra|cialis|casino)\b]], "i")
    function on_connect(tx)
      tx.session_data.listed = nets:contains(tx.client.ip)
      local r = gateway.dns.lookup("sender.test", "MX")
      tx.session_data.mx = r.status == "ok"
    end
    function on_data(tx, msg)
      if tx.session_data.listed then return gateway.reject(550, "5.7.1", "listed") end
      if spam:find(msg:header("Subject") or "") or spam:find(msg:body()) then
        return gateway.reject(550, "5.7.1", "spam")
      end
      tx:add_header("X-Policy", tx.session_data.mx and "mx" or "no-mx")
    end)")};
  lua::Host h(o);
  auto tx = make_tx();
  drive(state, [&]() -> asio::awaitable<Verdict> {
    // a session per message: tx.session_data is created and dropped each time
    co_await h.call(lua::Hook::connect, tx);
    auto v = co_await h.call(lua::Hook::data, tx);
    co_await h.end_session(tx);
    tx.prepend.clear();
    co_return v;
  });
  state.counters["msgs/s"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_LuaRegexMapDns);

}  // namespace
