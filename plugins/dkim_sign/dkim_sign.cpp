// dkim_sign: signs outbound mail (trusted network or authenticated client) whose From domain has keys
// in [[plugins.dkim_sign.keys]], one DKIM-Signature per matching key. Runs last in the pipeline so the
// signature covers the final header block the upstream receives (tx.final_headers + the message).
#include <sys/stat.h>

#include <cctype>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "gateway/core/plugin.hpp"
#include "gateway/observe/log.hpp"
#include "gateway/observe/metrics.hpp"
#include "plugins/dkim_sign/signer.hpp"

namespace gw::dkim {
namespace {

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

// The domain of the first address of a From value ("Name <a@b>", "a@b (c)", "a@b, c@d"), lower case.
std::string from_domain(std::string_view v) {
  // skip quoted strings and comments to find the first address
  std::string addr;
  size_t lt = std::string_view::npos;
  bool quoted = false;
  int depth = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    char c = v[i];
    if (quoted) {
      if (c == '\\') ++i;
      else if (c == '"') quoted = false;
      continue;
    }
    if (depth > 0) {
      if (c == '\\') ++i;
      else if (c == '(') ++depth;
      else if (c == ')') --depth;
      continue;
    }
    if (c == '"') quoted = true;
    else if (c == '(') depth = 1;
    else if (c == '<') { lt = i; break; }
    else if (c == ',' || c == ';') break;
    else addr += c;
  }
  if (lt != std::string_view::npos) {
    size_t gt = v.find('>', lt);
    addr = std::string(v.substr(lt + 1, gt == std::string_view::npos ? std::string_view::npos : gt - lt - 1));
  }
  size_t at = addr.rfind('@');
  if (at == std::string::npos) return {};
  std::string d = addr.substr(at + 1);
  while (!d.empty() && (d.back() == ' ' || d.back() == '\t' || d.back() == '.')) d.pop_back();
  size_t b = 0;
  while (b < d.size() && (d[b] == ' ' || d[b] == '\t')) ++b;
  return lower(d.substr(b));
}

namespace {

class DkimSign : public Plugin {
 public:
  explicit DkimSign(const PluginEnv& env)
      : hostname_(env.config.server.hostname),
        signed_rsa_(observe::Metrics::instance().counter("smtpgw_dkim_signatures_total", "DKIM signatures made, by algorithm",
                                                         R"(algorithm="rsa-sha256")")),
        signed_ed_(observe::Metrics::instance().counter("smtpgw_dkim_signatures_total", "DKIM signatures made, by algorithm",
                                                        R"(algorithm="ed25519-sha256")")) {
    const auto& t = env.table;
    t.allow_only({"keys"});
    const auto& pl = env.config.pipeline;
    if (!pl.empty() && pl.back() != "dkim_sign")
      log::warn("dkim_sign_not_last", {{"detail", "plugins after dkim_sign in `pipeline` may add headers the "
                                                  "signature does not cover; put dkim_sign last"}});
    for (auto& k : t.tables("keys")) {
      k.allow_only({"domain", "selector", "algorithm", "private_key", "headers", "canonicalization"});
      KeySpec spec;
      auto domain = k.string("domain");
      if (!domain || domain->empty()) k.fail("", "a [[plugins.dkim_sign.keys]] entry needs domain");
      spec.domain = lower(*domain);
      auto sel = k.string("selector");
      if (!sel || sel->empty()) k.fail("", "a [[plugins.dkim_sign.keys]] entry needs selector");
      spec.selector = *sel;
      auto valid = [](const std::string& v) {
        if (v.empty() || v.front() == '.' || v.back() == '.') return false;
        for (char c : v)
          if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_')) return false;
        return true;
      };
      if (!valid(spec.domain)) k.fail("domain", "domain must be a DNS name (letters, digits, '-', '_', '.')");
      if (!valid(spec.selector)) k.fail("selector", "selector must be a DNS label sequence (letters, digits, '-', '_', '.')");
      for (auto& other : keys_)
        if (other->spec().domain == spec.domain && other->spec().selector == spec.selector)
          k.fail("selector", "a key for " + spec.selector + "._domainkey." + spec.domain + " is already listed");
      auto alg = k.choice("algorithm", {"rsa-sha256", "ed25519-sha256"}).value_or("rsa-sha256");
      spec.algorithm = alg == "ed25519-sha256" ? Algorithm::ed25519_sha256 : Algorithm::rsa_sha256;
      spec.headers = k.strings("headers", default_signed_headers());
      if (spec.headers.empty()) k.fail("headers", "headers must name at least From");
      {
        const std::string c = k.string("canonicalization", "relaxed/relaxed");
        auto slash = c.find('/');
        std::string hc = c.substr(0, slash);
        std::string bc = slash == std::string::npos ? "simple" : c.substr(slash + 1);  // RFC 6376 §3.5 c=
        auto parse = [&](const std::string& s) {
          if (s == "relaxed") return Canon::relaxed;
          if (s == "simple") return Canon::simple;
          k.fail("canonicalization", "canonicalization must be \"relaxed/relaxed\", \"relaxed/simple\", \"simple/relaxed\" or \"simple/simple\"");
        };
        spec.header_canon = parse(hc);
        spec.body_canon = parse(bc);
      }
      auto path = k.string("private_key");
      if (!path || path->empty()) k.fail("", "a [[plugins.dkim_sign.keys]] entry needs private_key");
      // A signing key readable by others than its owner is a key anyone on the host may sign with.
      if (struct stat st{}; ::stat(path->c_str(), &st) == 0 && (st.st_mode & 077))
        k.warn("private_key", *path + " has group or other permissions (mode " + [&] {
          char m[8];
          std::snprintf(m, sizeof m, "%04o", static_cast<unsigned>(st.st_mode & 07777));
          return std::string(m);
        }() + "); make it readable by the gateway's user only (chmod 600)");
      try {
        spec.key_pem = read_key_file(*path);
      } catch (const SignError& e) {
        k.fail("private_key", e.what());
      }
      try {
        auto key = std::make_shared<SigningKey>(std::move(spec));
        if (key->spec().algorithm == Algorithm::rsa_sha256 && key->key_bits() < 2048)
          log::warn("dkim_sign_weak_key", {{"file", *path}, {"bits", key->key_bits()},
                                           {"detail", "RSA keys of 2048 bits or more are recommended (RFC 8301)"}});
        keys_.push_back(std::move(key));
      } catch (const SignError& e) {
        k.fail("private_key", *path + ": " + e.what());
      }
    }
  }

