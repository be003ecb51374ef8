#include "gateway/smtp/auth.hpp"

// GCC 12 pairs asio's aligned_alloc'd coroutine frame with its sized operator delete and warns
// (-Wmismatched-new-delete); asio frees those frames with aligned_delete, so the warning is spurious.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

#include <crypt.h>

#include <memory>
#include <mutex>
#include <unordered_map>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <openssl/crypto.h>

#include "gateway/observe/log.hpp"
#include "gateway/observe/metrics.hpp"

namespace gw::smtp::auth {

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t kMaxAuthLine = 12288;  // RFC 4954 §4: a line of the exchange
constexpr std::size_t kMaxUser = 255;
constexpr std::size_t kMaxPassword = 1024;

// The pool that runs crypt(3). Two threads: enough to keep a burst of logins moving, few enough that
// a password-guessing client cannot take the machine's cores from the event loops.
asio::thread_pool& hash_pool() {
  static asio::thread_pool pool(2);
  return pool;
}

// A hash of the same kind as real ones, checked for unknown users so they cost the same time.
const std::string& dummy_hash() {
  static const std::string h = [] {
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    std::string out = "$6$gatewaydummysalt$";
    if (crypt_gensalt_rn("$6$", 0, nullptr, 0, setting, sizeof setting)) {
      struct crypt_data data {};
      if (const char* r = crypt_rn("not a password", setting, &data, sizeof data); r && r[0] == '$') out = r;
    }
    return out;
  }();
  return h;
}

// Consecutive failures per client IP; forgotten 15 minutes after the last one.
class FailureMemory {
 public:
  static FailureMemory& get() {
    static FailureMemory m;
    return m;
  }
  unsigned fail(const std::string& ip) {
    std::lock_guard lock(mu_);
    auto now = std::chrono::steady_clock::now();
    if (entries_.size() > 10000) {
      for (auto it = entries_.begin(); it != entries_.end();)
        it = now - it->second.last > kForget ? entries_.erase(it) : std::next(it);
    }
    auto& e = entries_[ip];
    if (now - e.last > kForget) e.count = 0;
    e.last = now;
    return ++e.count;
  }

