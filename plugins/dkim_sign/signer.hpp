// DKIM signing (RFC 6376, RFC 8463) with libopendkim. A SigningKey is loaded once (config load or
// SIGHUP) and shared read-only by every worker thread; sign() hashes the message from the buffer it
// is already in (the headers other plugins prepend first, then the message's own fields, then the
// body in place) and returns the DKIM-Signature value to prepend.
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
  // fields that will be written above the message, in order. Throws SignError.
  std::string sign(const Message& msg, const std::vector<Header>& extra, std::string_view id = "gw") const;

 private:
  KeySpec spec_;
  int bits_ = 0;
  void* lib_ = nullptr;  // DKIM_LIB*
  std::vector<std::string> hdr_storage_;
  std::vector<const char*> hdr_list_;
};

// Folds a one-line DKIM-Signature value with CRLF TAB where no canonicalization is affected.
std::string fold_signature(std::string_view line, bool relaxed_headers);

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