  unsigned stages() const override { return static_cast<unsigned>(Stage::data); }

  Task<Verdict> on_data(Transaction& tx) override {
    if (!tx.conn.outbound() || keys_.empty()) co_return Verdict::next();
    auto from = tx.message.header("From");
    if (!from) co_return Verdict::next();
    std::string domain = from_domain(*from);
    if (domain.empty()) co_return Verdict::next();
    std::vector<std::string> sigs;
    std::vector<Header> extra;
    bool have_extra = false;
    for (auto& k : keys_) {
      if (k->spec().domain != domain) continue;
      if (!have_extra) {
        extra = tx.final_headers(hostname_);
        have_extra = true;
      }
      try {
        sigs.push_back(k->sign(tx.message, extra));
        (k->spec().algorithm == Algorithm::ed25519_sha256 ? signed_ed_ : signed_rsa_).inc();
      } catch (const SignError& e) {
        log::error("dkim_sign_failed", {{"session", tx.conn.id}, {"domain", domain},
                                        {"selector", k->spec().selector}, {"error", e.what()}});
        co_return Verdict::tempfail(451, "4.3.0", "Error: signing failed, try again later");
      }
    }
    for (auto& s : sigs) tx.add_header("DKIM-Signature", std::move(s));
    if (!sigs.empty()) tx.facts["dkim_sign"] = domain + " x" + std::to_string(sigs.size());
    co_return Verdict::next();
  }

 private:
  std::string hostname_;
  observe::Counter& signed_rsa_;
  observe::Counter& signed_ed_;
  std::vector<std::shared_ptr<SigningKey>> keys_;
};

GW_REGISTER_PLUGIN("dkim_sign", [](const PluginEnv& env) { return std::make_unique<DkimSign>(env); });

}  // namespace
}  // namespace gw::dkim
