// gateway.map(path, kind): parsing and matching of the lists, the process-wide registry, the thread
// that re-reads changed files, and the Lua binding.
#include "lua/map.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <map>
#include <thread>

#include <arpa/inet.h>
#include <sys/stat.h>

#include "gateway/observe/log.hpp"
#include "gateway/observe/metrics.hpp"
#include "lua/bindings.hpp"

namespace gw::lua {
namespace {

using U128 = MapData::U128;

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

U128 load128(const unsigned char* a) {
  U128 v = 0;
  for (int i = 0; i < 16; ++i) v = (v << 8) | a[i];
  return v;
}

// "addr" or "addr/prefix" -> a range; false when it is not one.
bool parse_ip_entry(std::string_view e, MapData& out) {
  std::string text(e);
  int prefix = -1;
  if (auto slash = text.find('/'); slash != std::string::npos) {
    std::string p = text.substr(slash + 1);
    if (p.empty() || p.size() > 3 || !std::all_of(p.begin(), p.end(), ::isdigit)) return false;
    prefix = std::stoi(p);
    text.resize(slash);
  }
  unsigned char a[16];
  if (inet_pton(AF_INET, text.c_str(), a) == 1) {
    if (prefix > 32) return false;
    std::uint32_t v = (std::uint32_t(a[0]) << 24) | (std::uint32_t(a[1]) << 16) | (std::uint32_t(a[2]) << 8) | a[3];
    std::uint32_t host = prefix < 0 || prefix == 32 ? 0 : prefix == 0 ? 0xffffffffu : (0xffffffffu >> prefix);
    out.v4.emplace_back(v & ~host, v | host);
    return true;
  }
  if (inet_pton(AF_INET6, text.c_str(), a) == 1) {
    if (prefix > 128) return false;
    U128 v = load128(a);
    U128 host = prefix < 0 || prefix == 128 ? 0 : prefix == 0 ? ~U128(0) : (~U128(0) >> prefix);
    out.v6.emplace_back(v & ~host, v | host);
    return true;
  }
  return false;
}

template <typename T>
void merge(std::vector<std::pair<T, T>>& r) {
  std::sort(r.begin(), r.end());
  std::size_t w = 0;
  for (std::size_t i = 0; i < r.size(); ++i) {
    if (w > 0 && (r[i].first <= r[w - 1].second || r[i].first - 1 == r[w - 1].second)) {
      r[w - 1].second = std::max(r[w - 1].second, r[i].second);
    } else {
      r[w++] = r[i];
    }
  }
  r.resize(w);
  r.shrink_to_fit();
}

template <typename T>
bool in_ranges(const std::vector<std::pair<T, T>>& r, T v) {
  auto it = std::upper_bound(r.begin(), r.end(), v, [](T x, const std::pair<T, T>& p) { return x < p.first; });
  return it != r.begin() && v <= std::prev(it)->second;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& ch : out) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return out;
}

}  // namespace

bool MapData::contains(MapKind kind, std::string_view x) const {
  x = trim(x);
  if (kind == MapKind::ip) {
    std::string text(x);
    if (text.size() > 2 && text.front() == '[' && text.back() == ']') text = text.substr(1, text.size() - 2);
    unsigned char a[16];
    if (inet_pton(AF_INET, text.c_str(), a) == 1)
      return in_ranges(v4, (std::uint32_t(a[0]) << 24) | (std::uint32_t(a[1]) << 16) | (std::uint32_t(a[2]) << 8) | a[3]);
    if (inet_pton(AF_INET6, text.c_str(), a) == 1) {
      static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
      if (std::memcmp(a, mapped, 12) == 0 &&
          in_ranges(v4, (std::uint32_t(a[12]) << 24) | (std::uint32_t(a[13]) << 16) | (std::uint32_t(a[14]) << 8) | a[15]))
        return true;
      return in_ranges(v6, load128(a));
    }
    return false;
  }
  std::string key = lower(x);
  auto has = [this](std::string_view k) { return std::binary_search(keys.begin(), keys.end(), k); };
  if (kind == MapKind::string) return has(key);
  // domain: an address counts by its domain; a listed domain matches itself and its subdomains
  if (auto at = key.rfind('@'); at != std::string::npos) key.erase(0, at + 1);
  while (!key.empty() && key.back() == '.') key.pop_back();
  std::string_view d = key;
  while (!d.empty()) {
    if (has(d)) return true;
    auto dot = d.find('.');
    if (dot == std::string_view::npos) break;
    d.remove_prefix(dot + 1);
  }
  return false;
}

