// `smtp-gateway dkim-keygen --domain D --selector S [--algorithm rsa-sha256|ed25519-sha256] [--bits N] --out DIR`
// writes DIR/D.S.key (PKCS#8 PEM, mode 0600) and prints the DNS TXT record to publish.
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "gateway/core/command.hpp"
#include "plugins/dkim_sign/signer.hpp"

namespace gw::dkim {
namespace {

const char* kUsage = "dkim-keygen --domain D --selector S [--algorithm rsa-sha256|ed25519-sha256] [--bits N] --out DIR";

int keygen_main(const std::vector<std::string>& args) {
  std::string domain, selector, out, algorithm = "rsa-sha256";
  int bits = 2048;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](std::string& dst) {
      if (i + 1 >= args.size()) return false;
      dst = args[++i];
      return true;
    };
    std::string v;
    bool ok = true;
    if (a == "--domain") ok = value(domain);
    else if (a == "--selector") ok = value(selector);
    else if (a == "--out") ok = value(out);
    else if (a == "--algorithm") ok = value(algorithm);
    else if (a == "--bits") {
      ok = value(v);
      if (ok) {
        char* end = nullptr;
        long b = std::strtol(v.c_str(), &end, 10);
        if (!end || *end || b < 1024 || b > 8192) {
          std::fprintf(stderr, "dkim-keygen: --bits must be a number from 1024 to 8192 (2048 recommended)\n");
          return 1;
        }
        bits = static_cast<int>(b);
      }
    } else if (a == "--help" || a == "-h") {
      std::printf("usage: smtp-gateway %s\n", kUsage);
      return 0;
    } else {
      std::fprintf(stderr, "dkim-keygen: unknown argument '%s'\nusage: smtp-gateway %s\n", a.c_str(), kUsage);
      return 1;
    }
    if (!ok) {
      std::fprintf(stderr, "dkim-keygen: %s needs a value\n", a.c_str());
      return 1;
    }
  }
  if (domain.empty() || selector.empty() || out.empty()) {
    std::fprintf(stderr, "dkim-keygen: --domain, --selector and --out are required\nusage: smtp-gateway %s\n", kUsage);
    return 1;
  }
  if (algorithm != "rsa-sha256" && algorithm != "ed25519-sha256") {
    std::fprintf(stderr, "dkim-keygen: --algorithm must be rsa-sha256 or ed25519-sha256\n");
    return 1;
  }
  for (char c : domain + selector)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_')) {
      std::fprintf(stderr, "dkim-keygen: domain and selector may hold letters, digits, '-', '_' and '.' only\n");
      return 1;
    }
  Algorithm alg = algorithm == "ed25519-sha256" ? Algorithm::ed25519_sha256 : Algorithm::rsa_sha256;
  GeneratedKey k;
  try {
    k = generate_key(alg, bits);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dkim-keygen: %s\n", e.what());
    return 1;
  }
  std::string path = out + "/" + domain + "." + selector + ".key";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0) {
    std::fprintf(stderr, "dkim-keygen: cannot create %s: %s\n", path.c_str(), std::strerror(errno));
    return 1;
  }
  size_t done = 0;
  while (done < k.pem.size()) {
    ssize_t n = ::write(fd, k.pem.data() + done, k.pem.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      std::fprintf(stderr, "dkim-keygen: cannot write %s: %s\n", path.c_str(), std::strerror(errno));
      ::close(fd);
      ::unlink(path.c_str());
      return 1;
    }
    done += static_cast<size_t>(n);
  }
  if (::close(fd) != 0) {
    std::fprintf(stderr, "dkim-keygen: cannot write %s: %s\n", path.c_str(), std::strerror(errno));
    return 1;
  }
  std::fprintf(stderr, "dkim-keygen: wrote %s (%s); publish this TXT record:\n", path.c_str(), algorithm.c_str());
  // zone-file syntax: character-strings of at most 255 octets
  std::string rec = selector + "._domainkey." + domain + ". IN TXT (";
  for (size_t i = 0; i < k.txt.size(); i += 255) rec += " \"" + k.txt.substr(i, 255) + "\"";
  rec += " )";
  std::printf("%s\n", rec.c_str());
  return 0;
}

}  // namespace
}  // namespace gw::dkim

GW_REGISTER_COMMAND("dkim-keygen", gw::dkim::kUsage, gw::dkim::keygen_main);
