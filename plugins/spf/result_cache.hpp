// A per-thread cache of SPF results (docs/spf.md, "Result cache"). A check's result is a function of
// the client address, the MAIL FROM, the HELO name, our host name, the options and the DNS answers
// it read; the answers come from the resolver's cache until their TTLs run out. So a result is kept
// for as long as the shortest TTL among the answers it read (at most kMaxAge), and the next check of
// the same inputs on the same thread takes it instead of evaluating the records again.
#pragma once
#include <chrono>
#include <cstddef>
#include <string>
#include <unordered_map>

#include "plugins/spf/spf_check.hpp"

namespace gw::spf {

class ResultCache {
 public:
  static constexpr std::size_t kMaxEntries = 4096;
  static constexpr std::chrono::seconds kMaxAge{60};  // bounds what a config reload or a DNS change waits for

  static ResultCache& for_this_thread();
  static std::string key_of(const Request& req, const Options& opts);

  // The cached result for `key`, or nullptr when there is none still fresh.
  const Result* find(const std::string& key);
  // Keeps `res` for `ttl` (capped at kMaxAge); a ttl of 0 keeps nothing.
  void put(const std::string& key, const Result& res, std::chrono::seconds ttl);
  std::size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    Result result;
    std::chrono::steady_clock::time_point expires;
  };
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace gw::spf
