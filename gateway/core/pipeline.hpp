// The ordered plugins of one config snapshot and the one place that runs a stage through them.
#pragma once
#include <array>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/core/plugin.hpp"
#include "gateway/observe/metrics.hpp"

namespace gw {

class Pipeline {
 public:
  // Instantiates every plugin named in config.pipeline. Throws config::ConfigError for an unknown
  // name, a [plugins.X] table of a plugin that does not exist, or a plugin's own config error.
  static std::shared_ptr<Pipeline> build(const config::Config& config, Services& services);

  // Runs `stage` through the plugins in order until one stops it. Records each verdict other than
  // "continue" in tx.verdicts. `arg` is the HELO name or the recipient for those stages.
  Task<Verdict> run(Stage stage, Transaction& tx, std::string_view arg = {}) const;
  // Tells every plugin hooking `stage` (Stage::reset or Stage::disconnect), in order; an exception
  // from one is logged and the others still hear it.
  Task<void> notify(Stage stage, Transaction& tx) const;

  bool empty() const { return plugins_.empty(); }
  // Whether any plugin hooks `stage`: callers skip run() (and its coroutine frame) when none does.
  bool has(Stage stage) const { return stages_ & static_cast<unsigned>(stage); }
  std::vector<std::string> names() const;

 private:
  struct Entry {
    std::string name;
    std::unique_ptr<Plugin> plugin;
    unsigned stages;
    // smtpgw_plugin_verdicts_total{plugin,verdict} for accept, reject, tempfail: resolved at build
    std::array<observe::Counter*, 3> verdicts{};
  };
  std::vector<Entry> plugins_;
  unsigned stages_ = 0;
};

// A config snapshot with its pipeline; swapped whole on reload.
struct Runtime {
  std::shared_ptr<const config::Config> config;
  std::shared_ptr<const Pipeline> pipeline;
};

}  // namespace gw
