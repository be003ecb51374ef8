// RFC 7489 Appendix C aggregate reports: grouping recorded results into rows and writing the XML.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "plugins/dmarc/record.hpp"

namespace gw::dmarc {

struct ReportMeta {
  std::string org_name;
  std::string email;
  std::string receiver;  // the reporting host's domain (server.hostname)
  std::int64_t begin = 0, end = 0;
};

// One From domain's report: `records` all have that header_from; the newest one's published policy
// goes into policy_published. Rows are grouped by every value they show (source IP, disposition,
// aligned DKIM/SPF, sampling, identifiers and the raw DKIM and SPF results) with their counts.
std::string report_xml(const ReportMeta& meta, const std::string& domain, const std::vector<ReportRecord>& records);

// "<receiver>!<domain>!<begin>!<end>.xml.gz" (RFC 7489 §7.2.1.1)
std::string report_file_name(const ReportMeta& meta, const std::string& domain);

// Writes `data` gzip-compressed to `path` (through a temporary file renamed into place).
bool write_gzip(const std::string& path, const std::string& data, std::string& error);

}  // namespace gw::dmarc
