// SPF checks per second with a warm resolver cache: the real AsioResolver (answers cached after the
// first check) in front of a small in-process DNS responder, and plugins/spf's check() with libspf2.
#include <benchmark/benchmark.h>

#include <map>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "gateway/dns/asio_resolver.hpp"
#include "plugins/spf/spf_check.hpp"

namespace asio = boost::asio;
using asio::ip::udp;

namespace {

// Answers TXT and A queries from a fixed table (TTL 3600), NXDOMAIN otherwise.
class Responder {
 public:
  Responder() : sock_(io_, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    txt_["bench.example"] = "v=spf1 ip4:198.51.100.0/24 include:_spf.bench.example -all";
    txt_["_spf.bench.example"] = "v=spf1 a:out.bench.example mx ip4:203.0.113.0/24 ~all";
    a_["out.bench.example"] = {192, 0, 2, 10};
    a_["mx.bench.example"] = {192, 0, 2, 25};
    asio::co_spawn(io_, serve(), asio::detached);
    thread_ = std::thread([this] { io_.run(); });
  }
  ~Responder() {
    io_.stop();
    thread_.join();
  }
  udp::endpoint endpoint() const { return sock_.local_endpoint(); }

 private:
  asio::awaitable<void> serve() {
    std::vector<std::uint8_t> buf(1500);
    for (;;) {
      udp::endpoint from;
      auto n = co_await sock_.async_receive_from(asio::buffer(buf), from, asio::use_awaitable);
      std::size_t p = 12;
      std::string name;
      while (p < n && buf[p]) {
        if (!name.empty()) name += '.';
        name.append(reinterpret_cast<char*>(&buf[p + 1]), buf[p]);
        p += buf[p] + 1;
      }
      unsigned type = (buf[p + 1] << 8) | buf[p + 2];
      std::vector<std::uint8_t> r(buf.begin(), buf.begin() + p + 5);
      r[2] = 0x81;
      r[3] = 0x80;
      r[6] = r[7] = r[8] = r[9] = r[10] = r[11] = 0;
      std::vector<std::uint8_t> rdata;
      if (type == 16 && txt_.count(name)) {
        auto& t = txt_[name];
        rdata.push_back(static_cast<std::uint8_t>(t.size()));
        rdata.insert(rdata.end(), t.begin(), t.end());
      } else if (type == 1 && a_.count(name)) {
        rdata = a_[name];
      } else if (type == 15 && name == "_spf.bench.example") {
        rdata = {0, 10, 2, 'm', 'x', 0xC0, 12 + 5};  // 10 mx.<bench.example via pointer into the qname>
      }
      if (!rdata.empty()) {
        r[7] = 1;
        std::uint8_t rr[] = {0xC0, 0x0C, 0, static_cast<std::uint8_t>(type), 0, 1, 0, 0, 0x0E, 0x10, 0,
                             static_cast<std::uint8_t>(rdata.size())};
        r.insert(r.end(), rr, rr + sizeof rr);
        r.insert(r.end(), rdata.begin(), rdata.end());
      } else if (!(type == 1 || type == 16 || type == 15) || (!txt_.count(name) && !a_.count(name))) {
        r[3] = 0x83;  // NXDOMAIN
      }
      co_await sock_.async_send_to(asio::buffer(r), from, asio::use_awaitable);
    }
  }
  asio::io_context io_;
  udp::socket sock_;
  std::thread thread_;
  std::map<std::string, std::string> txt_;
  std::map<std::string, std::vector<std::uint8_t>> a_;
};

void BM_SpfCheckWarmCache(benchmark::State& state) {
  Responder responder;
  gw::dns::ResolverOptions o;
  o.servers = {responder.endpoint()};
  o.timeout = std::chrono::milliseconds(2000);
  auto resolver = std::make_shared<gw::dns::AsioResolver>(o);
  asio::io_context io;
  const bool pass = state.range(0) == 0;
  gw::spf::Request req{asio::ip::make_address(pass ? "192.0.2.10" : "192.0.2.77"), "user@bench.example",
                       "mail.bench.example", "gw.bench.test"};
  gw::spf::Options opts;
  std::string last;
  auto one = [&] {
    asio::co_spawn(io, [&]() -> asio::awaitable<void> {
      auto r = co_await gw::spf::check(*resolver, req, opts);
      last = r.result;
    }, asio::detached);
    io.restart();
    io.run();
  };
  one();  // warm the cache
  if (last != (pass ? "pass" : "fail")) state.SkipWithError(("unexpected result " + last).c_str());
  const auto sent = resolver->stats().sent;
  for (auto _ : state) one();
  if (resolver->stats().sent != sent) state.SkipWithError("the cache was not warm");
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(last);
}
BENCHMARK(BM_SpfCheckWarmCache)->Arg(0)->Arg(1)->ArgNames({"fail"});

}  // namespace
