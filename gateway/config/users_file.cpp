#include "gateway/config/users_file.hpp"

#include <crypt.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "gateway/config/table.hpp"

namespace gw::config {

namespace {
// Dovecot-style scheme prefixes whose hash is a crypt(3) string.
bool crypt_scheme(const std::string& s) {
  static const char* known[] = {"CRYPT", "SHA512-CRYPT", "SHA256-CRYPT", "BLF-CRYPT", "BCRYPT", "YESCRYPT", "MD5-CRYPT"};
  for (auto* k : known)
    if (strcasecmp(s.c_str(), k) == 0) return true;
  return false;
}
}  // namespace

UserHashes load_users_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError(path + ": cannot read users_file: " + std::strerror(errno));
  UserHashes users;
  std::string line;
  unsigned n = 0;
  auto fail = [&](const std::string& msg) { throw ConfigError(path + ":" + std::to_string(n) + ": " + msg); };
  while (std::getline(in, line)) {
    ++n;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    size_t b = line.find_first_not_of(" \t");
    if (b == std::string::npos || line[b] == '#') continue;
    size_t colon = line.find(':');
    if (colon == std::string::npos) fail("expected user:hash");
    std::string user = line.substr(0, colon);
    if (user.empty()) fail("empty user name");
    for (unsigned char c : user)
      if (c <= ' ' || c == 127) fail("user name holds whitespace or a control character");
    std::string hash = line.substr(colon + 1);
    if (auto c2 = hash.find(':'); c2 != std::string::npos) hash.resize(c2);
    if (!hash.empty() && hash.front() == '{') {
      auto close = hash.find('}');
      if (close == std::string::npos) fail("unterminated {SCHEME}");
      std::string scheme = hash.substr(1, close - 1);
      if (!crypt_scheme(scheme)) fail("unsupported scheme {" + scheme + "} (use a crypt(3) hash: yescrypt, SHA512-CRYPT, bcrypt)");
      hash.erase(0, close + 1);
    }
    if (hash.size() < 4 || hash.front() != '$') fail("not a crypt(3) hash (expected $y$, $6$, $5$ or $2b$...)");
    int check = crypt_checksalt(hash.c_str());
    if (check == CRYPT_SALT_INVALID || check == CRYPT_SALT_METHOD_DISABLED)
      fail("hash method not supported by this system's crypt(3)");
    if (!users.emplace(user, hash).second) fail("user \"" + user + "\" is listed twice");
  }
  return users;
}

}  // namespace gw::config
