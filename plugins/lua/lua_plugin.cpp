// The "lua" plugin: [plugins.lua] scripts run as policy hooks (docs/lua.md). Further instances,
// "lua:NAME" in the pipeline, are configured in [plugins."lua:NAME"] with the same keys; each has its
// own scripts, bounds, Lua states and per-session tables.
//
//   [plugins.lua]
//   scripts = ["policies/example.lua"]   # loaded in order; the first verdict decides a stage
//   on_error = "tempfail"                 # "tempfail" (451 4.7.1) | "reject" (550 5.7.1)
//   max_instructions = 1000000            # per hook call
//   max_memory = "64MiB"                  # per Lua state (one per worker thread)
//   max_body_bytes = "1MiB"               # msg:body() returns at most this much of the body
//   max_dns_lookups = 10                  # gateway.dns.* per hook call
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
    t.allow_only({"scripts", "on_error", "max_instructions", "max_memory", "max_body_bytes", "max_dns_lookups"});
    lua::Options o;
    o.instance = env.name;
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
    auto max_dns = t.integer("max_dns_lookups").value_or(10);
    if (max_dns < 0 || max_dns > 1000) t.fail("max_dns_lookups", "must be between 0 and 1000");
    o.max_dns_lookups = static_cast<std::uint64_t>(max_dns);
    o.store = env.services.store;
    o.resolver = env.services.resolver;
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
    // tx.data ends with each transaction, tx.session_data (and on_disconnect) with the session
    stages_ |= Stage::reset | Stage::disconnect;
  }

  unsigned stages() const override { return stages_; }

  Task<Verdict> on_connect(Transaction& tx) override { return host_->call(lua::Hook::connect, tx); }
  Task<Verdict> on_helo(Transaction& tx, std::string_view name) override { return host_->call(lua::Hook::helo, tx, name); }
  Task<Verdict> on_mail(Transaction& tx) override { return host_->call(lua::Hook::mail_from, tx, tx.sender); }
  Task<Verdict> on_rcpt(Transaction& tx, const std::string& rcpt) override {
    return host_->call(lua::Hook::rcpt_to, tx, rcpt);
  }
  Task<Verdict> on_data(Transaction& tx) override { return host_->call(lua::Hook::data, tx); }
  Task<void> on_reset(Transaction& tx) override {
    host_->end_transaction(tx);
    co_return;
  }
  Task<void> on_disconnect(Transaction& tx) override { return host_->end_session(tx); }

 private:
  std::unique_ptr<lua::Host> host_;
  unsigned stages_ = 0;
};

GW_REGISTER_PLUGIN("lua", [](const PluginEnv& env) { return std::make_unique<LuaPlugin>(env); });

}  // namespace
}  // namespace gw::plugins
