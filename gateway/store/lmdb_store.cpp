#include "gateway/store/lmdb_store.hpp"

#include <lmdb.h>

#include <cstring>
#include <filesystem>
#include <functional>
#include <stdexcept>

#include "gateway/observe/log.hpp"
#include "gateway/store/detail.hpp"

namespace gw::store {
namespace {

// Value layout: 8 bytes of expiry (ms since the epoch, little-endian, 0 = never) then the payload.
constexpr std::size_t kHeader = 8;
constexpr std::size_t kMaxKey = 480;  // LMDB's default limit is 511 bytes

std::string encode(std::int64_t expires_ms, std::string_view payload) {
  std::string v(kHeader + payload.size(), '\0');
  auto e = static_cast<std::uint64_t>(expires_ms);
  for (int i = 0; i < 8; ++i) v[i] = static_cast<char>((e >> (8 * i)) & 0xff);
  std::memcpy(v.data() + kHeader, payload.data(), payload.size());
  return v;
}

std::int64_t expiry_of(const MDB_val& v) {
  if (v.mv_size < kHeader) return 1;  // malformed: treat as expired
  auto p = static_cast<const unsigned char*>(v.mv_data);
  std::uint64_t e = 0;
  for (int i = 0; i < 8; ++i) e |= static_cast<std::uint64_t>(p[i]) << (8 * i);
  return static_cast<std::int64_t>(e);
}

bool expired(const MDB_val& v, std::int64_t now) {
  auto e = expiry_of(v);
  return e != 0 && e <= now;
}

std::string_view payload_of(const MDB_val& v) {
  return {static_cast<const char*>(v.mv_data) + kHeader, v.mv_size - kHeader};
}

MDB_val val(std::string_view s) { return MDB_val{s.size(), const_cast<char*>(s.data())}; }

std::string err(int rc) { return std::string("lmdb: ") + mdb_strerror(rc); }

// The result of a write transaction: its value, or the error (a full map named as such).
template <class T>
Result<T> written(int rc, T value) {
  Result<T> out;
  if (rc) {
    out.error = rc == MDB_MAP_FULL ? "store full (store.max_size)" : err(rc);
    return out;
  }
  out.ok = true;
  out.value = std::move(value);
  return out;
}

std::int64_t expiry_for(std::int64_t now, Store::Ttl ttl) { return ttl.count() > 0 ? now + ttl.count() : 0; }

}  // namespace

LmdbStore::LmdbStore(Options opt) : opt_(std::move(opt)) {
  open();
  thread_ = std::thread([this] { background(); });
}

LmdbStore::~LmdbStore() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (env_) {
    mdb_env_sync(env_, 1);
    mdb_env_close(env_);
  }
}

void LmdbStore::open() {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(opt_.path, ec);
  if (ec) throw std::runtime_error("store.path " + opt_.path + ": " + ec.message());
  for (int attempt = 0; attempt < 2; ++attempt) {
    int rc = mdb_env_create(&env_);
    if (rc) throw std::runtime_error("store: " + err(rc));
    mdb_env_set_mapsize(env_, opt_.max_size);
    mdb_env_set_maxreaders(env_, 1024);
    // MDB_WRITEMAP: a commit writes into the map, not a pwrite() per dirty page (docs/store.md).
    rc = mdb_env_open(env_, opt_.path.c_str(), MDB_NOSYNC | MDB_NOTLS | MDB_WRITEMAP, 0640);
    if (rc == 0) {
      int dead = 0;
      mdb_reader_check(env_, &dead);  // reader slots of a killed process
      MDB_txn* txn = nullptr;
      rc = mdb_txn_begin(env_, nullptr, 0, &txn);
      if (rc == 0) {
        MDB_dbi dbi;
        rc = mdb_dbi_open(txn, nullptr, 0, &dbi);
        if (rc == 0) {
          rc = mdb_txn_commit(txn);
          dbi_ = dbi;
        } else {
          mdb_txn_abort(txn);
        }
      }
      if (rc == 0) return;
    }
    mdb_env_close(env_);
    env_ = nullptr;
    if (attempt == 0 && (rc == MDB_INVALID || rc == MDB_CORRUPTED || rc == MDB_VERSION_MISMATCH || rc == MDB_PANIC)) {
      // Soft state only (rate counters, greylist triplets): start over rather than refuse to run.
      auto data = fs::path(opt_.path) / "data.mdb";
      auto aside = fs::path(opt_.path) / ("data.mdb.broken-" + std::to_string(detail::now_ms()));
      fs::rename(data, aside, ec);
      fs::remove(fs::path(opt_.path) / "lock.mdb", ec);
      log::error("store_reset", {{"path", opt_.path}, {"error", err(rc)}, {"moved_to", aside.string()}});
      continue;
    }
    throw std::runtime_error("store.path " + opt_.path + ": " + err(rc));
  }
}

