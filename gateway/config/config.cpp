#include "gateway/config/config.hpp"

#include <toml++/toml.h>

namespace gw::config {
namespace {

Endpoint endpoint(const Table& t, std::string_view key, const std::string& text) {
  auto e = Endpoint::parse(text);
  if (!e) t.fail(key, "expected \"host:port\" or \"[v6]:port\" (got \"" + text + "\")");
  return *e;
}

void read_server(const Table& t, ServerConfig& s) {
  t.allow_only({"hostname", "max_connections", "max_message_size", "max_recipients", "command_timeout",
                "data_timeout", "drain_timeout", "threads"});
  if (auto v = t.string("hostname")) {
    if (v->empty() || v->find_first_of(" \t\r\n;") != std::string::npos) t.fail("hostname", "must be a host name");
    s.hostname = *v;
  }
  auto positive = [&](std::string_view key, std::int64_t max) -> std::optional<std::int64_t> {
    auto v = t.integer(key);
    if (v && (*v < 1 || *v > max)) t.fail(key, "must be between 1 and " + std::to_string(max));
    return v;
  };
  if (auto v = positive("max_connections", 1'000'000)) s.max_connections = static_cast<std::uint32_t>(*v);
  if (auto v = positive("max_recipients", 100'000)) s.max_recipients = static_cast<std::uint32_t>(*v);
  if (auto v = t.size("max_message_size")) {
    if (*v < 1024) t.fail("max_message_size", "must be at least 1024 bytes");
    s.max_message_size = *v;
  }
  if (auto v = t.duration("command_timeout")) s.command_timeout = *v;
  if (auto v = t.duration("data_timeout")) s.data_timeout = *v;
  if (auto v = t.duration("drain_timeout")) s.drain_timeout = *v;
  if (auto v = t.integer("threads")) {
    if (*v < 0 || *v > 256) t.fail("threads", "must be between 0 and 256");
    s.threads = static_cast<unsigned>(*v);
  }
}

ListenerConfig read_listener(const Table& t) {
  t.allow_only({"address", "role", "tls", "require_tls", "require_auth", "proxy_protocol"});
  ListenerConfig l;
  auto addr = t.string("address");
  if (!addr) t.fail("", "a [[listener]] needs an address");
  l.address = endpoint(t, "address", *addr);
  if (auto v = t.choice("role", {"inbound", "submission"})) l.role = *v == "inbound" ? Role::inbound : Role::submission;
  if (auto v = t.choice("tls", {"none", "starttls", "implicit"}))
    l.tls = *v == "none" ? ListenerTls::none : *v == "starttls" ? ListenerTls::starttls : ListenerTls::implicit;
  l.require_tls = t.boolean("require_tls").value_or(false);
  l.require_auth = t.boolean("require_auth").value_or(false);
  l.proxy_protocol = t.boolean("proxy_protocol").value_or(false);
  if (l.require_tls && l.tls == ListenerTls::none) t.fail("require_tls", "needs tls = \"starttls\" or \"implicit\"");
  if (l.require_auth && l.tls == ListenerTls::none)
    t.fail("require_auth", "needs tls = \"starttls\" or \"implicit\" (AUTH is only offered over TLS)");
  return l;
}

void read_upstream(const Table& t, UpstreamConfig& u) {
  t.allow_only({"servers", "tls", "xclient", "connect_timeout", "command_timeout", "data_timeout", "helo", "connect_at",
                "pool_size", "pool_idle_timeout"});
  auto servers = t.strings("servers");
  if (!servers || servers->empty()) t.fail("servers", "at least one upstream server is required");
  for (auto& s : *servers) u.servers.push_back(endpoint(t, "servers", s));
  if (auto v = t.choice("tls", {"none", "starttls", "required"}))
    u.tls = *v == "none" ? UpstreamTls::none : *v == "starttls" ? UpstreamTls::starttls : UpstreamTls::required;
  u.xclient = t.boolean("xclient").value_or(false);
  if (auto v = t.duration("connect_timeout")) u.connect_timeout = *v;
  if (auto v = t.duration("command_timeout")) u.command_timeout = *v;
  if (auto v = t.duration("data_timeout")) u.data_timeout = *v;
  if (auto v = t.string("helo")) u.helo = *v;
  if (auto v = t.choice("connect_at", {"ehlo", "mail"})) u.connect_at_ehlo = *v == "ehlo";
  if (auto v = t.integer("pool_size")) {
    if (*v < 0 || *v > 1000) t.fail("pool_size", "must be between 0 and 1000");
    u.pool_size = static_cast<unsigned>(*v);
  }
  if (auto v = t.duration("pool_idle_timeout")) {
    if (*v <= Duration::zero() || *v > std::chrono::seconds(290))
      t.fail("pool_idle_timeout", "must be above 0 and at most 290s (below the upstream's own idle timeout)");
    u.pool_idle_timeout = *v;
  }
}

std::vector<Network> networks(const Table& t, std::string_view key) {
  std::vector<Network> out;
  for (auto& s : t.strings(key).value_or(std::vector<std::string>{})) {
    auto n = Network::parse(s);
    if (!n) t.fail(key, "\"" + s + "\" is not an IP network (expected e.g. \"192.0.2.0/24\" or \"2001:db8::/32\")");
    out.push_back(*n);
  }
  return out;
}

}  // namespace

Table Config::plugin_table(const std::string& name) const { return root.table("plugins").table(name); }

std::shared_ptr<const Config> load_config(const std::string& path) {
  auto doc = std::make_shared<toml::table>();
  try {
    *doc = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    const auto& src = e.source();
    std::string where = path + ":" + std::to_string(src.begin.line) + ":" + std::to_string(src.begin.column);
    if (!src.begin) where = path + ":1:1";
    throw ConfigError(where + ": " + std::string(e.description()));
  }
  auto cfg = std::make_shared<Config>();
  cfg->path = path;
  cfg->document = doc;
  cfg->root = Table(doc.get(), path, "");
  const Table& root = cfg->root;
  root.allow_only({"pipeline", "server", "listener", "tls", "auth", "upstream", "dns", "trusted", "relay",
                   "plugins", "store", "metrics", "log"});

  cfg->pipeline = root.strings("pipeline").value_or(std::vector<std::string>{});
  for (size_t i = 0; i < cfg->pipeline.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (cfg->pipeline[i] == cfg->pipeline[j]) root.fail("pipeline", "plugin \"" + cfg->pipeline[i] + "\" is listed twice");

  read_server(root.table("server"), cfg->server);

  for (auto& lt : root.tables("listener")) cfg->listeners.push_back(read_listener(lt));
  if (cfg->listeners.empty()) root.fail("listener", "at least one [[listener]] is required");

  {
    auto t = root.table("tls");
    t.allow_only({"certificate", "private_key"});
    cfg->tls.certificate = t.string("certificate").value_or("");
    cfg->tls.private_key = t.string("private_key").value_or("");
    bool wants_tls = false;
    for (auto& l : cfg->listeners) wants_tls |= l.tls != ListenerTls::none;
    if (wants_tls && (cfg->tls.certificate.empty() || cfg->tls.private_key.empty()))
      t.fail("", "a TLS listener needs [tls] certificate and private_key");
  }
  {
    auto t = root.table("auth");
    t.allow_only({"users_file"});
    cfg->auth.users_file = t.string("users_file").value_or("");
    bool wants_auth = false;
    for (auto& l : cfg->listeners) wants_auth |= l.require_auth;
    if (wants_auth && cfg->auth.users_file.empty()) t.fail("users_file", "require_auth needs [auth] users_file");
    if (!cfg->auth.users_file.empty()) cfg->auth.users = load_users_file(cfg->auth.users_file);
  }

  auto upstream = root.table("upstream");
  if (!upstream.present()) root.fail("upstream", "an [upstream] table with servers is required");
  read_upstream(upstream, cfg->upstream);
  if (cfg->upstream.helo.empty()) cfg->upstream.helo = cfg->server.hostname;

  {
    auto t = root.table("dns");
    t.allow_only({"nameservers", "timeout"});
    for (auto& s : t.strings("nameservers").value_or(std::vector<std::string>{})) {
      auto e = endpoint(t, "nameservers", s);
      boost::system::error_code ec;
      boost::asio::ip::make_address(e.host, ec);
      if (ec) t.fail("nameservers", "a nameserver is an IP address and port, like \"192.0.2.53:53\" (got \"" + s + "\")");
      cfg->dns.nameservers.push_back(e);
    }
    if (auto v = t.duration("timeout")) {
      if (v->count() <= 0) t.fail("timeout", "must be more than 0");
      cfg->dns.timeout = *v;
    }
  }
  {
    auto t = root.table("trusted");
    t.allow_only({"networks"});
    if (t.has("networks")) cfg->trusted = networks(t, "networks");
  }
  {
    auto t = root.table("relay");
    t.allow_only({"domains"});
    for (auto d : t.strings("domains").value_or(std::vector<std::string>{})) {
      for (auto& c : d) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (d.empty() || d.find_first_of(" @,;") != std::string::npos) t.fail("domains", "\"" + d + "\" is not a domain");
      cfg->relay_domains.push_back(d);
    }
  }
  {
    auto t = root.table("store");
    t.allow_only({"backend", "path", "redis_url", "max_size"});
    if (auto v = t.choice("backend", {"embedded", "redis"})) cfg->store.backend = *v;
    if (auto v = t.string("path")) cfg->store.path = *v;
    if (auto v = t.string("redis_url")) {
      if (v->rfind("redis://", 0) != 0 && v->rfind("unix://", 0) != 0) t.fail("redis_url", "expected redis://host:port/db or unix:///path");
      cfg->store.redis_url = *v;
    }
    if (auto v = t.size("max_size")) cfg->store.max_size = *v;
  }
  {
    auto t = root.table("metrics");
    t.allow_only({"listen"});
    if (auto v = t.string("listen")) {
      if (!v->empty()) endpoint(t, "listen", *v);
      cfg->metrics.listen = *v;
    }
  }
  {
    auto t = root.table("log");
    t.allow_only({"format", "level"});
    if (auto v = t.choice("format", {"text", "json"})) cfg->log.format = *v == "text" ? LogFormat::text : LogFormat::json;
    if (auto v = t.choice("level", {"debug", "info", "warn", "error"})) cfg->log.level = *v;
  }
  {
    auto plugins = root.table("plugins");
    (void)plugins;  // each plugin validates its own table; unknown plugin tables are checked by the pipeline
  }
  return cfg;
}

}  // namespace gw::config
