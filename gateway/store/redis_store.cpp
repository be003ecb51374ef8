#include "gateway/store/redis_store.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <optional>
#include <stdexcept>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "gateway/observe/log.hpp"
#include "gateway/store/detail.hpp"

namespace gw::store {
namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

// KEYS[1] += ARGV[1]; a key created here expires ARGV[2] ms later (0 = never).
const std::string kIncr = R"(local e = redis.call('EXISTS', KEYS[1])
local v = redis.call('INCRBY', KEYS[1], ARGV[1])
if e == 0 and tonumber(ARGV[2]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return v)";

// GCRA on Redis' clock. ARGV[1] = period (us), ARGV[2] = emission interval times cost (us).
// Returns {1, 0} when allowed (state updated) or {0, retry_after_us}.
const std::string kRate = R"(local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local period = tonumber(ARGV[1])
local step = tonumber(ARGV[2])
local tat = now
local s = redis.call('GET', KEYS[1])
if s then tat = tonumber(s) or now end
if tat < now then tat = now end
local nxt = tat + step
if nxt - now > period then return {0, nxt - period - now} end
redis.call('SET', KEYS[1], string.format('%.0f', nxt), 'PX', math.max(1, math.ceil((nxt - now) / 1000)))
return {1, 0})";

const std::string kIncrSha = detail::sha1_hex(kIncr);
const std::string kRateSha = detail::sha1_hex(kRate);

RedisStore::Reply copy_reply(const redisReply* r) {
  RedisStore::Reply out;
  out.type = r->type;
  out.integer = r->integer;
  if (r->str) out.str.assign(r->str, r->len);
  for (size_t i = 0; i < r->elements; ++i) out.elements.push_back(copy_reply(r->element[i]));
  return out;
}

struct Pending {
  explicit Pending(asio::io_context& io) : timer(io) {}
  asio::steady_timer timer;
  bool done = false;
  Result<RedisStore::Reply> result;
};

}  // namespace

RedisStore::Options RedisStore::Options::from_url(const std::string& url) {
  Options o;
  if (url.rfind("unix://", 0) == 0) {
    std::string rest = url.substr(7);
    auto q = rest.find("?db=");
    if (q != std::string::npos) {
      o.db = std::stoi(rest.substr(q + 4));
      rest.resize(q);
    }
    if (rest.empty()) throw std::invalid_argument("unix:// URL without a path");
    o.unix_path = rest;
    return o;
  }
  if (url.rfind("redis://", 0) != 0) throw std::invalid_argument("expected redis://host:port/db or unix:///path");
  std::string rest = url.substr(8);
  auto at = rest.rfind('@');
  if (at != std::string::npos) {
    std::string cred = rest.substr(0, at);
    rest = rest.substr(at + 1);
    auto colon = cred.find(':');
    o.password = colon == std::string::npos ? cred : cred.substr(colon + 1);
  }
  auto slash = rest.find('/');
  if (slash != std::string::npos) {
    std::string db = rest.substr(slash + 1);
    rest.resize(slash);
    if (!db.empty()) {
      auto v = detail::parse_int(db);
      if (!v || *v < 0) throw std::invalid_argument("bad database number \"" + db + "\"");
      o.db = static_cast<int>(*v);
    }
  }
  std::string host = rest, port;
  if (!rest.empty() && rest.front() == '[') {
    auto close = rest.find(']');
    if (close == std::string::npos) throw std::invalid_argument("unclosed [ in host");
    host = rest.substr(1, close - 1);
    if (close + 1 < rest.size() && rest[close + 1] == ':') port = rest.substr(close + 2);
  } else if (auto colon = rest.rfind(':'); colon != std::string::npos) {
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  }
  if (!host.empty()) o.host = host;
  if (!port.empty()) {
    auto v = detail::parse_int(port);
    if (!v || *v <= 0 || *v > 65535) throw std::invalid_argument("bad port \"" + port + "\"");
    o.port = static_cast<int>(*v);
  }
  return o;
}

// One hiredis connection bound to one io_context (so used by one thread only).
struct RedisStore::Conn : std::enable_shared_from_this<RedisStore::Conn> {
  Conn(asio::io_context& io, const Options& o) : io(io), opt(o) {}
  ~Conn() {
    if (ac) {
      redisAsyncContext* a = ac;
      a->data = nullptr;  // no logging from the callbacks now
      redisAsyncFree(a);  // pending callbacks get a null reply; cleanup() runs
    }
  }

  asio::io_context& io;
  Options opt;
  redisAsyncContext* ac = nullptr;
  std::optional<asio::posix::stream_descriptor> sd;
  bool want_read = false, want_write = false, reading = false, writing = false;
  unsigned gen = 0;
  bool connected = false;
  int failures = 0;
  Clock::time_point next_attempt{};
  bool down = false;  // an outage was logged and not yet its end

