#include "gateway/config/config.hpp"

#include <toml++/toml.h>

#include "gateway/config/record.hpp"

namespace gw::config {
namespace {

Endpoint endpoint(const Table& t, std::string_view key, const std::string& text) {
  auto e = Endpoint::parse(text);
  if (!e) t.fail(key, "expected \"host:port\" or \"[v6]:port\" (got \"" + text + "\")");
  return *e;
}

void read_server(const Table& t, ServerConfig& s) {
  t.allow_only_and_go_on({"hostname", "max_connections", "max_message_size", "max_recipients", "command_timeout",
                "data_timeout", "drain_timeout", "threads"});
  s.hostname = t.string("hostname", s.hostname);
  if (s.hostname.empty() || s.hostname.find_first_of(" \t\r\n;") != std::string::npos) t.fail("hostname", "must be a host name");
  auto positive = [&](std::string_view key, std::int64_t def, std::int64_t max) {
    auto v = t.integer(key, def);
    if (v < 1 || v > max) t.fail(key, "must be between 1 and " + std::to_string(max));
    return v;
  };
  s.max_connections = static_cast<std::uint32_t>(positive("max_connections", s.max_connections, 1'000'000));
  s.max_recipients = static_cast<std::uint32_t>(positive("max_recipients", s.max_recipients, 100'000));
  s.max_message_size = t.size("max_message_size", s.max_message_size);
  if (s.max_message_size < 1024) t.fail("max_message_size", "must be at least 1024 bytes");
  s.command_timeout = t.duration("command_timeout", s.command_timeout);
  s.data_timeout = t.duration("data_timeout", s.data_timeout);
  s.drain_timeout = t.duration("drain_timeout", s.drain_timeout);
  auto threads = t.integer("threads", s.threads);
  if (threads < 0 || threads > 256) t.fail("threads", "must be between 0 and 256");
  s.threads = static_cast<unsigned>(threads);
}

ListenerConfig read_listener(const Table& t) {
  t.allow_only_and_go_on({"address", "role", "tls", "require_tls", "require_auth", "proxy_protocol"});
  ListenerConfig l;
  auto addr = t.string("address");
  if (!addr) t.fail("", "a [[listener]] needs an address");
  l.address = endpoint(t, "address", *addr);
  l.role = t.choice("role", {"inbound", "submission"}, "inbound") == "inbound" ? Role::inbound : Role::submission;
  auto tls = t.choice("tls", {"none", "starttls", "implicit"}, "none");
  l.tls = tls == "none" ? ListenerTls::none : tls == "starttls" ? ListenerTls::starttls : ListenerTls::implicit;
  l.require_tls = t.boolean("require_tls", false);
  l.require_auth = t.boolean("require_auth", false);
  l.proxy_protocol = t.boolean("proxy_protocol", false);
  if (l.require_tls && l.tls == ListenerTls::none) t.fail("require_tls", "needs tls = \"starttls\" or \"implicit\"");
  if (l.require_auth && l.tls == ListenerTls::none)
    t.fail("require_auth", "needs tls = \"starttls\" or \"implicit\" (AUTH is only offered over TLS)");
  return l;
}

void read_upstream(const Table& t, UpstreamConfig& u, const std::string& hostname) {
  t.allow_only_and_go_on({"servers", "tls", "xclient", "connect_timeout", "command_timeout", "data_timeout", "helo", "connect_at",
                          "pool_size", "pool_idle_timeout"});
  auto servers = t.strings("servers");
  if (!servers || servers->empty()) t.fail("servers", "at least one upstream server is required");
  for (auto& s : *servers) u.servers.push_back(endpoint(t, "servers", s));
  auto tls = t.choice("tls", {"none", "starttls", "required"}, "none");
  u.tls = tls == "none" ? UpstreamTls::none : tls == "starttls" ? UpstreamTls::starttls : UpstreamTls::required;
  u.xclient = t.boolean("xclient", false);
  u.connect_timeout = t.duration("connect_timeout", u.connect_timeout);
  u.command_timeout = t.duration("command_timeout", u.command_timeout);
  u.data_timeout = t.duration("data_timeout", u.data_timeout);
  u.helo = t.string("helo", hostname);
  u.connect_at_ehlo = t.choice("connect_at", {"ehlo", "mail"}, "ehlo") == "ehlo";
  {
    auto n = t.integer("pool_size", static_cast<std::int64_t>(u.pool_size));
    if (n < 0 || n > 1000) t.fail("pool_size", "must be between 0 and 1000");
    u.pool_size = static_cast<unsigned>(n);
  }
  u.pool_idle_timeout = t.duration("pool_idle_timeout", u.pool_idle_timeout);
  if (u.pool_idle_timeout <= Duration::zero() || u.pool_idle_timeout > std::chrono::seconds(290))
    t.fail("pool_idle_timeout", "must be above 0 and at most 290s (below the upstream's own idle timeout)");
  u.identity = upstream_identity(u, hostname);
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

std::string Config::dump() const {
  auto& ctx = root.context();
  return ctx && ctx->record ? to_toml(*ctx->record) : std::string();
}

namespace {

// Runs one part of the reading; an error in it is kept and the reading goes on with the next part.
template <typename F>
void part(const Table& root, F&& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    root.add_error(e.what());
  }
}

void read_all(Config& c) {
  const Table& root = c.root;
  part(root, [&] {
    root.allow_only_and_go_on({"pipeline", "server", "listener", "tls", "auth", "upstream", "dns", "trusted", "relay",
                     "plugins", "store", "metrics", "log"});
  });

  part(root, [&] {
    c.pipeline = root.strings("pipeline", {});
    for (size_t i = 0; i < c.pipeline.size(); ++i)
      for (size_t j = 0; j < i; ++j)
        if (c.pipeline[i] == c.pipeline[j]) root.fail("pipeline", "plugin \"" + c.pipeline[i] + "\" is listed twice");
  });
  part(root, [&] { read_server(root.table("server"), c.server); });

  std::vector<Table> listeners;
  part(root, [&] { listeners = root.tables("listener"); });
  for (auto& lt : listeners) part(root, [&] { c.listeners.push_back(read_listener(lt)); });
  if (listeners.empty()) part(root, [&] { root.fail("listener", "at least one [[listener]] is required"); });

  part(root, [&] {
    auto t = root.table("tls");
    t.allow_only_and_go_on({"certificate", "private_key"});
    c.tls.certificate = t.string("certificate", "");
    c.tls.private_key = t.string("private_key", "");
    bool wants_tls = false;
    for (auto& l : c.listeners) wants_tls |= l.tls != ListenerTls::none;
    if (wants_tls && (c.tls.certificate.empty() || c.tls.private_key.empty()))
      t.fail("", "a TLS listener needs [tls] certificate and private_key");
  });
  part(root, [&] {
    auto t = root.table("auth");
    t.allow_only_and_go_on({"users_file"});
    c.auth.users_file = t.string("users_file", "");
    bool wants_auth = false;
    for (auto& l : c.listeners) wants_auth |= l.require_auth;
    if (wants_auth && c.auth.users_file.empty()) t.fail("users_file", "require_auth needs [auth] users_file");
    if (!c.auth.users_file.empty()) c.auth.users = load_users_file(c.auth.users_file);
  });

  part(root, [&] {
    auto upstream = root.table("upstream");
    if (!upstream.present()) root.fail("upstream", "an [upstream] table with servers is required");
    read_upstream(upstream, c.upstream, c.server.hostname);
  });

  part(root, [&] {
    auto t = root.table("dns");
    t.allow_only_and_go_on({"nameservers", "timeout"});
    for (auto& s : t.strings("nameservers", {})) {
      auto e = endpoint(t, "nameservers", s);
      boost::system::error_code ec;
      boost::asio::ip::make_address(e.host, ec);
      if (ec) t.fail("nameservers", "a nameserver is an IP address and port, like \"192.0.2.53:53\" (got \"" + s + "\")");
      c.dns.nameservers.push_back(e);
    }
    c.dns.timeout = t.duration("timeout", c.dns.timeout);
    if (c.dns.timeout.count() <= 0) t.fail("timeout", "must be more than 0");
  });
  part(root, [&] {
    auto t = root.table("trusted");
    t.allow_only_and_go_on({"networks"});
    if (t.has("networks")) c.trusted = networks(t, "networks");
    else t.record("networks", std::vector<std::string>{"127.0.0.0/8", "::1/128"});
  });
  part(root, [&] {
    auto t = root.table("relay");
    t.allow_only_and_go_on({"domains"});
    for (auto d : t.strings("domains", {})) {
      for (auto& ch : d) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      if (d.empty() || d.find_first_of(" @,;") != std::string::npos) t.fail("domains", "\"" + d + "\" is not a domain");
      c.relay_domains.push_back(d);
    }
  });
  part(root, [&] {
    auto t = root.table("store");
    t.allow_only_and_go_on({"backend", "path", "redis_url", "max_size"});
    c.store.backend = t.choice("backend", {"embedded", "redis"}, c.store.backend);
    c.store.path = t.string("path", c.store.path);
    c.store.redis_url = t.string("redis_url", c.store.redis_url);
    if (c.store.redis_url.rfind("redis://", 0) != 0 && c.store.redis_url.rfind("unix://", 0) != 0)
      t.fail("redis_url", "expected redis://host:port/db or unix:///path");
    c.store.max_size = t.size("max_size", c.store.max_size);
  });
  part(root, [&] {
    auto t = root.table("metrics");
    t.allow_only_and_go_on({"listen"});
    c.metrics.listen = t.string("listen", c.metrics.listen);
    if (!c.metrics.listen.empty()) endpoint(t, "listen", c.metrics.listen);
  });
  part(root, [&] {
    auto t = root.table("log");
    t.allow_only_and_go_on({"format", "level"});
    c.log.format = t.choice("format", {"text", "json"}, "text") == "text" ? LogFormat::text : LogFormat::json;
    c.log.level = t.choice("level", {"debug", "info", "warn", "error"}, c.log.level);
  });
  // Each plugin validates its own table when the pipeline is built.
}

// Setups that parse but are rarely what the admin meant (--check-config prints them, --strict fails).
void warn_all(const Config& c) {
  const Table& root = c.root;
  if (c.relay_domains.empty() && !c.upstream.xclient) {
    auto listeners = root.tables("listener");
    for (size_t i = 0; i < c.listeners.size() && i < listeners.size(); ++i)
      if (c.listeners[i].role == Role::inbound)
        listeners[i].warn(listeners[i].has("role") ? "role" : "",
                          "inbound listener " + c.listeners[i].address.to_string() +
                              " while relay.domains is empty and upstream.xclient is false: the upstream sees every "
                              "client as the gateway's own address, so an upstream that trusts that address (Postfix "
                              "mynetworks) relays for anyone; list your domains in [relay] domains or set "
                              "upstream.xclient = true");
  }
  auto plugins = root.table("plugins");
  for (auto& name : plugins.keys()) {
    bool used = false;
    for (auto& p : c.pipeline) used |= p == name;
    if (!used) plugins.table(name).warn("", "[plugins." + name + "] is configured but \"" + name + "\" is not in the pipeline");
  }
}

}  // namespace

std::shared_ptr<const Config> load_config(const std::string& path, LoadOptions options) {
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
  auto ctx = std::make_shared<Context>();
  if (options.record) ctx->record = std::make_unique<RecordNode>();
  cfg->root = Table(doc.get(), path, "", ctx, ctx->record.get());
  read_all(*cfg);
  if (ctx->errors.empty()) {
    // warnings look up tables again: never record from here
    Config& c = *cfg;
    Table plain(doc.get(), path, "", ctx, nullptr);
    std::swap(c.root, plain);
    warn_all(c);
    std::swap(c.root, plain);
  }
  if (!options.keep_going) cfg->root.throw_errors();
  return cfg;
}

std::string upstream_identity(const UpstreamConfig& u, const std::string& hostname) {
  std::string k;
  for (auto& s : u.servers) k += s.to_string() + ",";
  k += "|" + u.helo + "|" + hostname + "|" + std::to_string(static_cast<int>(u.tls));
  return k;
}

}  // namespace gw::config
