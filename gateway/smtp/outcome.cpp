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

void record_transaction(const Transaction& tx, Outcome outcome, const std::string& upstream_reply) {
  auto& m = observe::CoreMetrics::get();
  switch (outcome) {
    case Outcome::delivered: m.tx_delivered.inc(); break;
    case Outcome::rejected: m.tx_rejected.inc(); break;
    case Outcome::tempfailed: m.tx_tempfailed.inc(); break;
    case Outcome::aborted: m.tx_aborted.inc(); break;
  }
  if (!log::enabled(log::Level::info)) return;
  std::vector<std::string> verdicts;
  for (auto& [plugin, v] : tx.verdicts) verdicts.push_back(plugin + "=" + v);
  auto ms = tx.started.time_since_epoch().count()
                ? std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - tx.started).count()
                : 0;
  auto fact = [&](const char* name) {
    auto it = tx.facts.find(name);
    return it == tx.facts.end() ? std::string() : it->second;
  };
  // One line an admin can grep: who, what, which message (Message-ID), how it came (TLS, AUTH user),
  // and, for a refused transaction, the plugin that refused it and the reply it gave.
  const bool refused = outcome == Outcome::rejected || outcome == Outcome::tempfailed;
  log::write(log::Level::info, "transaction",
             std::vector<log::Field>{{"session", tx.conn.id},
                                     {"id", tx.id},
                                     {"client", tx.conn.client.ip},
                                     {"helo", tx.conn.helo},
                                     {"tls", tx.conn.tls ? tx.conn.tls_version : std::string("none")},
                                     {"auth_user", tx.conn.auth_user.value_or("")},
                                     {"sender", tx.sender},
                                     {"recipients", tx.recipients},
                                     {"message_id", tx.message.header("Message-ID").value_or("")},
                                     {"size", tx.message.size()},
                                     {"verdicts", verdicts},
                                     {"refused_by", refused ? fact("refused_by") : std::string()},
                                     {"reason", refused ? fact("refused_reply") : std::string()},
                                     {"upstream", upstream_reply},
                                     {"outcome", outcome_name(outcome)},
                                     {"duration_ms", ms}});
}

}  // namespace gw::smtp
