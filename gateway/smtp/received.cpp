#include "gateway/smtp/received.hpp"

#include <ctime>
#include <initializer_list>
#include <string_view>

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
  const std::string_view helo = c.helo.empty() ? std::string_view("unknown") : std::string_view(c.helo);
  const std::string_view rdns = c.client.rdns ? std::string_view(*c.client.rdns) : std::string_view("unknown");
  const std::string date = rfc5322_date();
  std::string v;  // one allocation: this header is built for every message
  v.reserve(96 + helo.size() + rdns.size() + c.client.ip.size() + hostname.size() + tx.id.size() + date.size() +
            (tx.recipients.size() == 1 ? tx.recipients.front().size() : 0));
  for (std::string_view part : {std::string_view("from "), helo, std::string_view(" ("), rdns, std::string_view(" ["),
                                std::string_view(c.client.ip), std::string_view("])\r\n\tby "), std::string_view(hostname),
                                std::string_view(" (smtp-gateway) with "), std::string_view(with), std::string_view(" id "),
                                std::string_view(tx.id)})
    v += part;
  if (tx.recipients.size() == 1) {
    v += "\r\n\tfor <";
    v += tx.recipients.front();
    v += '>';
  }
  v += "; ";
  v += date;
  return v;
}

}  // namespace gw::smtp
