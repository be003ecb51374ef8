#include "gateway/tls/tls_context.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

namespace gw::tls {
namespace asio = boost::asio;

namespace {
std::string openssl_error() {
  unsigned long e = ERR_get_error();
  if (!e) return "unknown error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}
}  // namespace

std::shared_ptr<asio::ssl::context> make_server_context(const config::Config& cfg) {
  bool wanted = false;
  for (auto& l : cfg.listeners) wanted |= l.tls != config::ListenerTls::none;
  if (!wanted) return nullptr;
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  SSL_CTX_set_options(native, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  auto tls_table = cfg.root.table("tls");
  if (SSL_CTX_use_certificate_chain_file(native, cfg.tls.certificate.c_str()) != 1)
    tls_table.fail("certificate", "cannot load \"" + cfg.tls.certificate + "\": " + openssl_error());
  if (SSL_CTX_use_PrivateKey_file(native, cfg.tls.private_key.c_str(), SSL_FILETYPE_PEM) != 1)
    tls_table.fail("private_key", "cannot load \"" + cfg.tls.private_key + "\": " + openssl_error());
  if (SSL_CTX_check_private_key(native) != 1)
    tls_table.fail("private_key", "does not match the certificate: " + openssl_error());
  return ctx;
}

std::shared_ptr<asio::ssl::context> make_client_context() {
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  ctx->set_verify_mode(asio::ssl::verify_none);
  return ctx;
}

}  // namespace gw::tls
