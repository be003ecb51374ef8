// DKIM verification (RFC 6376, RFC 8463, RFC 8301) with libopendkim, without any DNS inside the library:
// the caller collects the signatures' key names (signature_refs), fetches their TXT records with the
// gateway's asynchronous resolver, then calls verify() with the answers; libopendkim's key lookup hook
// reads them from that per-message map.
#pragma once
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/core/message.hpp"
#include "gateway/dns/resolver.hpp"

namespace gw::dkim {

struct SigRef {
  std::string domain;    // d=, lower case
  std::string selector;  // s=
  std::string key_name() const;  // "selector._domainkey.domain"
};

// d= and s= of every DKIM-Signature field (in order; fields without both are skipped).
std::vector<SigRef> signature_refs(const Message& msg);

struct KeyAnswer {
  dns::Status status = dns::Status::temperror;
  std::vector<std::string> records;  // TXT records, character-strings joined
};
using KeyMap = std::map<std::string, KeyAnswer>;  // by lower-case key_name()

struct SigResult {
  std::string domain;
  std::string selector;
  std::string algorithm;  // a=
  std::string b;          // first 8 characters of b=
  std::string result;     // pass fail neutral policy temperror permerror
  std::string reason;     // for anything but pass
};

class Verifier {
 public:
  Verifier();
  ~Verifier();
  Verifier(const Verifier&) = delete;
  Verifier& operator=(const Verifier&) = delete;

  // One result per DKIM-Signature field; empty when the message has none. `now` (seconds since the
  // epoch, 0 = the clock) is for tests of x= expiry.
  std::vector<SigResult> verify(const Message& msg, const KeyMap& keys, std::string_view id = "gw") const;

 private:
  void* lib_ = nullptr;  // DKIM_LIB*
};

// "dkim=pass header.d=example.com header.s=s1 header.a=rsa-sha256 header.b=abcdefgh" (RFC 8601, RFC 6008)
std::string auth_results_part(const SigResult& r);

}  // namespace gw::dkim