// Runs `f` in a write transaction; a full map gets a sweep of expired entries and one more try.
// (Templates, not std::function: the lambdas capture by reference and are called for every write.)
template <typename F, typename OnFull>
static int run_write(MDB_env* env, F&& f, OnFull&& on_full) {
  for (int attempt = 0;; ++attempt) {
    MDB_txn* txn = nullptr;
    int rc = mdb_txn_begin(env, nullptr, 0, &txn);
    if (rc) return rc;
    rc = f(txn);
    if (rc == 0) rc = mdb_txn_commit(txn);
    else mdb_txn_abort(txn);
    if (rc == MDB_MAP_FULL && attempt == 0) {
      on_full();
      continue;
    }
    return rc;
  }
}

Result<std::int64_t> LmdbStore::incr_now(const std::string& key_in, std::int64_t n, Ttl ttl) {
  std::string key = detail::bound_key(key_in, kMaxKey);
  std::int64_t result = 0;
  int rc = run_write(env_, [&](MDB_txn* txn) {
    const std::int64_t now = detail::now_ms();
    MDB_val k = val(key), v;
    std::int64_t cur = 0, exp = expiry_for(now, ttl);
    int r = mdb_get(txn, dbi_, &k, &v);
    if (r == 0 && !expired(v, now)) {
      cur = detail::parse_int(payload_of(v)).value_or(0);
      exp = expiry_of(v);
    } else if (r != 0 && r != MDB_NOTFOUND) {
      return r;
    }
    result = cur + n;
    std::string enc = encode(exp, std::to_string(result));
    MDB_val nv = val(enc);
    return mdb_put(txn, dbi_, &k, &nv, 0);
  }, [this] { sweep(); });
  return written(rc, result);
}

Result<std::optional<std::string>> LmdbStore::get_now(const std::string& key_in) {
  Result<std::optional<std::string>> out;
  std::string key = detail::bound_key(key_in, kMaxKey);
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn);
  if (rc) {
    out.error = err(rc);
    return out;
  }
  MDB_val k = val(key), v;
  rc = mdb_get(txn, dbi_, &k, &v);
  if (rc == 0 && !expired(v, detail::now_ms())) out.value = std::string(payload_of(v));
  mdb_txn_abort(txn);
  if (rc != 0 && rc != MDB_NOTFOUND) {
    out.error = err(rc);
    return out;
  }
  out.ok = true;
  return out;
}

Result<bool> LmdbStore::set_now(const std::string& key_in, const std::string& value, Ttl ttl, bool only_if_absent) {
  std::string key = detail::bound_key(key_in, kMaxKey);
  bool stored = false;
  int rc = run_write(env_, [&](MDB_txn* txn) {
    const std::int64_t now = detail::now_ms();
    MDB_val k = val(key), v;
    if (only_if_absent) {
      int r = mdb_get(txn, dbi_, &k, &v);
      if (r == 0 && !expired(v, now)) {
        stored = false;
        return 0;
      }
      if (r != 0 && r != MDB_NOTFOUND) return r;
    }
    std::string enc = encode(expiry_for(now, ttl), value);
    MDB_val nv = val(enc);
    stored = true;
    return mdb_put(txn, dbi_, &k, &nv, 0);
  }, [this] { sweep(); });
  return written(rc, stored);
}

Result<RateDecision> LmdbStore::rate_now(const std::string& key_in, std::int64_t limit, Ttl period, std::int64_t cost) {
  Result<RateDecision> out;
  if (limit <= 0 || period.count() <= 0) {
    out.ok = true;
    out.value.allowed = true;
    return out;
  }
  std::string key = detail::bound_key(key_in, kMaxKey);
  const std::int64_t period_us = period.count() * 1000;
  const std::int64_t step = period_us * cost / limit;  // emission interval times cost
  RateDecision d;
  int rc = run_write(env_, [&](MDB_txn* txn) {
    const std::int64_t now = detail::now_us();
    const std::int64_t now_ms = now / 1000;
    MDB_val k = val(key), v;
    std::int64_t tat = now;
    int r = mdb_get(txn, dbi_, &k, &v);
    if (r == 0 && !expired(v, now_ms)) tat = std::max(now, detail::parse_int(payload_of(v)).value_or(now));
    else if (r != 0 && r != MDB_NOTFOUND) return r;
    const std::int64_t next = tat + step;
    if (next - now > period_us) {
      d.allowed = false;
      d.retry_after = std::chrono::milliseconds((next - period_us - now + 999) / 1000);
      return MDB_KEYEXIST;  // nothing to write: abort the transaction
    }
    d.allowed = true;
    std::string enc = encode(now_ms + (next - now + 999) / 1000, std::to_string(next));
    MDB_val nv = val(enc);
    return mdb_put(txn, dbi_, &k, &nv, 0);
  }, [this] { sweep(); });
  return written(rc == MDB_KEYEXIST ? 0 : rc, d);
}

