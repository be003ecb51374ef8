#include "plugins/spf/spf_check.hpp"

#include <algorithm>
#include <limits>
#include <memory>
#include <utility>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "gateway/dns/wire.hpp"
#include "plugins/spf/libspf2_run.hpp"
#include "plugins/spf/result_cache.hpp"
#include "plugins/spf/spf_record.hpp"

namespace gw::spf {
namespace {

using namespace detail;

bool valid_domain(const std::string& d) {
  auto n = dns::normalize_name(d);
  if (!n) return false;
  // RFC 7208 §4.3: a domain with a single label or not a valid name is "none"
  return n->find('.') != std::string::npos;
}

struct Gather {
  std::vector<dns::Answer> out;
  std::size_t left = 0;
  std::unique_ptr<boost::asio::steady_timer> done;
};

boost::asio::awaitable<void> gather_one(dns::Resolver& resolver, std::shared_ptr<Gather> g, std::size_t i, std::string name,
                                        dns::Type type) {
  g->out[i] = co_await resolver.query(std::move(name), type);
  if (--g->left == 0) g->done->cancel();
}

// Runs the queries concurrently on this executor and waits for all of them.
boost::asio::awaitable<std::vector<dns::Answer>> query_all(dns::Resolver& resolver,
                                                          const std::vector<std::pair<std::string, dns::Type>>& qs) {
  namespace asio = boost::asio;
  std::vector<dns::Answer> single;
  if (qs.size() == 1) {
    single.push_back(co_await resolver.query(qs[0].first, qs[0].second));
    co_return single;
  }
  auto ex = co_await asio::this_coro::executor;
  auto g = std::make_shared<Gather>();
  g->out.resize(qs.size());
  g->left = qs.size();
  g->done = std::make_unique<asio::steady_timer>(ex, asio::steady_timer::time_point::max());
  for (std::size_t i = 0; i < qs.size(); ++i)
    asio::co_spawn(ex, gather_one(resolver, g, i, qs[i].first, qs[i].second), asio::detached);
  // the session's executor is one thread: nothing runs between this check and the wait
  if (g->left > 0) co_await g->done->async_wait(asio::as_tuple(asio::use_awaitable));
  co_return std::move(g->out);
}

}  // namespace

std::string sanitize(std::string_view s, std::size_t max) {
  std::string out;
  for (char c : s) {
    if (out.size() >= max) break;
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x21 || u > 0x7e || c == '"' || c == '\\' || c == '(' || c == ')' || c == ';') out += '_';
    else out += c;
  }
  return out;
}

