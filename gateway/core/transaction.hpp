// Everything plugins may read about a client and its current transaction, and the effects they leave
// on it (headers to prepend, Authentication-Results parts, facts for later plugins).
#pragma once
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/ip/address.hpp>

#include "gateway/config/config.hpp"
#include "gateway/core/message.hpp"

namespace gw {

struct ClientInfo {
  boost::asio::ip::address address;
  std::string ip;                   // textual address
  std::uint16_t port = 0;
  std::optional<std::string> rdns;  // PTR name without the trailing dot
  bool rdns_tempfail = false;       // the PTR lookup failed temporarily
};

// Facts of the connection: set before and during the session, kept across transactions.
struct Connection {
  std::string id;                   // session id, shown in logs and Received
  ClientInfo client;
  config::Role role = config::Role::inbound;
  std::string listener;             // listener address as configured
  bool tls = false;
  std::string tls_version;          // e.g. "TLSv1.3"
  std::string tls_cipher;
  std::string helo;                 // last HELO/EHLO argument
  bool esmtp = false;               // EHLO (not HELO)
  std::optional<std::string> auth_user;
  bool trusted = false;             // client in [trusted] networks
  bool outbound() const { return trusted || auth_user.has_value(); }

  // State a plugin keeps for the whole session (a milter connection, DNSBL lookups started at
  // connect, Lua's tx.session_data), keyed by its pipeline entry name; freed when the session ends.
  std::map<std::string, std::shared_ptr<void>, std::less<>> plugin_state;
  template <typename T>
  std::shared_ptr<T> state(std::string_view key) const {
    auto it = plugin_state.find(key);
    return it == plugin_state.end() ? nullptr : std::static_pointer_cast<T>(it->second);
  }
};

struct SpfFact {
  std::string result;       // RFC 8601 word: pass fail softfail neutral none temperror permerror
  std::string identity;     // "mailfrom" or "helo"
  std::string domain;       // the checked domain
  std::string explanation;  // for a fail, when the record has one
};

struct DkimFact {
  std::string domain;
  std::string selector;
  std::string result;
  std::string b;  // first 8 characters of the b= tag
};

// RFC 7489 outcome, in the words of Authentication-Results (docs/dmarc.md).
struct DmarcFact {
  std::string result;       // pass fail none temperror permerror
  std::string domain;       // RFC5322.From domain
  std::string policy;       // none quarantine reject (the p= or sp= that applied, before pct)
  std::string disposition;  // none quarantine reject (what was done)
};

struct DnsblHit {
  std::string zone;
  int weight = 0;
  std::string code;  // the A answer that counted, e.g. "127.0.0.2"
};

struct DnsblFact {
  int score = 0;
  std::vector<DnsblHit> hits;
};

struct RspamdFact {
  std::string action;  // "no action", "add header", "rewrite subject", "greylist", "soft reject", "reject"
  double score = 0;
  double required_score = 0;
  std::vector<std::pair<std::string, double>> symbols;
};

struct Header {
  std::string name;
  std::string value;  // unfolded or already folded with CRLF WSP
};

// An optional fact kept on the heap: a transaction carries it only when the plugin that makes it
// ran, and an idle session should not pay for it inline (README, "Performance"). Used like
// std::optional: `if (tx.spf)`, `tx.spf->result`, `tx.spf = SpfFact{...}`, `emplace()`, `reset()`.
template <typename T>
class Boxed {
 public:
  Boxed() = default;
  Boxed(const Boxed& o) : p_(o.p_ ? std::make_unique<T>(*o.p_) : nullptr) {}
  Boxed(Boxed&&) noexcept = default;
  Boxed& operator=(const Boxed& o) {
    if (this != &o) p_ = o.p_ ? std::make_unique<T>(*o.p_) : nullptr;
    return *this;
  }
  Boxed& operator=(Boxed&&) noexcept = default;
  Boxed& operator=(T v) {
    p_ = std::make_unique<T>(std::move(v));
    return *this;
  }
  template <typename... A>
  T& emplace(A&&... a) {
    p_ = std::make_unique<T>(std::forward<A>(a)...);
    return *p_;
  }
  void reset() { p_.reset(); }
  explicit operator bool() const { return p_ != nullptr; }
  T& operator*() { return *p_; }
  const T& operator*() const { return *p_; }
  T* operator->() { return p_.get(); }
  const T* operator->() const { return p_.get(); }

 private:
  std::unique_ptr<T> p_;
};

struct Transaction {
  Connection conn;

  // envelope: addresses without angle brackets
  std::string id;
  bool has_sender = false;
  std::string sender;
  std::uint64_t declared_size = 0;  // SIZE=
  bool smtputf8 = false;
  std::string body_type;            // BODY= value, e.g. "8BITMIME"
  std::vector<std::string> recipients;

  Message message;
  std::chrono::steady_clock::time_point started{};

  // effects
  std::vector<Header> prepend;                 // in order of addition; written above the message
  std::vector<std::string> auth_results;       // "spf=pass smtp.mailfrom=x" parts of the one A-R header
  Boxed<SpfFact> spf;
  std::vector<DkimFact> dkim;
  Boxed<DmarcFact> dmarc;
  Boxed<DnsblFact> dnsbl;    // kept for the session by the dnsbl plugin, set again each stage
  Boxed<RspamdFact> rspamd;
  std::map<std::string, std::string> facts;    // free-form facts plugins leave for each other

  // "plugin=verdict" pairs for the summary log line
  std::vector<std::pair<std::string, std::string>> verdicts;

  void add_header(std::string name, std::string value) { prepend.push_back({std::move(name), std::move(value)}); }
  // The headers to write above the message, the Authentication-Results header (when any plugin left
  // a part) first, then the others in order of addition. `authserv_id` is server.hostname.
  std::vector<Header> final_headers(const std::string& authserv_id) const;
  // Clears the envelope, message and effects; keeps the connection facts.
  void reset();
};

}  // namespace gw
