#include "gateway/main/services.hpp"

#include "gateway/dns/asio_resolver.hpp"

namespace gw::app {

Services build_services(const config::Config& cfg, boost::asio::io_context&, bool) {
  Services s;
  // Opens no socket until the first query, so --check-config builds it too (and reports bad [dns]).
  s.resolver = dns::make_resolver(cfg.dns);
  return s;
}

}  // namespace gw::app