  std::string where() const {
    return opt.unix_path.empty() ? opt.host + ":" + std::to_string(opt.port) : "unix:" + opt.unix_path;
  }

  void failed(const std::string& why) {
    ++failures;
    auto backoff = opt.backoff_min * (1 << std::min(failures - 1, 10));
    if (backoff > opt.backoff_max) backoff = opt.backoff_max;
    next_attempt = Clock::now() + backoff;
    if (!down) {
      down = true;
      log::warn("store_unavailable", {{"backend", "redis"}, {"server", where()}, {"error", why}});
    }
  }

  // A connection exists (maybe still connecting: hiredis buffers commands until it is up).
  bool ensure(std::string& why) {
    if (ac) return true;
    if (Clock::now() < next_attempt) {
      why = "redis unavailable (reconnecting)";
      return false;
    }
    redisAsyncContext* a = opt.unix_path.empty() ? redisAsyncConnect(opt.host.c_str(), opt.port)
                                                  : redisAsyncConnectUnix(opt.unix_path.c_str());
    if (!a) {
      why = "redis: out of memory";
      failed(why);
      return false;
    }
    if (a->err) {
      why = std::string("redis: ") + a->errstr;
      redisAsyncFree(a);
      failed(why);
      return false;
    }
    ac = a;
    ++gen;
    ac->data = this;
    sd.emplace(io, ac->c.fd);
    ac->ev.data = this;
    ac->ev.addRead = [](void* d) { static_cast<Conn*>(d)->want_read = true; static_cast<Conn*>(d)->arm_read(); };
    ac->ev.delRead = [](void* d) { static_cast<Conn*>(d)->want_read = false; };
    ac->ev.addWrite = [](void* d) { static_cast<Conn*>(d)->want_write = true; static_cast<Conn*>(d)->arm_write(); };
    ac->ev.delWrite = [](void* d) { static_cast<Conn*>(d)->want_write = false; };
    ac->ev.cleanup = [](void* d) { static_cast<Conn*>(d)->detach(); };
    redisAsyncSetDisconnectCallback(ac, &Conn::on_disconnect);
    redisAsyncSetConnectCallback(ac, &Conn::on_connect);  // arms the first write event
    if (!opt.password.empty()) redisAsyncCommand(ac, nullptr, nullptr, "AUTH %b", opt.password.data(), opt.password.size());
    if (opt.db != 0) redisAsyncCommand(ac, nullptr, nullptr, "SELECT %d", opt.db);
    return true;
  }

  // hiredis is about to free the context: stop watching the descriptor, leave closing it to hiredis.
  void detach() {
    ++gen;
    want_read = want_write = reading = writing = false;
    if (sd) {
      boost::system::error_code ec;
      sd->cancel(ec);
      sd->release();
      sd.reset();
    }
    ac = nullptr;
    connected = false;
  }

  // Drops the connection from our side (no reply in time): every pending command fails now.
  void drop(const std::string& why) {
    if (!ac) return;
    redisAsyncContext* a = ac;
    redisAsyncFree(a);
    failed(why);
  }

  static void on_connect(const redisAsyncContext* a, int status) {
    auto* c = static_cast<Conn*>(a->data);
    if (!c) return;
    if (status != REDIS_OK) {
      c->failed(std::string("redis: ") + (a->errstr ? a->errstr : "connect failed"));
      return;  // hiredis frees the context
    }
    c->connected = true;
    c->failures = 0;
    if (c->down) {
      c->down = false;
      log::info("store_connected", {{"backend", "redis"}, {"server", c->where()}});
    }
  }

  static void on_disconnect(const redisAsyncContext* a, int status) {
    auto* c = static_cast<Conn*>(a->data);
    if (!c) return;
    c->connected = false;
    if (status != REDIS_OK) c->failed(std::string("redis: ") + (a->errstr ? a->errstr : "connection lost"));
  }

  static void on_reply(redisAsyncContext* a, void* r, void* privdata) {
    auto* holder = static_cast<std::shared_ptr<Pending>*>(privdata);
    std::shared_ptr<Pending> p = std::move(*holder);
    delete holder;
    if (p->done) return;
    p->done = true;
    auto* reply = static_cast<redisReply*>(r);
    if (!reply) {
      p->result.error = std::string("redis: ") + (a && a->errstr ? a->errstr : "connection lost");
    } else if (reply->type == REDIS_REPLY_ERROR) {
      p->result.error = reply->str ? std::string(reply->str, reply->len) : "redis error";
    } else {
      p->result.ok = true;
      p->result.value = copy_reply(reply);
    }
    p->timer.cancel();
  }

