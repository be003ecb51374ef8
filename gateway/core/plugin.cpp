#include <map>
#include <mutex>

#include "gateway/core/plugin.hpp"

namespace gw {

const char* stage_name(Stage s) {
  switch (s) {
    case Stage::connect: return "connect";
    case Stage::helo: return "helo";
    case Stage::mail: return "mail";
    case Stage::rcpt: return "rcpt";
    case Stage::data: return "data";
    case Stage::reset: return "reset";
    case Stage::disconnect: return "disconnect";
  }
  return "?";
}

Task<Verdict> Plugin::on_connect(Transaction&) { co_return Verdict::next(); }
Task<Verdict> Plugin::on_helo(Transaction&, std::string_view) { co_return Verdict::next(); }
Task<Verdict> Plugin::on_mail(Transaction&) { co_return Verdict::next(); }
Task<Verdict> Plugin::on_rcpt(Transaction&, const std::string&) { co_return Verdict::next(); }
Task<Verdict> Plugin::on_data(Transaction&) { co_return Verdict::next(); }
Task<void> Plugin::on_reset(Transaction&) { co_return; }
Task<void> Plugin::on_disconnect(Transaction&) { co_return; }

namespace {
std::map<std::string, PluginFactory>& registry() {
  static std::map<std::string, PluginFactory> r;
  return r;
}
}  // namespace

bool PluginRegistry::add(const std::string& name, PluginFactory factory) {
  registry()[name] = std::move(factory);
  return true;
}

const PluginFactory* PluginRegistry::find(const std::string& name) {
  auto it = registry().find(name);
  // "kind:instance" names a further instance of plugin "kind" (e.g. "lua:allow"), when it allows that.
  if (it == registry().end()) {
    auto colon = name.find(':');
    if (colon != std::string::npos && colon > 0) it = registry().find(name.substr(0, colon));
  }
  return it == registry().end() ? nullptr : &it->second;
}

std::vector<std::string> PluginRegistry::names() {
  std::vector<std::string> out;
  for (auto& [n, f] : registry()) out.push_back(n);
  return out;
}

}  // namespace gw
