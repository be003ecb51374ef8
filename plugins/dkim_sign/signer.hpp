// DKIM signing (RFC 6376, RFC 8463) with OpenSSL EVP. A SigningKey is parsed once (config load or
// SIGHUP) and shared read-only by every worker thread; sign() hashes the message from the buffer it
// is already in (the headers other plugins prepend first, then the message's own fields, then the
// body in place, canonicalized as it streams through a small staging buffer) and returns the
// DKIM-Signature value to prepend.
//
// Why not libopendkim here (dkim_verify uses it): libopendkim takes the private key as PEM text and
// decodes it again for every message; with OpenSSL 3 that decode alone costs ~550 us, more than an
// RSA-2048 signature. Its signature header is also emitted folded differently from how it was hashed,
// so simple header canonicalization with ed25519 never verified. Every signature made here is checked
// by libopendkim, Mail::DKIM and dkimpy in the tests.
#pragma once
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/core/message.hpp"
#include "gateway/core/transaction.hpp"

namespace gw::dkim {

enum class Algorithm { rsa_sha256, ed25519_sha256 };
enum class Canon { simple, relaxed };

struct SignError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Header fields signed when a key gives no `headers` list (RFC 6376 §5.4.1), From over-signed.
const std::vector<std::string>& default_signed_headers();

struct KeySpec {
  std::string domain;
  std::string selector;
  Algorithm algorithm = Algorithm::rsa_sha256;
  std::string key_pem;              // PKCS#8 or traditional RSA PEM
  std::vector<std::string> headers; // empty: default_signed_headers()
  std::vector<std::string> oversign{"from"};
  Canon header_canon = Canon::relaxed;
  Canon body_canon = Canon::relaxed;
};

class SigningKey {
 public:
  // Validates the key (parses the PEM, checks its type against the algorithm); throws SignError.
  explicit SigningKey(KeySpec spec);
  ~SigningKey();
  SigningKey(const SigningKey&) = delete;
  SigningKey& operator=(const SigningKey&) = delete;

  const KeySpec& spec() const { return spec_; }
  int key_bits() const { return bits_; }

  // The DKIM-Signature value (without "DKIM-Signature: "), folded with CRLF TAB. `extra` are the
  // fields that will be written above the message, in order. `now` is the t= value (0 = the clock).
  // Throws SignError.
  std::string sign(const Message& msg, const std::vector<Header>& extra, long long now = 0) const;

 private:
  KeySpec spec_;
  int bits_ = 0;
  void* pkey_ = nullptr;  // EVP_PKEY*
};

// RFC 6376 §3.4 canonicalization, exposed for tests. The body hash streams `body` in place.
std::string canon_header(std::string_view name, std::string_view raw_value, Canon c);  // value after ':'
std::string body_hash_b64(std::string_view body, Canon c);

// Reads a PEM private key file; throws SignError naming the file when missing or unreadable.
std::string read_key_file(const std::string& path);

// Key generation for `smtp-gateway dkim-keygen`: returns the PKCS#8 PEM and the TXT record value
// ("v=DKIM1; k=rsa; p=...").
struct GeneratedKey {
  std::string pem;
  std::string txt;
};
GeneratedKey generate_key(Algorithm alg, int bits);
// The TXT record value for a private key PEM (its public half).
std::string txt_record_for(const std::string& pem);

}  // namespace gw::dkim
