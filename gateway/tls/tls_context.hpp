// OpenSSL contexts: the server side for STARTTLS/implicit listeners (TLS 1.2+, from [tls]) and the
// client side towards the upstream (the admin's own MTA: its certificate is not verified).
#pragma once
#include <memory>

#include <boost/asio/ssl/context.hpp>

#include "gateway/config/config.hpp"

namespace gw::tls {

// nullptr when no listener uses TLS. Throws config::ConfigError naming the file on a bad cert/key.
std::shared_ptr<boost::asio::ssl::context> make_server_context(const config::Config& cfg);
std::shared_ptr<boost::asio::ssl::context> make_client_context();

}  // namespace gw::tls
