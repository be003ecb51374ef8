// The plugin interface: one object per plugin per config snapshot, one coroutine hook per SMTP stage.
// A plugin registers itself by name with GW_REGISTER_PLUGIN; `pipeline = [...]` picks and orders them.
//
// Hooks run on the session's thread. A hook that waits (DNS, store, a worker pool) co_awaits and never
// blocks the thread. A hook returns Verdict::next() to let the next plugin run, accept() to end the
// stage, reject()/tempfail() to answer the client. Effects go on the Transaction.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "gateway/config/config.hpp"
#include "gateway/core/transaction.hpp"
#include "gateway/core/verdict.hpp"

namespace gw {

namespace dns { class Resolver; }
namespace store { class Store; }

// Long-lived services shared by all plugins of all snapshots; a null pointer is a service not built.
struct Services {
  std::shared_ptr<dns::Resolver> resolver;
  std::shared_ptr<store::Store> store;
};

// connect..data run as a pipeline that a verdict can stop. reset and disconnect are notifications:
// every plugin that hooks them hears them, in pipeline order, and cannot answer the client.
enum class Stage : unsigned { connect = 1, helo = 2, mail = 4, rcpt = 8, data = 16, reset = 32, disconnect = 64 };
constexpr unsigned operator|(Stage a, Stage b) { return static_cast<unsigned>(a) | static_cast<unsigned>(b); }
constexpr unsigned operator|(unsigned a, Stage b) { return a | static_cast<unsigned>(b); }
const char* stage_name(Stage s);

template <typename T>
using Task = boost::asio::awaitable<T>;

class Plugin {
 public:
  virtual ~Plugin() = default;
  // Bit set of the Stage values this plugin has hooks for; the pipeline skips the others.
  virtual unsigned stages() const = 0;

  virtual Task<Verdict> on_connect(Transaction& tx);
  virtual Task<Verdict> on_helo(Transaction& tx, std::string_view name);
  virtual Task<Verdict> on_mail(Transaction& tx);                              // tx.sender is set
  virtual Task<Verdict> on_rcpt(Transaction& tx, const std::string& recipient);  // not yet in tx.recipients
  virtual Task<Verdict> on_data(Transaction& tx);                              // tx.message is complete
  // The transaction in tx ends (delivered, refused, RSET, aborted); tx still holds it. Runs before
  // tx.reset(), for every transaction that got as far as MAIL.
  virtual Task<void> on_reset(Transaction& tx);
  // Once, when the client session ends (QUIT, timeout, lost client, refused connection).
  virtual Task<void> on_disconnect(Transaction& tx);
};

struct PluginEnv {
  const config::Config& config;
  const std::string& name;     // the pipeline entry, e.g. "lua" or "lua:allow" (instance of "lua")
  const config::Table& table;  // [plugins.NAME]; may be absent
  Services& services;
};

using PluginFactory = std::function<std::unique_ptr<Plugin>(const PluginEnv&)>;

class PluginRegistry {
 public:
  static bool add(const std::string& name, PluginFactory factory);
  static const PluginFactory* find(const std::string& name);
  static std::vector<std::string> names();
};

#define GW_PLUGIN_CONCAT2(a, b) a##b
#define GW_PLUGIN_CONCAT(a, b) GW_PLUGIN_CONCAT2(a, b)
#define GW_REGISTER_PLUGIN(NAME, FACTORY) \
  static const bool GW_PLUGIN_CONCAT(gw_plugin_registered_, __LINE__) = ::gw::PluginRegistry::add(NAME, FACTORY)

}  // namespace gw
