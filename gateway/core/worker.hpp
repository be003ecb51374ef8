// Which event-loop thread runs the current code: one io_context per thread, so per-thread state
// (Lua states, caches) is indexed by worker_index() and needs no lock.
#pragma once

namespace gw {

unsigned worker_index();  // 0 on threads that are not workers
unsigned worker_count();
void set_worker(unsigned index, unsigned count);

}  // namespace gw
