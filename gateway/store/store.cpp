#include "gateway/store/store.hpp"

#include <charconv>
#include <stdexcept>

#include <openssl/evp.h>

#include "gateway/config/config.hpp"
#include "gateway/store/detail.hpp"
#include "gateway/store/lmdb_store.hpp"
#include "gateway/store/redis_store.hpp"

namespace gw::store {

std::optional<std::int64_t> parse_int(std::string_view s) {
  std::int64_t v = 0;
  if (s.empty()) return std::nullopt;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

namespace detail {

static std::string digest_hex(std::string_view data, const EVP_MD* md) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), out, &n, md, nullptr);
  static const char* hex = "0123456789abcdef";
  std::string s;
  s.reserve(n * 2);
  for (unsigned i = 0; i < n; ++i) {
    s += hex[out[i] >> 4];
    s += hex[out[i] & 15];
  }
  return s;
}

// Fetched once: EVP_sha1()/EVP_sha256() make OpenSSL 3 look the algorithm up again on every digest
// (an implicit fetch costs more than hashing a greylist key).
static const EVP_MD* fetched(const char* name, const EVP_MD* legacy) {
  const EVP_MD* md = EVP_MD_fetch(nullptr, name, nullptr);
  return md ? md : legacy;
}

std::string sha1_hex(std::string_view data) {
  static const EVP_MD* md = fetched("SHA1", EVP_sha1());
  return digest_hex(data, md);
}
std::string sha256_hex(std::string_view data) {
  static const EVP_MD* md = fetched("SHA256", EVP_sha256());
  return digest_hex(data, md);
}

std::string bound_key(std::string key, std::size_t max) {
  if (key.size() <= max) return key;
  std::string h = sha256_hex(key);
  key.resize(max - h.size() - 1);
  return key + "#" + h;
}

}  // namespace detail

boost::asio::awaitable<Result<RateDecision>> Store::rate(std::string key, std::int64_t limit, Ttl period,
                                                         std::int64_t cost) {
  // Fixed window: the window's counter is incremented; over the limit means refused (and counted).
  Result<RateDecision> out;
  if (limit <= 0 || period.count() <= 0) {
    out.ok = true;
    co_return out;
  }
  const std::int64_t now = detail::now_ms();
  const std::int64_t window = now / period.count();
  auto r = co_await incr(key + ":w" + std::to_string(window), cost, period);
  if (!r.ok) {
    out.error = r.error;
    co_return out;
  }
  out.ok = true;
  out.value.allowed = r.value <= limit;
  if (!out.value.allowed) out.value.retry_after = std::chrono::milliseconds((window + 1) * period.count() - now);
  co_return out;
}

boost::asio::awaitable<Result<bool>> Store::log_append(std::string, std::string) {
  co_return Result<bool>{false, "logs are not supported by this store", false};
}
boost::asio::awaitable<Result<std::vector<Store::LogEntry>>> Store::log_read(std::string, std::string, std::size_t) {
  Result<std::vector<LogEntry>> out;
  out.error = "logs are not supported by this store";
  co_return out;
}
boost::asio::awaitable<Result<std::int64_t>> Store::log_erase(std::string, std::vector<std::string>) {
  co_return Result<std::int64_t>{false, "logs are not supported by this store", 0};
}

std::shared_ptr<Store> make_store(const config::StoreConfig& cfg) {
  if (cfg.backend == "redis") return std::make_shared<RedisStore>(RedisStore::Options::from_url(cfg.redis_url));
  LmdbStore::Options o;
  o.path = cfg.path;
  o.max_size = cfg.max_size;
  return std::make_shared<LmdbStore>(o);
}

}  // namespace gw::store
