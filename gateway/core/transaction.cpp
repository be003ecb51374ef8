#include "gateway/core/transaction.hpp"

namespace gw {

std::vector<Header> Transaction::final_headers(const std::string& authserv_id) const {
  std::vector<Header> out;
  out.reserve(prepend.size() + 1);
  if (!auth_results.empty()) {
    std::string v = authserv_id;
    for (auto& part : auth_results) {
      v += ";\r\n\t";
      v += part;
    }
    out.push_back({"Authentication-Results", std::move(v)});
  }
  out.insert(out.end(), prepend.begin(), prepend.end());
  return out;
}

void Transaction::reset() {
  id.clear();
  has_sender = false;
  sender.clear();
  declared_size = 0;
  smtputf8 = false;
  body_type.clear();
  recipients.clear();
  message.clear();
  prepend.clear();
  auth_results.clear();
  spf.reset();
  dkim.clear();
  dmarc.reset();
  dnsbl.reset();
  rspamd.reset();
  facts.clear();
  verdicts.clear();
}

}  // namespace gw
