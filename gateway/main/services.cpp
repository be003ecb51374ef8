#include "gateway/main/services.hpp"

namespace gw::app {

Services build_services(const config::Config&, boost::asio::io_context&, bool) {
  Services s;
  return s;
}

}  // namespace gw::app
