#include "gateway/smtp/server_state.hpp"

#include "gateway/smtp/session.hpp"

namespace gw::smtp {

void ServerState::add(Session* s) {
  std::lock_guard lock(mu_);
  sessions_.insert(s);
}

void ServerState::remove(Session* s) {
  std::lock_guard lock(mu_);
  sessions_.erase(s);
}

// Under the lock: a session being destroyed waits in remove() until this is done, so every pointer
// here is alive (request_drain only posts to the session's thread; its weak_ptr finds it gone if so).
void ServerState::drain_all() {
  std::lock_guard lock(mu_);
  for (Session* s : sessions_) s->request_drain();
}

std::size_t ServerState::live() const {
  std::lock_guard lock(mu_);
  return sessions_.size();
}

}  // namespace gw::smtp