  void arm_read() { arm(false); }
  void arm_write() { arm(true); }

  // Waits until the socket is readable (or writable) and lets hiredis read (write); re-arms while
  // hiredis still wants it. `gen` drops a wait that belongs to a connection since replaced.
  void arm(bool write) {
    bool& busy = write ? writing : reading;
    if (busy || !(write ? want_write : want_read) || !ac || !sd) return;
    busy = true;
    const auto what = write ? asio::posix::descriptor_base::wait_write : asio::posix::descriptor_base::wait_read;
    sd->async_wait(what, [w = weak_from_this(), g = gen, write](boost::system::error_code ec) {
      auto s = w.lock();
      if (!s || g != s->gen) return;
      (write ? s->writing : s->reading) = false;
      if (ec || !s->ac) return;
      if (write ? s->want_write : s->want_read) {
        if (write) redisAsyncHandleWrite(s->ac);
        else redisAsyncHandleRead(s->ac);
      }
      s->arm(write);
    });
  }
};

RedisStore::RedisStore(Options opt) : opt_(std::move(opt)) {}

RedisStore::~RedisStore() {
  std::lock_guard<std::mutex> lock(mu_);
  conns_.clear();
}

std::shared_ptr<RedisStore::Conn> RedisStore::conn_for(asio::io_context& io) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& c = conns_[&io];
  if (!c) c = std::make_shared<Conn>(io, opt_);
  return c;
}

