#include "gateway/main/services.hpp"

#include <stdexcept>

#include "gateway/dns/asio_resolver.hpp"
#include "gateway/observe/log.hpp"
#include "gateway/store/redis_store.hpp"
#include "gateway/store/store.hpp"

namespace gw::app {

Services build_services(const config::Config& cfg, boost::asio::io_context&, bool for_check) {
  Services s;
  // Opens no socket until the first query, so --check-config builds it too (and reports bad [dns]).
  s.resolver = dns::make_resolver(cfg.dns);
  if (cfg.store.backend == "redis") {
    try {
      (void)store::RedisStore::Options::from_url(cfg.store.redis_url);
    } catch (const std::invalid_argument& e) {
      cfg.root.table("store").fail("redis_url", e.what());
    }
  }
  if (for_check) return s;
  // The store opens now (embedded: creates store.path) so a bad path stops the start, not a message.
  s.store = store::make_store(cfg.store);
  log::info("store", {{"backend", s.store->backend()},
                      {"where", cfg.store.backend == "redis" ? cfg.store.redis_url : cfg.store.path}});
  return s;
}

}  // namespace gw::app