bool parse_map(const std::string& path, MapKind kind, MapData& out, std::string& error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = path + ": cannot open: " + std::strerror(errno);
    return false;
  }
  std::string line;
  std::size_t lineno = 0;
  std::vector<std::pair<std::size_t, std::size_t>> spans;  // into out.blob (it grows: views come last)
  while (std::getline(in, line)) {
    ++lineno;
    std::string_view e = line;
    if (auto hash = e.find('#'); hash != std::string_view::npos) e = e.substr(0, hash);
    e = trim(e);
    if (e.empty()) continue;
    ++out.entries;
    if (kind == MapKind::ip) {
      if (!parse_ip_entry(e, out)) {
        error = path + ":" + std::to_string(lineno) + ": not an IP address or CIDR network: " + std::string(e.substr(0, 80));
        return false;
      }
      continue;
    }
    if (kind == MapKind::domain) {
      while (!e.empty() && e.front() == '.') e.remove_prefix(1);
      while (!e.empty() && e.back() == '.') e.remove_suffix(1);
      if (e.empty() || e.find_first_of(" \t@") != std::string_view::npos) {
        error = path + ":" + std::to_string(lineno) + ": not a domain: " + std::string(e.substr(0, 80));
        return false;
      }
    }
    spans.emplace_back(out.blob.size(), e.size());
    out.blob += lower(e);
  }
  if (in.bad()) {
    error = path + ": read error";
    return false;
  }
  merge(out.v4);
  merge(out.v6);
  out.blob.shrink_to_fit();
  out.keys.reserve(spans.size());
  for (auto [off, len] : spans) out.keys.emplace_back(out.blob.data() + off, len);
  std::sort(out.keys.begin(), out.keys.end());
  out.keys.erase(std::unique(out.keys.begin(), out.keys.end()), out.keys.end());
  out.keys.shrink_to_fit();
  return true;
}

bool Map::refresh(std::string& error) {
  std::lock_guard once(load_mu_);
  struct stat sb {};
  if (::stat(path_.c_str(), &sb) != 0) {
    error = path_ + ": cannot open: " + std::strerror(errno);
    return false;
  }
  std::int64_t mtime = std::int64_t(sb.st_mtim.tv_sec) * 1'000'000'000 + sb.st_mtim.tv_nsec;
  if (data() && sb.st_dev == dev_ && sb.st_ino == ino_ && std::uint64_t(sb.st_size) == size_ && mtime == mtime_ns_)
    return true;
  auto fresh = std::make_shared<MapData>();
  if (!parse_map(path_, kind_, *fresh, error)) return false;
  dev_ = sb.st_dev;
  ino_ = sb.st_ino;
  size_ = static_cast<std::uint64_t>(sb.st_size);
  mtime_ns_ = mtime;
  static auto& loads = observe::Metrics::instance().counter("smtpgw_lua_map_loads_total",
                                                            "Lua map files read (gateway.map)");
  loads.inc();
  log::info("lua_map_loaded", {{"path", path_}, {"entries", std::to_string(fresh->entries)}});
  std::lock_guard lock(mu_);
  data_ = std::move(fresh);
  return true;
}

