// The config loader: any file gives a Config or a ConfigError, never a crash or another exception.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "gateway/config/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string path = "/tmp/fuzz-config-" + std::to_string(getpid()) + ".toml";
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  try {
    auto cfg = gw::config::load_config(path);
    for (auto& name : cfg->pipeline) (void)cfg->plugin_table(name);
  } catch (const gw::config::ConfigError& e) {
    std::string msg = e.what();
    if (msg.rfind(path + ":", 0) != 0) std::abort();  // every error names PATH:LINE:COL
  }
  return 0;
}
