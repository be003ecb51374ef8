// How a transaction ended, and the one summary line (plus counters) each transaction leaves.
#pragma once
#include <string>

#include "gateway/core/transaction.hpp"
#include "gateway/net/reply.hpp"

namespace gw::smtp {

enum class Outcome { delivered, rejected, tempfailed, aborted };

const char* outcome_name(Outcome o);
// The outcome a final reply means: 2xx delivered, 5xx rejected, anything else tempfailed.
Outcome outcome_of(const net::Reply& r);
Outcome outcome_of_refusal(bool permanent);

// Counts the outcome (smtpgw_transactions_total) and, at log level info, writes the `transaction` line.
void record_transaction(const Transaction& tx, Outcome outcome, const std::string& upstream_reply);

}  // namespace gw::smtp
