// Builds one plugin from a TOML snippet the way Pipeline::build does, with an embedded store.
#pragma once
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "gateway/config/config.hpp"
#include "gateway/core/plugin.hpp"
#include "gateway/core/transaction.hpp"
#include "gateway/store/lmdb_store.hpp"
#include "tests/unit/store/store_test_util.hpp"

namespace gw::testing {

struct PluginHarness {
  std::string dir = temp_dir("plugin");
  std::shared_ptr<const config::Config> cfg;
  Services services;
  std::unique_ptr<Plugin> plugin;

  // `body` is appended to a minimal config; throws config::ConfigError like the gateway.
  PluginHarness(const std::string& name, const std::string& body) {
    std::filesystem::create_directories(dir);
    std::string path = dir + "/gw.toml";
    std::ofstream(path) << "pipeline = [\"" << name << "\"]\n[[listener]]\naddress = \"127.0.0.1:2525\"\n"
                        << "[upstream]\nservers = [\"127.0.0.1:10025\"]\n" << body;
    cfg = config::load_config(path);
    store::LmdbStore::Options o;
    o.path = dir + "/state";
    services.store = std::make_shared<store::LmdbStore>(o);
    auto* factory = PluginRegistry::find(name);
    if (!factory) throw std::runtime_error("no plugin " + name);
    config::Table table = cfg->plugin_table(name);
    PluginEnv env{*cfg, name, table, services};
    plugin = (*factory)(env);
  }
  ~PluginHarness() {
    plugin.reset();
    services.store.reset();
    std::filesystem::remove_all(dir);
  }
};

inline Transaction tx_from(const std::string& ip, const std::string& sender) {
  Transaction tx;
  tx.conn.client.address = boost::asio::ip::make_address(ip);
  tx.conn.client.ip = ip;
  tx.conn.id = "test";
  tx.sender = sender;
  tx.has_sender = true;
  return tx;
}

}  // namespace gw::testing
