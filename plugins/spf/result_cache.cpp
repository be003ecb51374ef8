#include "plugins/spf/result_cache.hpp"

#include <algorithm>

namespace gw::spf {

ResultCache& ResultCache::for_this_thread() {
  thread_local ResultCache cache;
  return cache;
}

std::string ResultCache::key_of(const Request& req, const Options& opts) {
  std::string k;  // the address as its bytes: no inet_ntop on every MAIL
  if (req.ip.is_v4()) {
    const auto b = req.ip.to_v4().to_bytes();
    k.assign(b.begin(), b.end());
  } else {
    const auto b = req.ip.to_v6().to_bytes();
    k.assign(b.begin(), b.end());
  }
  for (const std::string* s : {&req.sender, &req.helo, &req.receiver, &opts.default_explanation}) {
    k += '\0';
    k += *s;
  }
  k += '\0';
  k += std::to_string(opts.max_rounds);
  k += '/';
  k += std::to_string(opts.budget.count());
  return k;
}

const Result* ResultCache::find(const std::string& key) {
  auto it = entries_.find(key);
  if (it == entries_.end()) return nullptr;
  if (it->second.expires <= std::chrono::steady_clock::now()) {
    entries_.erase(it);
    return nullptr;
  }
  return &it->second.result;
}

void ResultCache::put(const std::string& key, const Result& res, std::chrono::seconds ttl) {
  ttl = std::min(ttl, kMaxAge);
  if (ttl.count() <= 0) return;
  const auto now = std::chrono::steady_clock::now();
  if (entries_.size() >= kMaxEntries) {  // bounded: drop the stale ones, and everything if none was
    std::erase_if(entries_, [now](const auto& e) { return e.second.expires <= now; });
    if (entries_.size() >= kMaxEntries) entries_.clear();
  }
  entries_[key] = Entry{res, now + ttl};
}

}  // namespace gw::spf