std::size_t LmdbStore::sweep(std::size_t budget) {
  std::string from;
  return sweep_range(from, budget);
}

std::size_t LmdbStore::sweep_range(std::string& from, std::size_t budget) {
  // Batches of at most 500 entries per write transaction keep the writer lock short (< 1 ms). `from` is where
  // to start and, on return, where the next call goes on ("" once the end was reached).
  constexpr std::size_t kBatch = 500;
  std::size_t deleted = 0, seen = 0;
  bool done = false;
  while (!done && seen < budget) {
    int rc = run_write(env_, [&](MDB_txn* txn) {
      MDB_cursor* cur = nullptr;
      int r = mdb_cursor_open(txn, dbi_, &cur);
      if (r) return r;
      const std::int64_t now = detail::now_ms();
      MDB_val k = val(from), v;
      r = from.empty() ? mdb_cursor_get(cur, &k, &v, MDB_FIRST) : mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
      std::size_t n = 0;
      while (r == 0 && n < kBatch && seen < budget) {
        ++n;
        ++seen;
        if (expired(v, now)) {
          r = mdb_cursor_del(cur, 0);
          if (r) break;
          ++deleted;
        }
        r = mdb_cursor_get(cur, &k, &v, MDB_NEXT);  // after a delete: the entry that followed it
      }
      if (r == 0) {
        from.assign(static_cast<const char*>(k.mv_data), k.mv_size);
      } else {
        from.clear();
        done = true;
      }
      mdb_cursor_close(cur);
      return (r == 0 || r == MDB_NOTFOUND) ? 0 : r;
    }, [] {});
    if (rc) break;
  }
  return deleted;
}

std::size_t LmdbStore::entries() {
  MDB_txn* txn = nullptr;
  if (mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn)) return 0;
  MDB_stat st{};
  mdb_stat(txn, dbi_, &st);
  mdb_txn_abort(txn);
  return st.ms_entries;
}

void LmdbStore::background() {
  auto next_sync = std::chrono::steady_clock::now() + opt_.sync_interval;
  auto next_sweep = std::chrono::steady_clock::now() + opt_.sweep_interval;
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    cv_.wait_until(lock, std::min(next_sync, next_sweep), [this] { return stop_; });
    if (stop_) break;
    lock.unlock();
    auto now = std::chrono::steady_clock::now();
    if (now >= next_sync) {
      mdb_env_sync(env_, 1);
      next_sync = now + opt_.sync_interval;
    }
    if (now >= next_sweep) {
      std::size_t n = sweep_range(sweep_from_, 50000);
      if (n) log::debug("store_sweep", {{"deleted", n}});
      next_sweep = std::chrono::steady_clock::now() + opt_.sweep_interval;
    }
    lock.lock();
  }
}

boost::asio::awaitable<Result<std::int64_t>> LmdbStore::incr(std::string key, std::int64_t n, Ttl ttl) {
  co_return incr_now(key, n, ttl);
}
boost::asio::awaitable<Result<std::optional<std::string>>> LmdbStore::get(std::string key) { co_return get_now(key); }
boost::asio::awaitable<Result<bool>> LmdbStore::set(std::string key, std::string value, Ttl ttl) {
  co_return set_now(key, value, ttl, false);
}
boost::asio::awaitable<Result<bool>> LmdbStore::set_if_absent(std::string key, std::string value, Ttl ttl) {
  co_return set_now(key, value, ttl, true);
}
boost::asio::awaitable<Result<RateDecision>> LmdbStore::rate(std::string key, std::int64_t limit, Ttl period,
                                                             std::int64_t cost) {
  co_return rate_now(key, limit, period, cost);
}

}  // namespace gw::store

