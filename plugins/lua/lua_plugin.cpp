// The "lua" plugin: [plugins.lua] scripts run as policy hooks (SPEC "Lua policy API").
//
//   [plugins.lua]
//   scripts = ["policies/example.lua"]   # loaded in order; the first verdict decides a stage
//   on_error = "tempfail"                 # "tempfail" (451 4.7.1) | "reject" (550 5.7.1)
//   max_instructions = 1000000            # per hook call
//   max_memory = "64MiB"                  # per Lua state (one per worker thread)
//   max_body_bytes = "1MiB"               # msg:body() returns at most this much of the body
//
// Built again on every reload: a script that does not compile throws ConfigError here, so the reload
// is refused (and --check-config fails) with the script's file:line.
#include <memory>

#include "gateway/core/plugin.hpp"
#include "lua/host.hpp"

namespace gw::plugins {
namespace {

class LuaPlugin : public Plugin {
 public:
  explicit LuaPlugin(const PluginEnv& env) {
    const auto& t = env.table;
    t.allow_only({"scripts", "on_error", "max_instructions", "max_memory", "max_body_bytes"});
    lua::Options o;
    o.scripts = t.strings("scripts").value_or(std::vector<std::string>{});
    if (o.scripts.empty()) {
      std::string msg = "\"" + env.name + "\" is in the pipeline without scripts: it does nothing";
      if (t.present()) t.warn(t.has("scripts") ? "scripts" : "", msg);
      else env.config.root.warn("pipeline", msg + " (set scripts in [plugins." + env.name + "])");
    }
    auto on_error = t.choice("on_error", {"tempfail", "reject"}).value_or("tempfail");
    o.on_error = on_error == "reject" ? Verdict::reject(550, "5.7.1", "Rejected by local policy")
                                      : Verdict::tempfail(451, "4.7.1", "Local policy error, try again later");
    auto max_instr = t.integer("max_instructions").value_or(1000000);
    if (max_instr < 1000 || max_instr > 1'000'000'000'000) t.fail("max_instructions", "must be between 1000 and 1e12");
    o.max_instructions = static_cast<std::uint64_t>(max_instr);
    o.max_memory = t.size("max_memory").value_or(64ull << 20);
    if (o.max_memory < (1ull << 20)) t.fail("max_memory", "must be at least 1MiB");
    o.max_body_bytes = t.size("max_body_bytes").value_or(1ull << 20);
    if (o.max_body_bytes >= o.max_memory) t.fail("max_body_bytes", "must be smaller than max_memory");
    o.store = env.services.store;
    try {
      host_ = std::make_unique<lua::Host>(std::move(o));
    } catch (const lua::LoadError& e) {
      t.fail("scripts", e.what());
    }
    unsigned h = host_->hooks();
    if (h & lua::hook_bit(lua::Hook::connect)) stages_ |= static_cast<unsigned>(Stage::connect);
    if (h & lua::hook_bit(lua::Hook::helo)) stages_ |= static_cast<unsigned>(Stage::helo);
    if (h & lua::hook_bit(lua::Hook::mail_from)) stages_ |= static_cast<unsigned>(Stage::mail);
    if (h & lua::hook_bit(lua::Hook::rcpt_to)) stages_ |= static_cast<unsigned>(Stage::rcpt);
    if (h & lua::hook_bit(lua::Hook::data)) stages_ |= static_cast<unsigned>(Stage::data);
  }

  unsigned stages() const override { return stages_; }

  Task<Verdict> on_connect(Transaction& tx) override { return host_->call(lua::Hook::connect, tx); }
  Task<Verdict> on_helo(Transaction& tx, std::string_view name) override { return host_->call(lua::Hook::helo, tx, name); }
  Task<Verdict> on_mail(Transaction& tx) override { return host_->call(lua::Hook::mail_from, tx, tx.sender); }
  Task<Verdict> on_rcpt(Transaction& tx, const std::string& rcpt) override {
    return host_->call(lua::Hook::rcpt_to, tx, rcpt);
  }
  Task<Verdict> on_data(Transaction& tx) override { return host_->call(lua::Hook::data, tx); }

 private:
  std::unique_ptr<lua::Host> host_;
  unsigned stages_ = 0;
};

GW_REGISTER_PLUGIN("lua", [](const PluginEnv& env) { return std::make_unique<LuaPlugin>(env); });

}  // namespace
}  // namespace gw::plugins
