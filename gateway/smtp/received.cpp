#include "gateway/smtp/received.hpp"

#include <ctime>

namespace gw::smtp {

std::string rfc5322_date() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  return buf;
}

std::string received_header(const Transaction& tx, const std::string& hostname) {
  const auto& c = tx.conn;
  // RFC 3848 protocol types: ESMTP, ESMTPS (TLS), ESMTPA (AUTH), ESMTPSA; UTF8SMTP per RFC 6531.
  std::string with = tx.smtputf8 ? "UTF8SMTP" : (c.esmtp ? "ESMTP" : "SMTP");
  if (c.tls) with += "S";
  if (c.auth_user) with += "A";
  std::string v = "from " + (c.helo.empty() ? std::string("unknown") : c.helo) + " (" +
                  (c.client.rdns ? *c.client.rdns : std::string("unknown")) + " [" + c.client.ip + "])\r\n\tby " +
                  hostname + " (smtp-gateway) with " + with + " id " + tx.id;
  if (tx.recipients.size() == 1) v += "\r\n\tfor <" + tx.recipients.front() + ">";
  v += "; " + rfc5322_date();
  return v;
}

}  // namespace gw::smtp