asio::awaitable<Result<RedisStore::Reply>> RedisStore::command(std::vector<std::string> argv) {
  Result<Reply> out;
  auto ex = co_await asio::this_coro::executor;
  // Every coroutine of the gateway runs on an io_context (directly or through a strand of one).
  asio::io_context* io = nullptr;
  if (auto* e = ex.target<asio::io_context::executor_type>()) io = &e->context();
  else io = &static_cast<asio::io_context&>(asio::query(ex, asio::execution::context));
  auto c = conn_for(*io);
  if (!c->ensure(out.error)) co_return out;
  std::vector<const char*> args;
  std::vector<size_t> lens;
  for (auto& a : argv) {
    args.push_back(a.data());
    lens.push_back(a.size());
  }
  auto p = std::make_shared<Pending>(*io);
  auto* holder = new std::shared_ptr<Pending>(p);
  if (redisAsyncCommandArgv(c->ac, &Conn::on_reply, holder, static_cast<int>(args.size()), args.data(), lens.data()) != REDIS_OK) {
    delete holder;
    out.error = "redis: command not sent";
    co_return out;
  }
  if (!p->done) {
    p->timer.expires_after(opt_.timeout);
    boost::system::error_code ec;
    co_await p->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  if (!p->done) {
    p->done = true;
    c->drop("redis: no reply within " + std::to_string(opt_.timeout.count()) + "ms");
    out.error = "redis: no reply within " + std::to_string(opt_.timeout.count()) + "ms";
    co_return out;
  }
  co_return std::move(p->result);
}

asio::awaitable<Result<RedisStore::Reply>> RedisStore::script(const std::string& body, const std::string& sha,
                                                              std::vector<std::string> keys_and_args, int nkeys) {
  std::vector<std::string> argv{"EVALSHA", sha, std::to_string(nkeys)};
  argv.insert(argv.end(), keys_and_args.begin(), keys_and_args.end());
  auto r = co_await command(argv);  // a copy: kept for the EVAL fallback
  if (!r.ok && r.error.rfind("NOSCRIPT", 0) == 0) {
    argv[0] = "EVAL";
    argv[1] = body;
    r = co_await command(std::move(argv));
  }
  co_return r;
}

asio::awaitable<Result<std::int64_t>> RedisStore::incr(std::string key, std::int64_t n, Ttl ttl) {
  Result<std::int64_t> out;
  std::vector<std::string> args{std::move(key), std::to_string(n), std::to_string(ttl.count())};
  auto r = co_await script(kIncr, kIncrSha, std::move(args), 1);
  if (!r.ok) {
    out.error = r.error;
    co_return out;
  }
  out.ok = true;
  out.value = r.value.integer;
  co_return out;
}

asio::awaitable<Result<std::optional<std::string>>> RedisStore::get(std::string key) {
  Result<std::optional<std::string>> out;
  std::vector<std::string> argv{"GET", std::move(key)};
  auto r = co_await command(std::move(argv));
  if (!r.ok) {
    out.error = r.error;
    co_return out;
  }
  out.ok = true;
  if (r.value.type == REDIS_REPLY_STRING) out.value = r.value.str;
  else if (r.value.type == REDIS_REPLY_INTEGER) out.value = std::to_string(r.value.integer);
  co_return out;
}

asio::awaitable<Result<bool>> RedisStore::set(std::string key, std::string value, Ttl ttl) {
  co_return co_await set_with(std::move(key), std::move(value), ttl, false);
}

asio::awaitable<Result<bool>> RedisStore::set_if_absent(std::string key, std::string value, Ttl ttl) {
  co_return co_await set_with(std::move(key), std::move(value), ttl, true);
}

// SET key value [NX] [PX ttl]: true when stored (with NX, nil means the key existed).
asio::awaitable<Result<bool>> RedisStore::set_with(std::string key, std::string value, Ttl ttl, bool only_if_absent) {
  Result<bool> out;
  std::vector<std::string> argv{"SET", std::move(key), std::move(value)};
  if (only_if_absent) argv.push_back("NX");
  if (ttl.count() > 0) {
    argv.push_back("PX");
    argv.push_back(std::to_string(ttl.count()));
  }
  auto r = co_await command(std::move(argv));
  if (!r.ok) {
    out.error = r.error;
    co_return out;
  }
  out.ok = true;
  out.value = !only_if_absent || r.value.type == REDIS_REPLY_STATUS;  // "OK"
  co_return out;
}

asio::awaitable<Result<RateDecision>> RedisStore::rate(std::string key, std::int64_t limit, Ttl period, std::int64_t cost) {
  Result<RateDecision> out;
  if (limit <= 0 || period.count() <= 0) {
    out.ok = true;
    out.value.allowed = true;
    co_return out;
  }
  const std::int64_t period_us = period.count() * 1000;
  const std::int64_t step = period_us * cost / limit;
  std::vector<std::string> args{std::move(key), std::to_string(period_us), std::to_string(step)};
  auto r = co_await script(kRate, kRateSha, std::move(args), 1);
  if (!r.ok) {
    out.error = r.error;
    co_return out;
  }
  if (r.value.type != REDIS_REPLY_ARRAY || r.value.elements.size() != 2) {
    out.error = "redis: unexpected reply to the rate script";
    co_return out;
  }
  out.ok = true;
  out.value.allowed = r.value.elements[0].integer == 1;
  out.value.retry_after = std::chrono::milliseconds((r.value.elements[1].integer + 999) / 1000);
  co_return out;
}

// Logs: one stream per log, key "gwlog:<name>".
asio::awaitable<Result<bool>> RedisStore::log_append(std::string log, std::string value) {
  Result<bool> out;
  std::vector<std::string> argv{"XADD", "gwlog:" + log, "*", "v", std::move(value)};
  auto r = co_await command(std::move(argv));
  if (!r.ok) {
    out.error = r.error;
    co_return out;
  }
  out.ok = out.value = true;
  co_return out;
}

asio::awaitable<Result<std::vector<Store::LogEntry>>> RedisStore::log_read(std::string log, std::string after,
                                                                           std::size_t max) {
  Result<std::vector<LogEntry>> out;
  std::vector<std::string> argv{"XRANGE", "gwlog:" + log, after.empty() ? std::string("-") : "(" + after, "+",
                                "COUNT", std::to_string(max)};
  auto r = co_await command(std::move(argv));
  if (!r.ok) {
    out.error = r.error;
    co_return out;
  }
  if (r.value.type != REDIS_REPLY_ARRAY) {
    out.error = "redis: unexpected reply to XRANGE";
    co_return out;
  }
  for (auto& e : r.value.elements) {
    // [id, [field, value, ...]]
    if (e.type != REDIS_REPLY_ARRAY || e.elements.size() != 2) continue;
    const auto& fields = e.elements[1].elements;
    for (std::size_t i = 0; i + 1 < fields.size(); i += 2)
      if (fields[i].str == "v") out.value.push_back({e.elements[0].str, fields[i + 1].str});
  }
  out.ok = true;
  co_return out;
}

asio::awaitable<Result<std::int64_t>> RedisStore::log_erase(std::string log, std::vector<std::string> ids) {
  Result<std::int64_t> out;
  for (std::size_t i = 0; i < ids.size(); i += 500) {
    std::vector<std::string> argv{"XDEL", "gwlog:" + log};
    for (std::size_t j = i; j < ids.size() && j < i + 500; ++j) argv.push_back(ids[j]);
    auto r = co_await command(std::move(argv));
    if (!r.ok) {
      out.error = r.error;
      co_return out;
    }
    out.value += r.value.integer;
  }
  out.ok = true;
  co_return out;
}

}  // namespace gw::store
