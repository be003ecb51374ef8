// SMTP command lines and paths: no crash, and an accepted path never carries CR, LF or NUL.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "gateway/smtp/parser.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view line(reinterpret_cast<const char*>(data), size);
  auto cmd = gw::smtp::parse_command(line);
  for (bool null_ok : {true, false}) {
    auto r = gw::smtp::parse_path(cmd.arg, null_ok);
    if (r.path) {
      for (char c : r.path->address)
        if (c == '\r' || c == '\n' || c == '\0') std::abort();
      if (!null_ok && r.path->address.empty()) std::abort();
    }
  }
  gw::smtp::valid_helo(line);
  gw::smtp::valid_domain(line, true);
  return 0;
}
