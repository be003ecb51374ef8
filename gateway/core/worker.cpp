#include "gateway/core/worker.hpp"

#include <atomic>

namespace gw {
namespace {
thread_local unsigned t_index = 0;
std::atomic<unsigned> g_count{1};
}  // namespace

unsigned worker_index() { return t_index; }
unsigned worker_count() { return g_count.load(std::memory_order_relaxed); }
void set_worker(unsigned index, unsigned count) {
  t_index = index;
  g_count = count;
}

}  // namespace gw