namespace {

// Every open list, and the thread that checks their files once a second.
class Registry {
 public:
  static Registry& get() {
    static Registry r;
    return r;
  }
  std::shared_ptr<Map> open(const std::string& path, MapKind kind, std::string& error) {
    std::shared_ptr<Map> m;
    {
      std::lock_guard lock(mu_);
      auto& slot = maps_[{path, kind}];
      m = slot.lock();
      if (!m) {
        m = std::make_shared<Map>(path, kind);
        slot = m;
      }
      if (!thread_.joinable()) thread_ = std::thread([this] { watch(); });
    }
    if (!m->refresh(error) && !m->data()) return nullptr;  // a bad new version keeps the old one
    if (!error.empty()) log::error("lua_map_error", {{"path", path}, {"error", error}});
    error.clear();
    return m;
  }
  ~Registry() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void watch() {
    std::unique_lock lock(mu_);
    while (!cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stop_; })) {
      std::vector<std::shared_ptr<Map>> open;
      for (auto it = maps_.begin(); it != maps_.end();) {
        if (auto m = it->second.lock()) {
          open.push_back(std::move(m));
          ++it;
        } else {
          it = maps_.erase(it);
        }
      }
      lock.unlock();
      for (auto& m : open) {
        std::string error;
        if (!m->refresh(error)) log::error("lua_map_error", {{"path", m->path()}, {"error", error}});
      }
      open.clear();
      lock.lock();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::map<std::pair<std::string, MapKind>, std::weak_ptr<Map>> maps_;
  std::thread thread_;
};

constexpr const char* kMapMeta = "gw.map";

int map_gc(lua_State* L) {
  auto* p = static_cast<std::shared_ptr<Map>*>(luaL_checkudata(L, 1, kMapMeta));
  using Ptr = std::shared_ptr<Map>;
  p->~Ptr();
  new (p) Ptr();
  return 0;
}

int map_contains(lua_State* L) {
  auto* p = static_cast<std::shared_ptr<Map>*>(luaL_checkudata(L, 1, kMapMeta));
  std::size_t len = 0;
  const char* x = luaL_checklstring(L, 2, &len);
  bool hit = false, oom = false;
  try {
    hit = *p && (*p)->contains(std::string_view(x, len));
  } catch (...) {
    oom = true;
  }
  if (oom) return luaL_error(L, "not enough memory");
  charge(L, 20);  // a binary search: a few dozen steps
  lua_pushboolean(L, hit);
  return 1;
}

int map_len(lua_State* L) {
  auto* p = static_cast<std::shared_ptr<Map>*>(luaL_checkudata(L, 1, kMapMeta));
  lua_pushinteger(L, *p ? static_cast<lua_Integer>((*p)->data()->entries) : 0);
  return 1;
}

// gateway.map(path, kind): while a script loads (reading the file is no work for a hook call).
int l_map(lua_State* L) {
  const char* path = luaL_checkstring(L, 1);
  static const char* const kinds[] = {"ip", "domain", "string", nullptr};
  int kind = luaL_checkoption(L, 2, nullptr, kinds);
  Call* c = current_call(L);
  if (!c || !c->loading) return luaL_error(L, "gateway.map is only available while a script loads");
  auto* p = static_cast<std::shared_ptr<Map>*>(lua_newuserdatauv(L, sizeof(std::shared_ptr<Map>), 0));
  new (p) std::shared_ptr<Map>();
  luaL_setmetatable(L, kMapMeta);
  char err[600] = {0};
  try {
    std::string error;
    *p = Registry::get().open(path, static_cast<MapKind>(kind), error);
    if (!*p) std::snprintf(err, sizeof err, "gateway.map: %s", error.c_str());
  } catch (const std::exception& e) {
    std::snprintf(err, sizeof err, "gateway.map: %s: %s", path, e.what());
  }
  if (err[0]) return luaL_error(L, "%s", err);
  return 1;
}

}  // namespace

std::shared_ptr<Map> open_map(const std::string& path, MapKind kind, std::string& error) {
  return Registry::get().open(path, kind, error);
}

void open_map_api(lua_State* L) {
  luaL_newmetatable(L, kMapMeta);
  static const luaL_Reg methods[] = {{"contains", map_contains}, {nullptr, nullptr}};
  luaL_newlib(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, map_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, map_len);
  lua_setfield(L, -2, "__len");
  lua_pushliteral(L, "locked");
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 1);
  lua_pushcfunction(L, l_map);
  lua_setfield(L, -2, "map");
}

}  // namespace gw::lua
