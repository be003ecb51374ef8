// Lists for gateway.map(path, kind): loaded once per process and shared read-only by the Lua states of
// every worker thread (a list of a million entries is in memory once), re-read by a background thread
// when the file changes (checked every second) and when a script opens it again (a config reload).
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gw::lua {

enum class MapKind { ip, domain, string };

// One version of a list's content; immutable once built.
struct MapData {
  using U128 = unsigned __int128;
  std::vector<std::pair<std::uint32_t, std::uint32_t>> v4;  // sorted, merged ranges [first, last]
  std::vector<std::pair<U128, U128>> v6;
  std::string blob;                     // domain/string: the entries, lower case
  std::vector<std::string_view> keys;   // sorted views into blob
  std::size_t entries = 0;

  bool contains(MapKind kind, std::string_view x) const;
};

// Parses a list; false with `error` = "path:line: message" on a bad entry.
bool parse_map(const std::string& path, MapKind kind, MapData& out, std::string& error);

class Map {
 public:
  Map(std::string path, MapKind kind) : path_(std::move(path)), kind_(kind) {}
  const std::string& path() const { return path_; }
  MapKind kind() const { return kind_; }
  std::shared_ptr<const MapData> data() const {
    std::lock_guard lock(mu_);
    return data_;
  }
  bool contains(std::string_view x) const { return data()->contains(kind_, x); }
  // Re-reads the file when it is not the one loaded (size, mtime, inode). False with `error` when
  // it cannot be read or parsed; the previous content stays in use.
  bool refresh(std::string& error);

 private:
  std::string path_;
  MapKind kind_;
  mutable std::mutex mu_;
  std::shared_ptr<const MapData> data_;
  std::mutex load_mu_;  // one reload at a time
  std::uint64_t dev_ = 0, ino_ = 0, size_ = 0;
  std::int64_t mtime_ns_ = -1;
};

// The process-wide list for (path, kind): loaded on first use, refreshed when opened again.
// Null with `error` when it cannot be loaded.
std::shared_ptr<Map> open_map(const std::string& path, MapKind kind, std::string& error);

}  // namespace gw::lua
