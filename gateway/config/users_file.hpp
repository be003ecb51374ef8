// [auth] users_file: one `user:{SCHEME}hash` or `user:hash` a line (crypt(3) strings: yescrypt `$y$`,
// SHA512-CRYPT `$6$`, SHA256-CRYPT `$5$`, bcrypt `$2b$`/`$2y$`), `#` comments, blank lines ignored.
// Fields after the hash (Dovecot passwd-file style `user:hash:uid:gid:...`) are ignored.
#pragma once
#include <string>
#include <unordered_map>

namespace gw::config {

using UserHashes = std::unordered_map<std::string, std::string>;  // user -> crypt(3) string

// Throws ConfigError "PATH:LINE: message" for a bad line, "PATH: message" for an unreadable file.
UserHashes load_users_file(const std::string& path);

}  // namespace gw::config
