// One SPF check (RFC 7208) with libspf2 on the gateway's asynchronous resolver.
//
// libspf2 asks its DNS layer synchronously. Ours (libspf2_run.cpp) serves answers only from a
// per-check table; a name not in it is noted and answered "try again", which makes libspf2 stop
// with temperror. check() then co_awaits the resolver for the noted names and runs libspf2 again,
// until a run needs nothing new (bounded rounds). No thread ever waits on the network.
//
// The layer also enforces what libspf2 1.2.10 does not: RFC 7208 §4.6.4's 10 DNS-querying terms
// across includes and its 2 void lookups, TXT-only record selection (§4.5, type SPF ignored), and
// guards against oversized records and macro strings before libspf2 compiles them (docs/spf.md).
#pragma once
#include <chrono>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/address.hpp>

#include "gateway/dns/resolver.hpp"

namespace gw::spf {

struct Request {
  boost::asio::ip::address ip;
  std::string sender;    // MAIL FROM without brackets; empty for the null sender
  std::string helo;      // HELO/EHLO argument
  std::string receiver;  // our host name (%{r}, comments)
};

struct Result {
  std::string result;       // pass fail softfail neutral none temperror permerror
  std::string identity;     // "mailfrom" or "helo"
  std::string domain;       // the domain checked
  std::string sender;       // the identity as checked: the address, or postmaster@helo
  std::string explanation;  // for fail: the record's exp= text or our default
  std::string problem;      // for the errors: what went wrong
  int rounds = 0;           // libspf2 runs
  int queries = 0;          // resolver calls
};

struct Options {
  // Expanded with the SPF macros for a fail without exp= (libspf2's own default names a dead site).
  std::string default_explanation = "%{i} is not allowed to send mail for %{d}";
  int max_rounds = 40;
  std::chrono::milliseconds budget{20000};  // whole check; beyond it the result is temperror
  // Keep results in this thread's ResultCache (result_cache.hpp) and take them from it. The plugin
  // turns it on; a caller whose DNS data changes between checks of the same inputs leaves it off.
  bool cache_results = false;
};

boost::asio::awaitable<Result> check(dns::Resolver& resolver, const Request& req, const Options& opts);

// "helo=" material for Received-SPF: printable ASCII without specials that could end the field.
std::string sanitize(std::string_view s, std::size_t max = 255);

}  // namespace gw::spf
