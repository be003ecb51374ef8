// What the dmarc plugin reads from the outside: From field values, TXT strings at _dmarc names (through
// libopendmarc's parser), and report records from the store. No crash, and a decoded record encodes to
// text that decodes to the same record.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "plugins/dmarc/from_domain.hpp"
#include "plugins/dmarc/policy.hpp"
#include "plugins/dmarc/record.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string in(reinterpret_cast<const char*>(data), size);
  (void)gw::dmarc::from_domain({in});
  for (auto& d : gw::dmarc::address_domains(in))
    if (d.size() > in.size()) std::abort();
  for (auto& rec : gw::dmarc::dmarc_records({in, "v=DMARC1; p=none"})) {
    auto r = gw::dmarc::parse_record(rec, "example.test");
    if (r && (r->pct < 0 || r->pct > 100)) std::abort();
  }
  if (auto r = gw::dmarc::ReportRecord::decode(in)) {
    std::string once = r->encode();
    auto again = gw::dmarc::ReportRecord::decode(once);
    if (!again || again->encode() != once) std::abort();
  }
  return 0;
}
