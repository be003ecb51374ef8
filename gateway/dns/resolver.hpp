// The gateway's DNS resolver, shared by SPF, DKIM and reverse lookups. Asynchronous with the event
// loop: a query co_awaits and never blocks a worker thread. Implementations cache answers by TTL
// (negative answers per RFC 2308) and merge concurrent identical queries into one.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

namespace gw::dns {

enum class Type : std::uint16_t { A = 1, NS = 2, CNAME = 5, PTR = 12, MX = 15, TXT = 16, AAAA = 28, SPF = 99 };

enum class Status {
  ok,         // records holds the answer (may be empty only for nodata)
  nodata,     // the name exists, no record of that type
  nxdomain,   // the name does not exist
  temperror,  // timeout, SERVFAIL, REFUSED, network error: try again later
  permerror,  // a malformed name or answer
};

struct Answer {
  Status status = Status::temperror;
  // A/AAAA: the address as text; MX: "PREFERENCE EXCHANGE"; PTR/NS/CNAME: the name without the
  // final dot; TXT/SPF: one entry per record, its character-strings concatenated.
  std::vector<std::string> records;
  std::uint32_t ttl = 0;
};

class Resolver {
 public:
  virtual ~Resolver() = default;
  // Runs on the caller's executor; resolves within dns.timeout (retries included) or answers temperror.
  virtual boost::asio::awaitable<Answer> query(std::string name, Type type) = 0;
  // The answer query() would give at once from the cache, without waiting: true and `out` set when
  // the cache holds a live answer. For callers that would otherwise start a coroutine or yield per
  // lookup (the DNS lists, the SPF check's DNS layer, gateway.dns in Lua). The default knows nothing.
  virtual bool cached_answer(const std::string& name, Type type, Answer& out) {
    (void)name, (void)type, (void)out;
    return false;
  }
  // Called once at exit, after every event loop has stopped and before any is destroyed: lookups
  // still in flight let go of the coroutines waiting on them (destroying those, as their io_context
  // would) instead of outliving the loops they belong to.
  virtual void shutdown() {}
};

}  // namespace gw::dns
