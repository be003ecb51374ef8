#include "gateway/core/command.hpp"

#include <map>

namespace gw {
namespace {
struct Entry {
  std::string usage;
  CommandMain fn;
};
std::map<std::string, Entry>& table() {
  static std::map<std::string, Entry> t;
  return t;
}
}  // namespace

bool CommandRegistry::add(const std::string& name, std::string usage, CommandMain fn) {
  table()[name] = Entry{std::move(usage), std::move(fn)};
  return true;
}

const CommandMain* CommandRegistry::find(const std::string& name) {
  auto it = table().find(name);
  return it == table().end() ? nullptr : &it->second.fn;
}

std::vector<std::string> CommandRegistry::usages() {
  std::vector<std::string> out;
  for (auto& [n, e] : table()) out.push_back(e.usage);
  return out;
}

}  // namespace gw