 private:
  static constexpr auto kForget = std::chrono::minutes(15);
  struct Entry {
    unsigned count = 0;
    std::chrono::steady_clock::time_point last{};
  };
  std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;
};

std::string reply_line(int code, std::string_view enh, std::string_view text) {
  observe::CoreMetrics::get().reply(code);
  std::string r = std::to_string(code) + " ";
  if (!enh.empty()) r.append(enh).append(" ");
  r.append(text).append("\r\n");
  return r;
}

// Registered at start, so /metrics shows both series at 0 before the first AUTH.
[[maybe_unused]] const bool registered = [] {
  observe::Metrics::instance().counter("smtpgw_auth_total", "AUTH attempts by result", R"(result="success")");
  observe::Metrics::instance().counter("smtpgw_auth_total", "AUTH attempts by result", R"(result="failure")");
  return true;
}();

observe::Counter& auth_counter(bool ok) {
  static auto& success = observe::Metrics::instance().counter("smtpgw_auth_total", "AUTH attempts by result", R"(result="success")");
  static auto& failure = observe::Metrics::instance().counter("smtpgw_auth_total", "AUTH attempts by result", R"(result="failure")");
  return ok ? success : failure;
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

struct Wipe {  // passwords do not outlive the exchange in our memory
  std::string& s;
  ~Wipe() {
    if (!s.empty()) OPENSSL_cleanse(s.data(), s.size());
  }
};

// Sends a 334 challenge and reads the client's answer line. nullopt: I/O error or timeout.
asio::awaitable<std::optional<std::string>> challenge(net::Stream& stream, net::Deadline& deadline,
                                                     const config::Config& cfg, std::string_view prompt,
                                                     bool& too_long) {
  std::string out = "334 " + std::string(prompt) + "\r\n";
  observe::CoreMetrics::get().reply(334);
  deadline.expires_after(cfg.server.command_timeout);
  if (co_await stream.write(out)) co_return std::nullopt;
  for (;;) {
    std::string_view line;
    if (stream.take_line(line, kMaxAuthLine, too_long)) co_return std::string(line);
    if (co_await stream.fill(kMaxAuthLine + 1024)) co_return std::nullopt;
  }
}


// One answer of the exchange: the initial response or a line after a 334; "=" is the empty one.
struct Answer {
  std::optional<std::string> value;  // decoded
  std::optional<Outcome> early;      // the reply that ends the exchange instead (cancel, bad base64)
  bool io_error = false;
};

std::optional<std::string> decode_answer(std::string_view b64);

asio::awaitable<Answer> read_answer(net::Stream& stream, net::Deadline& deadline, const config::Config& cfg,
                                    const std::string* initial, std::string_view prompt) {
  Answer a;
  std::string line;
  if (initial) {
    line = *initial;
  } else {
    bool too_long = false;
    auto l = co_await challenge(stream, deadline, cfg, prompt, too_long);
    if (!l) {
      a.io_error = true;
      co_return a;
    }
    if (too_long) {
      a.early = Outcome{reply_line(500, "5.5.6", "Authentication exchange line is too long"), false, false};
      co_return a;
    }
    line = std::move(*l);
  }
  if (line == "*") {
    a.early = Outcome{reply_line(501, "5.0.0", "Authentication cancelled"), false, false};
    co_return a;
  }
  a.value = decode_answer(line);
  OPENSSL_cleanse(line.data(), line.size());
  if (!a.value) a.early = Outcome{reply_line(501, "5.5.2", "Cannot decode response (invalid base64)"), false, false};
  co_return a;
}

// One crypt(3) check, run on the pool (a named type: GCC 12 mishandles capturing lambdas that are
// temporaries inside a co_await expression).
struct HashJob {
  std::string password;
  std::string hash;
  bool operator()() {
    bool r = check_password(password, hash);
    OPENSSL_cleanse(password.data(), password.size());
    return r;
  }
};

// Runs fn() on the hash pool; the awaiting coroutine resumes on its own executor with the result.
template <typename Fn>
auto off_loop(Fn fn) {
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(bool)>(
      [](auto handler, Fn fn) {
        auto work = asio::make_work_guard(asio::get_associated_executor(handler));
        asio::post(hash_pool(), [fn = std::move(fn), handler = std::move(handler), work = std::move(work)]() mutable {
          bool r = fn();
          auto ex = work.get_executor();
          asio::post(ex, [handler = std::move(handler), r]() mutable { std::move(handler)(r); });
          work.reset();
        });
      },
      asio::use_awaitable, std::move(fn));
}

// The client went away or let the exchange time out: 421 for a timeout, then the session closes.
Outcome lost(net::Deadline& deadline, const config::Config& cfg) {
  if (deadline.expired()) return Outcome{reply_line(421, "4.4.2", cfg.server.hostname + " Error: timeout exceeded"), false, true};
  return Outcome{"", false, true};
}

}  // namespace

namespace {
std::optional<std::string> decode_answer(std::string_view b64) {
  if (b64 == "=") return std::string();
  return base64_decode(b64);
}
}  // namespace

std::chrono::milliseconds failure_delay(unsigned n) {
  if (n == 0) return 0ms;
  if (n > 5) return 5000ms;
  return std::min<std::chrono::milliseconds>(5000ms, std::chrono::milliseconds(500 << (n - 1)));
}

bool check_password(const std::string& password, const std::string& hash) {
  thread_local std::unique_ptr<crypt_data> data = std::make_unique<crypt_data>();
  std::memset(data.get(), 0, sizeof(crypt_data));
  const char* r = crypt_rn(password.c_str(), hash.c_str(), data.get(), sizeof(crypt_data));
  bool ok = r && r[0] != '*' && std::strlen(r) == hash.size() && CRYPTO_memcmp(r, hash.data(), hash.size()) == 0;
  OPENSSL_cleanse(data.get(), sizeof(crypt_data));
  return ok;
}

bool available(const config::ListenerConfig& listener, const config::Config& cfg) {
  return !cfg.auth.users_file.empty() && (listener.require_auth || listener.role == config::Role::submission);
}

std::string advertisement(const config::ListenerConfig& listener, const config::Config& cfg, const Connection& conn) {
  if (!available(listener, cfg) || !conn.tls || conn.auth_user) return "";
  return "250-AUTH PLAIN LOGIN\r\n";
}

asio::awaitable<Outcome> run(std::string_view arg, net::Stream& stream, net::Deadline& deadline,
                             const config::ListenerConfig& listener, const config::Config& cfg, Connection& conn) {
  if (!available(listener, cfg)) co_return Outcome{reply_line(502, "5.5.1", "AUTH not available"), false, false};
  if (!conn.tls) co_return Outcome{reply_line(530, "5.7.0", "Must issue a STARTTLS command first"), false, false};
  if (conn.auth_user) co_return Outcome{reply_line(503, "5.5.1", "Already authenticated"), false, false};

  std::string_view mech_sv = arg;
  std::string_view initial;
  bool has_initial = false;
  if (auto sp = arg.find(' '); sp != std::string_view::npos) {
    mech_sv = arg.substr(0, sp);
    initial = arg.substr(sp + 1);
    while (!initial.empty() && initial.front() == ' ') initial.remove_prefix(1);
    while (!initial.empty() && initial.back() == ' ') initial.remove_suffix(1);
    has_initial = !initial.empty();
  }
  const std::string mech = upper(mech_sv);
  if (mech.empty()) co_return Outcome{reply_line(501, "5.5.4", "Syntax: AUTH mechanism [initial-response]"), false, false};
  if (mech != "PLAIN" && mech != "LOGIN")
    co_return Outcome{reply_line(504, "5.5.4", "Unrecognized authentication type"), false, false};

  const std::string initial_s(initial);
  std::string user, password;
  Wipe wipe{password};
  bool well_formed = true;
  if (mech == "PLAIN") {
    Answer a = co_await read_answer(stream, deadline, cfg, has_initial ? &initial_s : nullptr, "");
    if (a.io_error) co_return lost(deadline, cfg);
    if (a.early) co_return *a.early;
    auto& d = a.value;
    Wipe wd{*d};
    auto z1 = d->find('\0');
    auto z2 = z1 == std::string::npos ? std::string::npos : d->find('\0', z1 + 1);
    if (z2 == std::string::npos || d->find('\0', z2 + 1) != std::string::npos) {
      well_formed = false;
    } else {
      std::string authz = d->substr(0, z1);
      user = d->substr(z1 + 1, z2 - z1 - 1);
      password = d->substr(z2 + 1);
      if (!authz.empty() && authz != user) well_formed = false;  // no proxy authorization
    }
  } else {
    Answer u = co_await read_answer(stream, deadline, cfg, has_initial ? &initial_s : nullptr, "VXNlcm5hbWU6");  // "Username:"
    if (u.io_error) co_return lost(deadline, cfg);
    if (u.early) co_return *u.early;
    user = std::move(*u.value);
    Answer p = co_await read_answer(stream, deadline, cfg, nullptr, "UGFzc3dvcmQ6");  // "Password:"
    if (p.io_error) co_return lost(deadline, cfg);
    if (p.early) co_return *p.early;
    password = std::move(*p.value);
  }
  if (user.empty() || user.size() > kMaxUser || password.size() > kMaxPassword ||
      user.find('\0') != std::string::npos || password.find('\0') != std::string::npos)
    well_formed = false;

  // The hash check runs on the pool; off_loop resumes this coroutine on the session's own executor.
  bool ok = false;
  {
    auto it = well_formed ? cfg.auth.users.find(user) : cfg.auth.users.end();
    const bool known = it != cfg.auth.users.end();
    std::string hash = known ? it->second : dummy_hash();
    std::string pw = password;
    HashJob job{std::move(pw), std::move(hash)};
    bool result = co_await off_loop(std::move(job));
    ok = result && known;
  }

  auth_counter(ok).inc();
  std::string shown_user = user.size() > 64 ? user.substr(0, 64) : user;
  for (auto& c : shown_user)
    if (static_cast<unsigned char>(c) < ' ' || c == 127) c = '?';
  if (ok) {
    conn.auth_user = user;
    log::info("auth", {{"session", conn.id}, {"client", conn.client.ip}, {"mechanism", mech}, {"user", shown_user},
                       {"result", "success"}});
    co_return Outcome{reply_line(235, "2.7.0", "Authentication successful"), true, false};
  }
  unsigned failures = FailureMemory::get().fail(conn.client.ip);
  auto delay = failure_delay(failures);
  log::warn("auth", {{"session", conn.id}, {"client", conn.client.ip}, {"mechanism", mech}, {"user", shown_user},
                     {"result", "failure"}, {"failures", failures}, {"delay_ms", static_cast<long long>(delay.count())}});
  asio::steady_timer timer(stream.socket().get_executor());
  timer.expires_after(delay);
  co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  co_return Outcome{reply_line(535, "5.7.8", "Authentication credentials invalid"), false, false};
}

}  // namespace gw::smtp::auth
