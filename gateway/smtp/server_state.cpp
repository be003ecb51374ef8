#include "gateway/smtp/server_state.hpp"

namespace gw::smtp {

void ServerState::add(Session* s, std::function<void()> drain) {
  std::lock_guard lock(mu_);
  sessions_.emplace(s, std::move(drain));
}

void ServerState::remove(Session* s) {
  std::lock_guard lock(mu_);
  sessions_.erase(s);
}

void ServerState::drain_all() {
  std::vector<std::function<void()>> calls;
  {
    std::lock_guard lock(mu_);
    for (auto& [s, f] : sessions_) calls.push_back(f);
  }
  for (auto& f : calls) f();
}

std::size_t ServerState::live() const {
  std::lock_guard lock(mu_);
  return sessions_.size();
}

}  // namespace gw::smtp
