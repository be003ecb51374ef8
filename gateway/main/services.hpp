// Builds the long-lived services plugins share (DNS resolver, state store) from the config.
#pragma once
#include <boost/asio/io_context.hpp>

#include "gateway/core/plugin.hpp"

namespace gw::app {

// `io` runs the services' own I/O. `for_check` builds what --check-config needs and opens nothing.
Services build_services(const config::Config& cfg, boost::asio::io_context& io, bool for_check);

}  // namespace gw::app
