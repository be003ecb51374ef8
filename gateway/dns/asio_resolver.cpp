#include "gateway/dns/asio_resolver.hpp"

#include <algorithm>
#include <fstream>
#include <random>
#include <sstream>
#include <variant>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "gateway/dns/wire.hpp"
#include "gateway/observe/log.hpp"
#include "gateway/observe/metrics.hpp"

namespace gw::dns {
namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
using clock = std::chrono::steady_clock;
using udp = asio::ip::udp;
using tcp = asio::ip::tcp;

namespace {

constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

observe::Counter& lookups(const char* source) {
  return observe::Metrics::instance().counter("smtpgw_dns_lookups_total",
                                              "DNS lookups by where the answer came from", std::string("source=\"") + source + "\"");
}

observe::Counter& from_cache() {
  static auto& c = lookups("cache");
  return c;
}

std::uint16_t random_id() {
  thread_local std::mt19937 rng{std::random_device{}()};
  return static_cast<std::uint16_t>(rng());
}

// One exchange over TCP with `server` (after a truncated UDP answer), bounded by `deadline`.
asio::awaitable<std::optional<Parsed>> over_tcp(const udp::endpoint& server, const std::vector<std::uint8_t>& packet,
                                                std::uint16_t id, const std::string& name, Type type,
                                                clock::time_point deadline) {
  auto ex = co_await asio::this_coro::executor;
  tcp::socket sock(ex);
  asio::steady_timer timer(ex);
  timer.expires_at(deadline);
  auto exchange = [&]() -> asio::awaitable<std::optional<Parsed>> {
    auto [ec] = co_await sock.async_connect(tcp::endpoint(server.address(), server.port()), tuple_awaitable);
    if (ec) co_return std::nullopt;
    std::vector<std::uint8_t> out;
    out.reserve(packet.size() + 2);
    out.push_back(static_cast<std::uint8_t>(packet.size() >> 8));
    out.push_back(static_cast<std::uint8_t>(packet.size() & 0xff));
    out.insert(out.end(), packet.begin(), packet.end());
    auto [ec2, n2] = co_await asio::async_write(sock, asio::buffer(out), tuple_awaitable);
    if (ec2) co_return std::nullopt;
    std::uint8_t len[2];
    auto [ec3, n3] = co_await asio::async_read(sock, asio::buffer(len), tuple_awaitable);
    if (ec3) co_return std::nullopt;
    std::vector<std::uint8_t> in((len[0] << 8) | len[1]);
    auto [ec4, n4] = co_await asio::async_read(sock, asio::buffer(in), tuple_awaitable);
    if (ec4) co_return std::nullopt;
    auto p = parse_response(in.data(), in.size(), name, type);
    if (!p || p->id != id || !p->question_matches || p->truncated) co_return std::nullopt;
    co_return p;
  };
  auto r = co_await (exchange() || timer.async_wait(tuple_awaitable));
  if (r.index() == 0) co_return std::get<0>(r);
  co_return std::nullopt;
}

}  // namespace

AsioResolver::AsioResolver(ResolverOptions opts) : opts_(std::move(opts)) {}

// Waiters still parked when the resolver goes without shutdown() (an io_context destroyed while
// others still run, as in some unit tests) hold suspended coroutines of other io_contexts that may
// already be gone: destroying them could touch freed sockets, so they are deliberately kept, never
// destroyed. The gateway calls shutdown() first, and then nothing is left here.
namespace {
void keep_forever(std::vector<std::function<void(const Answer&)>>&& waiters) {
  if (!waiters.empty()) new std::vector<std::function<void(const Answer&)>>(std::move(waiters));
}
}  // namespace

AsioResolver::~AsioResolver() {
  for (auto& [key, flight] : inflight_) keep_forever(std::move(flight.waiters));
}

void AsioResolver::shutdown() {
  // The waiters are taken out under the lock and dropped outside it (a handler's destructor hands
  // its coroutine to its own executor to destroy; nothing here runs a lookup again).
  std::vector<std::function<void(const Answer&)>> drop;
  std::lock_guard lk(mu_);
  shut_down_ = true;
  for (auto& [key, flight] : inflight_)
    for (auto& w : flight.waiters) drop.push_back(std::move(w));
  inflight_.clear();
}

void AsioResolver::abandon(const std::string& key) {
  std::vector<std::function<void(const Answer&)>> waiters;
  bool keep;
  {
    std::lock_guard lk(mu_);
    auto it = inflight_.find(key);
    if (it == inflight_.end()) return;
    waiters = std::move(it->second.waiters);
    inflight_.erase(it);
    keep = !shut_down_;
  }
  if (keep) keep_forever(std::move(waiters));  // see above; after shutdown() they are destroyed here
}

ResolverStats AsioResolver::stats() const {
  std::lock_guard lk(mu_);
  return stats_;
}

void AsioResolver::clear_cache() {
  std::lock_guard lk(mu_);
  cache_.clear();
}

bool AsioResolver::cached(const std::string& key, Answer& out) {
  auto it = cache_.find(key);
  if (it == cache_.end()) return false;
  auto now = clock::now();
  if (it->second.expires <= now) {
    cache_.erase(it);
    return false;
  }
  out = it->second.answer;
  out.ttl = static_cast<std::uint32_t>(std::chrono::duration_cast<std::chrono::seconds>(it->second.expires - now).count());
  return true;
}

void AsioResolver::store(const std::string& key, const Answer& a, bool has_soa) {
  std::uint32_t ttl;
  switch (a.status) {
    case Status::ok: ttl = a.ttl; break;
    case Status::nodata:
    case Status::nxdomain: ttl = has_soa ? a.ttl : opts_.negative_ttl_default; break;
    default: return;  // temporary and malformed answers are not kept
  }
  ttl = std::min(ttl, opts_.max_ttl);
  if (ttl == 0) return;
  if (cache_.size() >= opts_.max_entries) {
    auto now = clock::now();
    std::erase_if(cache_, [now](const auto& kv) { return kv.second.expires <= now; });
    if (cache_.size() >= opts_.max_entries) cache_.clear();
  }
  cache_[key] = Entry{a, clock::now() + std::chrono::seconds(ttl)};
}

void AsioResolver::finish(const std::string& key, const Answer& a, bool has_soa) {
  std::vector<std::function<void(const Answer&)>> waiters;
  {
    std::lock_guard lk(mu_);
    store(key, a, has_soa);
    auto it = inflight_.find(key);
    if (it != inflight_.end()) {
      waiters = std::move(it->second.waiters);
      inflight_.erase(it);
    }
  }
  for (auto& w : waiters) w(a);
}

// A live cache entry for `key` into `out`, counted as a query answered from the cache.
bool AsioResolver::take_cached(const std::string& key, Answer& out) {
  {
    std::lock_guard lk(mu_);
    if (!cached(key, out)) return false;
    ++stats_.queries;
    ++stats_.cache_hits;
  }
  from_cache().inc();
  return true;
}

bool AsioResolver::cached_answer(const std::string& raw_name, Type type, Answer& out) {
  auto name = normalize_name(raw_name);
  return name && take_cached(std::to_string(static_cast<unsigned>(type)) + ":" + *name, out);
}

asio::awaitable<Answer> AsioResolver::query(std::string raw_name, Type type) {
  auto name = normalize_name(raw_name);
  if (!name) co_return Answer{Status::permerror, {}, 0};
  const std::string key = std::to_string(static_cast<unsigned>(type)) + ":" + *name;
  // A cached answer comes back at once: no handler posted, no trip through the scheduler (most
  // queries of SPF, DMARC and the DNS lists are answered from the cache).
  if (Answer hit; take_cached(key, hit)) co_return hit;

  bool leader = false, joined = false;
  std::optional<Answer> early = co_await asio::async_initiate<decltype(asio::use_awaitable), void(std::optional<Answer>)>(
      [this, &key, &leader, &joined](auto handler) {
        auto ex = asio::get_associated_executor(handler);
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        std::lock_guard lk(mu_);
        ++stats_.queries;
        Answer hit;
        if (cached(key, hit)) {
          ++stats_.cache_hits;
          asio::post(ex, [h, hit]() mutable { (*h)(std::optional<Answer>(std::move(hit))); });
          return;
        }
        auto it = inflight_.find(key);
        if (it != inflight_.end()) {
          ++stats_.joined;
          joined = true;
          it->second.waiters.push_back([h, ex](const Answer& a) {
            asio::post(ex, [h, a]() mutable { (*h)(std::optional<Answer>(std::move(a))); });
          });
          return;
        }
        inflight_.emplace(key, Flight{});
        ++stats_.sent;
        leader = true;
        asio::post(ex, [h]() mutable { (*h)(std::optional<Answer>()); });
      },
      asio::use_awaitable);
  static auto& from_flight = lookups("joined");
  static auto& from_network = lookups("network");
  (joined ? from_flight : leader ? from_network : from_cache()).inc();
  if (early) co_return std::move(*early);

  // This coroutine owns the lookup. It ends by finish(); a coroutine destroyed before that (its
  // io_context is being destroyed at exit) abandons the flight instead of resuming waiters that may
  // live on contexts already gone. The shared_ptr keeps the resolver alive as long as the frame.
  struct Guard {
    std::shared_ptr<AsioResolver> self;
    const std::string& key;
    bool done = false;
    ~Guard() {
      if (!done) self->abandon(key);
    }
  } guard{shared_from_this(), key};
  Outcome out;
  try {
    out = co_await lookup(*name, type);
  } catch (const std::exception& e) {
    log::warn("dns_error", {{"name", *name}, {"error", e.what()}});
    out.answer = Answer{Status::temperror, {}, 0};
  }
  guard.done = true;
  finish(key, out.answer, out.has_soa);
  co_return out.answer;
}

// Sends the query to the nameservers in turn (each gets a share of the budget) on one UDP socket
// per address family; an answer to an earlier try that arrives late is still taken.
asio::awaitable<AsioResolver::Outcome> AsioResolver::lookup(const std::string& name, Type type) {
  auto ex = co_await asio::this_coro::executor;
  const auto deadline = clock::now() + opts_.timeout;
  const std::size_t n = opts_.servers.size();
  if (n == 0) co_return Outcome{Answer{Status::temperror, {}, 0}, false};
  const auto slice = std::max<clock::duration>(std::chrono::milliseconds(200), opts_.timeout / std::max<std::size_t>(3, n));
  const std::uint16_t id = random_id();
  const auto packet = build_query(id, name, type);
  std::optional<udp::socket> v4, v6;
  asio::steady_timer timer(ex);
  std::vector<std::uint8_t> buf(4096);
  std::vector<bool> refused(n, false);  // servers that answered SERVFAIL/REFUSED: no use asking again
  std::size_t refusals = 0;
  for (std::size_t attempt = 0; clock::now() < deadline; ++attempt) {
    if (refused[attempt % n]) continue;
    const auto& server = opts_.servers[attempt % n];
    auto& slot = server.address().is_v4() ? v4 : v6;
    if (!slot) {
      slot.emplace(ex);
      boost::system::error_code ec;
      slot->open(server.address().is_v4() ? udp::v4() : udp::v6(), ec);
      if (ec) {
        slot.reset();
        continue;
      }
    }
    udp::socket& sock = *slot;
    auto [sec, sent] = co_await sock.async_send_to(asio::buffer(packet), server, tuple_awaitable);
    const auto slice_end = std::min(deadline, clock::now() + slice);
    if (sec) {
      timer.expires_at(slice_end);  // an unreachable server: wait its share, then the next one
      co_await timer.async_wait(tuple_awaitable);
      continue;
    }
    for (;;) {
      timer.expires_at(slice_end);
      udp::endpoint from;
      auto r = co_await (sock.async_receive_from(asio::buffer(buf), from, tuple_awaitable) || timer.async_wait(tuple_awaitable));
      if (r.index() == 1) break;  // this try's share is over
      auto [ec, got] = std::get<0>(r);
      if (ec) break;
      if (std::find(opts_.servers.begin(), opts_.servers.end(), from) == opts_.servers.end()) continue;
      auto p = parse_response(buf.data(), got, name, type);
      if (!p || p->id != id || !p->question_matches) continue;  // spoofed, stale or mangled: keep waiting
      if (p->truncated) {
        {
          std::lock_guard lk(mu_);
          ++stats_.tcp;
        }
        auto t = co_await over_tcp(from, packet, id, name, type, deadline);
        if (!t) break;
        p = std::move(t);
      }
      if (p->rcode != 0 && p->rcode != 3) {  // SERVFAIL, REFUSED...: ask the next server now
        auto idx = static_cast<std::size_t>(std::find(opts_.servers.begin(), opts_.servers.end(), from) - opts_.servers.begin());
        if (!refused[idx]) {
          refused[idx] = true;
          ++refusals;
        }
        if (refusals == n) co_return Outcome{Answer{Status::temperror, {}, 0}, false};
        break;
      }
      co_return Outcome{std::move(p->answer), p->has_soa};
    }
  }
  {
    std::lock_guard lk(mu_);
    ++stats_.timeouts;
  }
  static auto& failed = observe::Metrics::instance().counter("smtpgw_dns_temperrors_total",
                                                             "DNS lookups that ended in a temporary error");
  failed.inc();
  co_return Outcome{Answer{Status::temperror, {}, 0}, false};
}

std::vector<udp::endpoint> parse_resolv_conf(const std::string& text) {
  std::vector<udp::endpoint> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string key, value;
    ls >> key >> value;
    if (key != "nameserver") continue;
    auto pct = value.find('%');  // fe80::1%eth0
    std::string host = value.substr(0, pct);
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(host, ec);
    if (ec) continue;
    if (addr.is_v6() && pct != std::string::npos) {
      auto v6 = addr.to_v6();
      v6.scope_id(0);
      addr = v6;
    }
    out.emplace_back(addr, 53);
  }
  return out;
}

std::shared_ptr<AsioResolver> make_resolver(const config::DnsConfig& cfg, const std::string& resolv_conf) {
  ResolverOptions o;
  o.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(cfg.timeout);
  if (o.timeout.count() <= 0) o.timeout = std::chrono::milliseconds(5000);
  for (auto& e : cfg.nameservers) {
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(e.host, ec);
    if (ec) throw config::ConfigError("dns.nameservers: \"" + e.to_string() + "\" is not an IP address and port");
    o.servers.emplace_back(addr, e.port ? e.port : 53);
  }
  if (o.servers.empty()) {
    std::ifstream f(resolv_conf);
    std::stringstream ss;
    ss << f.rdbuf();
    o.servers = parse_resolv_conf(ss.str());
    if (o.servers.empty()) {
      log::warn("dns", {{"message", "no nameserver in " + resolv_conf + "; using 127.0.0.1:53"}});
      o.servers.emplace_back(asio::ip::make_address("127.0.0.1"), 53);
    }
  }
  return std::make_shared<AsioResolver>(std::move(o));
}

}  // namespace gw::dns