boost::asio::awaitable<Result> check(dns::Resolver& resolver, const Request& req, const Options& opts) {
  Result res;
  const auto at = req.sender.rfind('@');
  if (!req.sender.empty()) {
    res.identity = "mailfrom";
    res.domain = at == std::string::npos ? req.sender : req.sender.substr(at + 1);
    res.sender = (at == std::string::npos || at == 0) ? "postmaster@" + res.domain : req.sender;
  } else {
    res.identity = "helo";
    res.domain = req.helo;
    res.sender = "postmaster@" + req.helo;
  }
  // Inputs libspf2 expands into macros are bounded first (RFC 5321 limits; CVE-2021-33912/33913).
  const std::string local = at == std::string::npos ? std::string() : req.sender.substr(0, at);
  if (!valid_domain(res.domain) || local.size() > 64 || req.helo.size() > 255) {
    res.result = "none";
    res.problem = "no valid domain to check";
    co_return res;
  }
  if (unsafe_for_compile(req.sender, 320) || unsafe_for_compile(req.helo, 255)) {
    res.result = "none";
    res.problem = "identity holds characters SPF cannot check";
    co_return res;
  }

  ResultCache& cache = ResultCache::for_this_thread();
  const std::string cache_key = opts.cache_results ? ResultCache::key_of(req, opts) : std::string();
  if (const Result* hit = opts.cache_results ? cache.find(cache_key) : nullptr) {
    Result r = *hit;
    r.rounds = 0;  // no libspf2 run, no resolver call
    r.queries = 0;
    co_return r;
  }

  CheckState st;
  st.resolver = &resolver;
  st.addr_type = req.ip.is_v4() ? dns::Type::A : dns::Type::AAAA;
  st.ctx.sender = res.sender;
  st.ctx.local = res.sender.substr(0, res.sender.rfind('@'));
  st.ctx.sender_domain = res.domain;
  st.ctx.domain = res.domain;
  st.ctx.ip = req.ip.to_string();
  st.ip = req.ip;
  st.ctx.v4 = req.ip.is_v4();
  st.ctx.helo = req.helo;
  st.ctx.receiver = req.receiver;
  st.ctx.timestamp = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  const auto deadline = std::chrono::steady_clock::now() + opts.budget;
  RunOutcome out;
  for (;;) {
    ++res.rounds;
    st.missing.clear();
    st.missing_keys.clear();
    out = run_libspf2(st, req);
    if (st.missing.empty()) break;
    if (res.rounds >= opts.max_rounds || std::chrono::steady_clock::now() >= deadline) {
      out = {"temperror", "SPF evaluation needed too many DNS rounds or too long"};
      break;
    }
    auto todo = std::move(st.missing);
    st.missing.clear();
    auto answers = co_await query_all(resolver, todo);
    res.queries += static_cast<int>(todo.size());
    // An MX or PTR answer: fetch the addresses libspf2 will ask for next, in this same round.
    std::vector<std::pair<std::string, dns::Type>> targets;
    for (std::size_t i = 0; i < todo.size(); ++i) {
      const auto type = todo[i].second;
      const auto& a = answers[i];
      if (a.status != dns::Status::ok || (type != dns::Type::MX && type != dns::Type::PTR)) continue;
      std::size_t k = 0;
      for (auto& rec : a.records) {
        if (k++ >= kMaxNamesPerAnswer) break;
        std::string target = rec;
        if (type == dns::Type::MX) {
          auto sp = rec.find(' ');
          target = sp == std::string::npos ? rec : rec.substr(sp + 1);
        }
        auto n = dns::normalize_name(target);
        if (!n || st.answers.count(key_of(*n, st.addr_type))) continue;
        if (std::find(targets.begin(), targets.end(), std::make_pair(*n, st.addr_type)) == targets.end())
          targets.emplace_back(*n, st.addr_type);
      }
    }
    for (std::size_t i = 0; i < todo.size(); ++i) st.answers[key_of(todo[i].first, todo[i].second)] = std::move(answers[i]);
    if (!targets.empty()) {
      auto b = co_await query_all(resolver, targets);
      res.queries += static_cast<int>(targets.size());
      for (std::size_t i = 0; i < targets.size(); ++i) st.answers[key_of(targets[i].first, targets[i].second)] = std::move(b[i]);
    }
  }
  res.result = out.result;
  res.problem = out.problem;
  // Kept for the shortest TTL of the answers read; not a temporary result, not one read from a
  // malformed answer (neither is cached by the resolver), not a fail with its own exp= (its text may
  // hold %{t}, the time of the check).
  bool cacheable = opts.cache_results && res.result != "temperror";
  std::uint32_t ttl = std::numeric_limits<std::uint32_t>::max();
  for (const auto& [k, a] : st.answers) {
    if (a.status == dns::Status::temperror || a.status == dns::Status::permerror) cacheable = false;
    ttl = std::min(ttl, a.ttl);
  }
  if (res.result == "fail" && !st.chain.empty() && st.chain.back().record.exp) cacheable = false;
  if (res.result == "fail") {
    // RFC 7208 §6.2: the exp= of the record that gave the result, else our default text
    MacroContext ctx = st.ctx;
    const Record* rec = nullptr;
    if (!st.chain.empty()) {
      ctx.domain = st.chain.back().domain;
      rec = &st.chain.back().record;
    }
    if (rec && rec->exp) {
      auto target = expand(*rec->exp, ctx, false, true);
      auto n = target ? dns::normalize_name(*target) : std::nullopt;
      if (n) {
        auto a = co_await resolver.query(*n, dns::Type::TXT);
        ++res.queries;
        if (a.status == dns::Status::ok && a.records.size() == 1 && a.records[0].size() <= kMaxExplanation) {
          if (CheckState::uses_p(a.records[0])) {
            st.ctx.domain = ctx.domain;
            for (int i = 0; i < 3; ++i) {  // PTR, then the addresses of its names
              st.missing.clear();
              st.missing_keys.clear();
              ctx.p = st.validated_p();
              if (st.missing.empty()) break;
              for (auto& [mname, mtype] : std::vector(st.missing)) {
                st.answers[key_of(mname, mtype)] = co_await resolver.query(mname, mtype);
                ++res.queries;
              }
            }
          }
          if (auto text = expand(a.records[0], ctx, true, false)) res.explanation = *text;
        }
      }
    }
    if (res.explanation.empty())
      if (auto text = expand(opts.default_explanation, ctx, true, false)) res.explanation = *text;
  }
  if (cacheable) cache.put(cache_key, res, std::chrono::seconds(ttl));
  co_return res;
}

}  // namespace gw::spf
