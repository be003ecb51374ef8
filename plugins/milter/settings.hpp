// [plugins.milter]: the milters to call, in order (docs/milter.md).
#pragma once
#include <chrono>
#include <string>
#include <vector>

#include "gateway/config/table.hpp"
#include "plugins/milter/client.hpp"

namespace gw::milter {

struct ServerSettings {
  std::string name;
  Address address;
  std::string address_text;
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds command_timeout{30000};
  bool tempfail_on_error = true;  // on_error = "tempfail" | "accept"
};

struct Settings {
  std::vector<ServerSettings> servers;
};

Settings parse_settings(const config::Table& t);

}  // namespace gw::milter
