#include "gateway/core/pipeline.hpp"

#include "gateway/observe/log.hpp"
#include "gateway/observe/metrics.hpp"

namespace gw {

std::shared_ptr<Pipeline> Pipeline::build(const config::Config& config, Services& services) {
  auto p = std::make_shared<Pipeline>();
  auto known = PluginRegistry::names();
  auto list = [&] {
    std::string s;
    for (auto& n : known) s += (s.empty() ? "" : ", ") + n;
    return s;
  };
  for (auto& name : config.pipeline) {
    // A plugin's error is kept and the next plugin is built: the admin sees every error at once.
    try {
      const PluginFactory* factory = PluginRegistry::find(name);
      if (!factory) config.root.fail("pipeline", "unknown plugin \"" + name + "\" (known: " + list() + ")");
      config::Table table = config.plugin_table(name);
      PluginEnv env{config, name, table, services};
      auto plugin = (*factory)(env);
      unsigned st = plugin->stages();
      p->stages_ |= st;
      Entry e{name, std::move(plugin), st, {}};
      const char* kinds[] = {"accept", "reject", "tempfail"};
      for (size_t i = 0; i < 3; ++i)
        e.verdicts[i] = &observe::Metrics::instance().counter("smtpgw_plugin_verdicts_total", "Verdicts other than continue, by plugin",
                                                              "plugin=\"" + name + "\",verdict=\"" + kinds[i] + "\"");
      p->plugins_.push_back(std::move(e));
    } catch (const config::ConfigError& err) {
      config.root.add_error(err.what());
    }
  }
  // A [plugins.X] table for a plugin that does not exist is a typo the admin wants to hear about
  // ("kind:instance" tables of the pipeline's instances are fine).
  auto plugins = config.root.table("plugins");
  known.insert(known.end(), config.pipeline.begin(), config.pipeline.end());
  try {
    plugins.allow_only(known);
  } catch (const config::ConfigError& e) {
    config.root.add_error(e.what());
  }
  config.root.throw_errors();
  return p;
}

std::vector<std::string> Pipeline::names() const {
  std::vector<std::string> out;
  for (auto& e : plugins_) out.push_back(e.name);
  return out;
}

Task<Verdict> Pipeline::run(Stage stage, Transaction& tx, std::string_view arg) const {
  const unsigned bit = static_cast<unsigned>(stage);
  if (!(stages_ & bit)) co_return Verdict::next();
  for (auto& e : plugins_) {
    if (!(e.stages & bit)) continue;
    Verdict v;
    switch (stage) {
      case Stage::connect: v = co_await e.plugin->on_connect(tx); break;
      case Stage::helo: v = co_await e.plugin->on_helo(tx, arg); break;
      case Stage::mail: v = co_await e.plugin->on_mail(tx); break;
      case Stage::rcpt: v = co_await e.plugin->on_rcpt(tx, std::string(arg)); break;
      case Stage::data: v = co_await e.plugin->on_data(tx); break;
      case Stage::reset:
      case Stage::disconnect: co_return Verdict::next();  // notifications: see notify()
    }
    if (v.kind != Verdict::Kind::proceed) {
      tx.verdicts.emplace_back(e.name, std::string(stage_name(stage)) + ":" + v.kind_name());
      if (v.refuses()) {  // for the transaction log line: who refused, and the reply
        tx.facts["refused_by"] = e.name;
        tx.facts["refused_reply"] = std::to_string(v.code) + " " + v.enhanced + " " + v.text;
      }
      const size_t k = v.kind == Verdict::Kind::accept ? 0 : v.kind == Verdict::Kind::reject ? 1 : 2;
      e.verdicts[k]->inc();
    }
    if (v.stops()) co_return v;
  }
  co_return Verdict::next();
}

Task<void> Pipeline::notify(Stage stage, Transaction& tx) const {
  const unsigned bit = static_cast<unsigned>(stage);
  if (!(stages_ & bit)) co_return;
  for (auto& e : plugins_) {
    if (!(e.stages & bit)) continue;
    std::string error;
    try {
      if (stage == Stage::reset) co_await e.plugin->on_reset(tx);
      else if (stage == Stage::disconnect) co_await e.plugin->on_disconnect(tx);
    } catch (const std::exception& ex) {
      error = ex.what();
    }
    if (!error.empty())
      log::warn("plugin_error", {{"session", tx.conn.id}, {"plugin", e.name}, {"stage", stage_name(stage)}, {"error", error}});
  }
}

}  // namespace gw
