// The whole configuration as one immutable snapshot. load_config() parses and validates the TOML file
// (README "Configuration", etc/smtp-gateway.toml); a reload builds a new snapshot and swaps it, sessions keep the one they started with.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gateway/config/network.hpp"
#include "gateway/config/table.hpp"
#include "gateway/config/units.hpp"
#include "gateway/config/users_file.hpp"

namespace gw::config {

enum class Role { inbound, submission };
enum class ListenerTls { none, starttls, implicit };
enum class UpstreamTls { none, starttls, required };
enum class LogFormat { text, json };

struct ServerConfig {
  std::string hostname = "localhost";
  std::uint32_t max_connections = 10000;
  std::uint64_t max_message_size = 25ull * 1024 * 1024;
  std::uint32_t max_recipients = 100;
  Duration command_timeout = std::chrono::minutes(5);
  Duration data_timeout = std::chrono::minutes(10);
  Duration drain_timeout = std::chrono::seconds(30);
  unsigned threads = 0;  // 0 = one per core
};

struct ListenerConfig {
  Endpoint address;
  Role role = Role::inbound;
  ListenerTls tls = ListenerTls::none;
  bool require_tls = false;
  bool require_auth = false;
  bool proxy_protocol = false;
};

struct TlsConfig {
  std::string certificate;
  std::string private_key;
};

struct AuthConfig {
  std::string users_file;
  UserHashes users;  // loaded from users_file with the config (so a reload re-reads it)
};

struct UpstreamConfig {
  std::vector<Endpoint> servers;
  UpstreamTls tls = UpstreamTls::none;
  bool xclient = false;
  Duration connect_timeout = std::chrono::seconds(10);
  Duration command_timeout = std::chrono::minutes(5);  // each reply but the one after the message
  Duration data_timeout = std::chrono::minutes(10);    // the reply after the message
  std::string helo;                                    // name we give in EHLO; default server.hostname
  bool connect_at_ehlo = true;                         // connect_at = "ehlo" (default: warm the pool at EHLO) | "mail"
  unsigned pool_size = 8;                              // ready upstream connections kept, per process; 0 = none
  Duration pool_idle_timeout = std::chrono::seconds(60);  // a pooled connection idle this long is closed
  // Servers, tls, helo and the hostname in one string (upstream_identity), set at load: a pooled
  // upstream connection is reused only under the same identity (gateway/upstream/pool.cpp).
  std::string identity;
};

std::string upstream_identity(const UpstreamConfig& u, const std::string& hostname);

struct DnsConfig {
  std::vector<Endpoint> nameservers;  // empty = /etc/resolv.conf
  Duration timeout = std::chrono::seconds(5);
};

struct StoreConfig {
  std::string backend = "embedded";
  std::string path = "var/state";
  std::string redis_url = "redis://127.0.0.1:6379/0";
  std::uint64_t max_size = 256ull * 1024 * 1024;  // embedded: the map size
};

struct MetricsConfig {
  std::string listen = "127.0.0.1:9025";
};

struct LogConfig {
  LogFormat format = LogFormat::text;
  std::string level = "info";
};

struct Config {
  std::string path;
  std::vector<std::string> pipeline;
  ServerConfig server;
  std::vector<ListenerConfig> listeners;
  TlsConfig tls;
  AuthConfig auth;
  UpstreamConfig upstream;
  DnsConfig dns;
  std::vector<Network> trusted = {*Network::parse("127.0.0.0/8"), *Network::parse("::1/128")};
  std::vector<std::string> relay_domains;
  StoreConfig store;
  MetricsConfig metrics;
  LogConfig log;

  // [plugins.NAME] for a plugin to read its own keys; an absent table when the file has none.
  Table plugin_table(const std::string& name) const;

  std::shared_ptr<const void> document;  // keeps the parsed toml::table alive for the Table views
  Table root;

  // Warnings found while reading (the core's and the plugins'): "PATH:LINE:COL: warning: text".
  const std::vector<std::string>& warnings() const { return root.context()->warnings; }
  // --dump-config: the effective config read so far (the core's keys, and the plugins' once built).
  std::string dump() const;
};

struct LoadOptions {
  bool record = false;     // record every key read with its effective value (--dump-config)
  bool keep_going = false;  // return despite errors, kept in the context (the caller throws them later)
};

// Parses and validates `path`. Throws ConfigError with one "PATH:LINE:COL: message" line per error
// found (reading goes on after an error where it can, so the admin sees them all at once).
std::shared_ptr<const Config> load_config(const std::string& path, LoadOptions options = {});

}  // namespace gw::config
