// [plugins.dnsbl]: the lists, their weights and codes, and what to do with the score (docs/dnsbl.md).
#pragma once
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "gateway/config/table.hpp"
#include "gateway/observe/metrics.hpp"
#include "plugins/dnsbl/rules.hpp"

namespace gw::plugins::dnsbl {

struct ListSpec {
  std::string zone;
  int weight = 1;
  std::vector<CodeRange> codes;  // empty = any 127.0.0.0/8 answer but 127.255.255.0/24
  bool ipv6 = true;              // client lists: also query IPv6 clients
  bool domain = false;           // a sender-domain list ([[plugins.dnsbl.domain_lists]])
  // resolved once here, never looked up by name per message
  observe::Counter* hits = nullptr;
  observe::Counter* errors = nullptr;
  observe::Counter* list_errors = nullptr;
};

struct Settings {
  int threshold = 1;
  bool reject_at_connect = false;
  bool tempfail_on_error = false;
  std::chrono::milliseconds timeout{5000};  // dns.timeout: the longest any stage waits for the lists
  std::vector<ListSpec> lists;              // client address lists
  std::vector<ListSpec> domain_lists;       // sender-domain lists (RHSBL)
};

// Throws config::ConfigError (PATH:LINE:COL) for an unknown key or a bad value.
std::shared_ptr<const Settings> parse_settings(const config::Table& t, std::chrono::milliseconds dns_timeout);

}  // namespace gw::plugins::dnsbl
