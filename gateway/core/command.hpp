// Subcommands of the binary ("smtp-gateway NAME args..."), registered by the module that owns them
// (e.g. dkim-keygen by the dkim_sign plugin), so main knows none of them by name.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "gateway/core/plugin.hpp"

namespace gw {

using CommandMain = std::function<int(const std::vector<std::string>& args)>;

struct CommandRegistry {
  static bool add(const std::string& name, std::string usage, CommandMain fn);
  static const CommandMain* find(const std::string& name);
  static std::vector<std::string> usages();
};

#define GW_REGISTER_COMMAND(NAME, USAGE, FN) \
  static const bool GW_PLUGIN_CONCAT(gw_command_registered_, __LINE__) = ::gw::CommandRegistry::add(NAME, USAGE, FN)

}  // namespace gw
