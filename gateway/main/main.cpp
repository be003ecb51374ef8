// smtp-gateway: command line (README "Command line", smtp-gateway(8)).
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "gateway/core/command.hpp"
#include "gateway/core/pipeline.hpp"
#include "gateway/main/app.hpp"
#include "gateway/main/services.hpp"
#include "gateway/observe/log.hpp"
#include "gateway/tls/tls_context.hpp"

#ifndef GATEWAY_VERSION
#define GATEWAY_VERSION "0.0.0"
#endif

namespace {

void usage(FILE* out) {
  std::fprintf(out,
               "usage: smtp-gateway [--config PATH]            run in the foreground (default etc/smtp-gateway.toml)\n"
               "       smtp-gateway --check-config [--strict] [--config PATH]   validate config, Lua scripts and keys;\n"
               "                                    warnings on stderr, --strict makes them fail (exit 1)\n"
               "       smtp-gateway --dump-config [--config PATH]    print the effective config, defaults included\n"
               "       smtp-gateway --version | --help\n");
  for (auto& u : gw::CommandRegistry::usages()) std::fprintf(out, "       smtp-gateway %s\n", u.c_str());
}

// --check-config and --dump-config: everything a start would load (config, plugins with their Lua
// scripts and keys, TLS files), without opening a socket or the store.
int check_config(const std::string& path, bool strict, bool dump) {
  auto cfg = gw::config::load_config(path, {.record = dump, .keep_going = true});
  boost::asio::io_context io;
  gw::Services services = gw::app::build_services(*cfg, io, true);
  gw::Pipeline::build(*cfg, services);  // throws every error found, the core's included
  gw::tls::make_server_context(*cfg);
  for (auto& w : cfg->warnings()) std::fprintf(stderr, "%s\n", w.c_str());
  if (dump) {
    std::fputs(cfg->dump().c_str(), stdout);
    return 0;
  }
  if (strict && !cfg->warnings().empty()) {
    std::fprintf(stderr, "%s: %zu warning(s), and --strict makes them errors\n", path.c_str(), cfg->warnings().size());
    return 1;
  }
  std::printf("%s: configuration OK (pipeline:", path.c_str());
  for (auto& p : cfg->pipeline) std::printf(" %s", p.c_str());
  std::printf(")\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty()) {
    if (const gw::CommandMain* cmd = gw::CommandRegistry::find(args[0]))
      return (*cmd)(std::vector<std::string>(args.begin() + 1, args.end()));
  }
  std::string path = "etc/smtp-gateway.toml";
  bool check = false, strict = false, dump = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--config" || a == "-c") {
      if (i + 1 >= args.size()) {
        std::fprintf(stderr, "smtp-gateway: %s needs a path\n", a.c_str());
        return 1;
      }
      path = args[++i];
    } else if (a.rfind("--config=", 0) == 0) {
      path = a.substr(9);
    } else if (a == "--check-config") {
      check = true;
    } else if (a == "--strict") {
      strict = true;
    } else if (a == "--dump-config") {
      dump = true;
    } else if (a == "--version") {
      std::printf("smtp-gateway %s\n", GATEWAY_VERSION);
      return 0;
    } else if (a == "--help" || a == "-h") {
      usage(stdout);
      return 0;
    } else {
      std::fprintf(stderr, "smtp-gateway: unknown argument '%s'\n", a.c_str());
      usage(stderr);
      return 1;
    }
  }
  try {
    if (strict && !check) {
      std::fprintf(stderr, "smtp-gateway: --strict goes with --check-config\n");
      return 1;
    }
    if (check || dump) return check_config(path, strict, dump && !check);
    gw::app::App app(path);
    app.init();
    return app.run();
  } catch (const gw::config::ConfigError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "smtp-gateway: %s\n", e.what());
    return 1;
  }
}