// Logs: entry keys are "\x1elog:<name>:<16 hex digits>" (the id, from a per-log sequence kept under
// "\x1elogseq:<name>" and bumped in the same write transaction), so a cursor walks them in append order.
// Their values never expire, so the sweep leaves them alone.
namespace gw::store {
namespace {

std::string log_prefix(const std::string& log) { return "\x1elog:" + log + ":"; }

std::string hex16(std::uint64_t n) {
  static const char* hex = "0123456789abcdef";
  std::string s(16, '0');
  for (int i = 15; i >= 0; --i, n >>= 4) s[i] = hex[n & 15];
  return s;
}

}  // namespace

Result<bool> LmdbStore::log_append_now(const std::string& log, const std::string& value) {
  Result<bool> out;
  if (log.empty() || log.size() > 200) {
    out.error = "bad log name";
    return out;
  }
  const std::string seq_key = "\x1elogseq:" + log;
  int rc = run_write(env_, [&](MDB_txn* txn) {
    MDB_val k = val(seq_key), v;
    std::int64_t seq = 0;
    int r = mdb_get(txn, dbi_, &k, &v);
    if (r == 0) seq = detail::parse_int(payload_of(v)).value_or(0);
    else if (r != MDB_NOTFOUND) return r;
    ++seq;
    std::string enc = encode(0, std::to_string(seq));
    MDB_val nv = val(enc);
    r = mdb_put(txn, dbi_, &k, &nv, 0);
    if (r) return r;
    std::string key = log_prefix(log) + hex16(static_cast<std::uint64_t>(seq));
    std::string body = encode(0, value);
    MDB_val ek = val(key), ev = val(body);
    return mdb_put(txn, dbi_, &ek, &ev, 0);
  }, [this] { sweep(); });
  return written(rc, true);
}

Result<std::vector<Store::LogEntry>> LmdbStore::log_read_now(const std::string& log, const std::string& after,
                                                              std::size_t max) {
  Result<std::vector<LogEntry>> out;
  const std::string prefix = log_prefix(log);
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn);
  if (rc) {
    out.error = err(rc);
    return out;
  }
  MDB_cursor* cur = nullptr;
  rc = mdb_cursor_open(txn, dbi_, &cur);
  if (rc) {
    mdb_txn_abort(txn);
    out.error = err(rc);
    return out;
  }
  std::string start = prefix + after;
  MDB_val k = val(start), v;
  rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
  while (rc == 0 && out.value.size() < max) {
    std::string_view key(static_cast<const char*>(k.mv_data), k.mv_size);
    if (key.substr(0, prefix.size()) != prefix) break;
    std::string_view id = key.substr(prefix.size());
    if (id > after && v.mv_size >= kHeader) out.value.push_back({std::string(id), std::string(payload_of(v))});
    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
  }
  mdb_cursor_close(cur);
  mdb_txn_abort(txn);
  if (rc != 0 && rc != MDB_NOTFOUND) {
    out.value.clear();
    out.error = err(rc);
    return out;
  }
  out.ok = true;
  return out;
}

Result<std::int64_t> LmdbStore::log_erase_now(const std::string& log, const std::vector<std::string>& ids) {
  Result<std::int64_t> out;
  const std::string prefix = log_prefix(log);
  std::int64_t erased = 0;
  // batches keep each write transaction short
  for (std::size_t i = 0; i < ids.size(); i += 500) {
    std::int64_t n = 0;
    int rc = run_write(env_, [&](MDB_txn* txn) {
      n = 0;
      for (std::size_t j = i; j < ids.size() && j < i + 500; ++j) {
        std::string key = prefix + ids[j];
        MDB_val k = val(key);
        int r = mdb_del(txn, dbi_, &k, nullptr);
        if (r == 0) ++n;
        else if (r != MDB_NOTFOUND) return r;
      }
      return 0;
    }, [] {});
    if (rc) {
      out.error = err(rc);
      out.value = erased;
      return out;
    }
    erased += n;
  }
  out.ok = true;
  out.value = erased;
  return out;
}

boost::asio::awaitable<Result<bool>> LmdbStore::log_append(std::string log, std::string value) {
  co_return log_append_now(log, value);
}
boost::asio::awaitable<Result<std::vector<Store::LogEntry>>> LmdbStore::log_read(std::string log, std::string after,
                                                                                 std::size_t max) {
  co_return log_read_now(log, after, max);
}
boost::asio::awaitable<Result<std::int64_t>> LmdbStore::log_erase(std::string log, std::vector<std::string> ids) {
  co_return log_erase_now(log, ids);
}

}  // namespace gw::store
