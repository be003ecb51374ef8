#include "gateway/smtp/outcome.hpp"

#include <chrono>

#include "gateway/observe/log.hpp"
#include "gateway/observe/metrics.hpp"

namespace gw::smtp {

const char* outcome_name(Outcome o) {
  switch (o) {
    case Outcome::delivered: return "delivered";
    case Outcome::rejected: return "rejected";
    case Outcome::tempfailed: return "tempfailed";
    case Outcome::aborted: return "aborted";
  }
  return "?";
}

Outcome outcome_of(const net::Reply& r) {
  if (r.code == 250) return Outcome::delivered;
  return r.permanent() ? Outcome::rejected : Outcome::tempfailed;
}

Outcome outcome_of_refusal(bool permanent) { return permanent ? Outcome::rejected : Outcome::tempfailed; }

namespace {
std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (auto& s : v) {
    if (!out.empty()) out += sep;
    out += s;
  }
  return out;
}
}  // namespace

void record_transaction(const Transaction& tx, Outcome outcome, const std::string& upstream_reply) {
  auto& m = observe::CoreMetrics::get();
  switch (outcome) {
    case Outcome::delivered: m.tx_delivered.inc(); break;
    case Outcome::rejected: m.tx_rejected.inc(); break;
    case Outcome::tempfailed: m.tx_tempfailed.inc(); break;
    case Outcome::aborted: m.tx_aborted.inc(); break;
  }
  if (!log::enabled(log::Level::info)) return;
  std::string verdicts;
  for (auto& [plugin, v] : tx.verdicts) verdicts += (verdicts.empty() ? "" : ",") + plugin + "=" + v;
  auto ms = tx.started.time_since_epoch().count()
                ? std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - tx.started).count()
                : 0;
  log::info("transaction", {{"session", tx.conn.id},
                            {"id", tx.id},
                            {"client", tx.conn.client.ip},
                            {"helo", tx.conn.helo},
                            {"sender", tx.sender},
                            {"recipients", join(tx.recipients, ",")},
                            {"size", tx.message.size()},
                            {"verdicts", verdicts},
                            {"upstream", upstream_reply},
                            {"outcome", outcome_name(outcome)},
                            {"duration_ms", ms}});
}

}  // namespace gw::smtp
