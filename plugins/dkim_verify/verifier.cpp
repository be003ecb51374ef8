#include "plugins/dkim_verify/verifier.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <memory>

#ifndef _Bool
#define _Bool bool  // dkim.h is C; its _Bool is C++'s bool (same ABI)
#endif
extern "C" {
#include <opendkim/dkim.h>
}

namespace gw::dkim {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string strip_ws(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s)
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') out += c;
  return out;
}

// tag=value pairs of a DKIM-Signature value (RFC 6376 §3.2), values without FWS
std::map<std::string, std::string> tags(std::string_view v) {
  std::map<std::string, std::string> out;
  size_t pos = 0;
  while (pos <= v.size()) {
    size_t semi = v.find(';', pos);
    std::string_view part = v.substr(pos, semi == std::string_view::npos ? std::string_view::npos : semi - pos);
    size_t eq = part.find('=');
    if (eq != std::string_view::npos) {
      std::string name = strip_ws(part.substr(0, eq));
      if (!name.empty() && !out.count(name)) out[name] = strip_ws(part.substr(eq + 1));
    }
    if (semi == std::string_view::npos) break;
    pos = semi + 1;
  }
  return out;
}

struct Ctx {
  const KeyMap* keys;
};

// libopendkim's key lookup hook: never touches the network, only the answers fetched beforehand.
DKIM_CBSTAT lookup_key(DKIM* dkim, DKIM_SIGINFO* sig, u_char* buf, size_t buflen) {
  auto* ctx = static_cast<Ctx*>(dkim_get_user_context(dkim));
  const char* s = reinterpret_cast<const char*>(dkim_sig_getselector(sig));
  const char* d = reinterpret_cast<const char*>(dkim_sig_getdomain(sig));
  if (!ctx || !s || !d) return DKIM_CBSTAT_NOTFOUND;
  auto it = ctx->keys->find(lower(std::string(s) + "._domainkey." + d));
  // Every failure is "not found" to the library (TRYAGAIN/ERROR would abort the other signatures too);
  // verify() tells temperror from permerror by the DNS status it holds.
  if (it == ctx->keys->end()) return DKIM_CBSTAT_NOTFOUND;
  const KeyAnswer& a = it->second;
  switch (a.status) {
    case dns::Status::ok: break;
    default: return DKIM_CBSTAT_NOTFOUND;
  }
  // RFC 6376 §3.6.2.2: with several records, use one that looks like a key record
  const std::string* rec = nullptr;
  for (auto& r : a.records)
    if (r.find("p=") != std::string::npos) {
      rec = &r;
      break;
    }
  if (!rec || rec->size() + 1 > buflen) return DKIM_CBSTAT_NOTFOUND;
  std::memcpy(buf, rec->c_str(), rec->size() + 1);
  return DKIM_CBSTAT_CONTINUE;
}

struct Handle {
  DKIM* d = nullptr;
  ~Handle() {
    if (d) dkim_free(d);
  }
};

bool token_char(char c) {
  return c > ' ' && c < 0x7f && !std::strchr("()<>@,;:\\\"/[]?=", c);
}

}  // namespace

std::string SigRef::key_name() const { return lower(selector + "._domainkey." + domain); }

std::vector<SigRef> signature_refs(const Message& msg) {
  std::vector<SigRef> out;
  for (auto& f : msg.fields()) {
    if (!iequals(msg.field_name(f), "DKIM-Signature")) continue;
    auto t = tags(msg.field_raw(f).substr(f.name_length + 1));
    auto d = t.find("d"), s = t.find("s");
    if (d == t.end() || s == t.end() || d->second.empty() || s->second.empty()) continue;
    out.push_back({lower(d->second), s->second});
  }
  return out;
}

Verifier::Verifier() {
  DKIM_LIB* lib = dkim_init(nullptr, nullptr);
  if (!lib) throw std::runtime_error("libopendkim initialisation failed");
  lib_ = lib;
  // keep a handle for every signature, broken ones included, so each gets its own result
  unsigned int flags = DKIM_LIBFLAGS_BADSIGHANDLES;
  dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags, sizeof flags);
  unsigned int minbits = 1024;  // RFC 8301 §3.2
  dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_MINKEYBITS, &minbits, sizeof minbits);
  dkim_set_key_lookup(lib, lookup_key);
}

Verifier::~Verifier() {
  if (lib_) dkim_close(static_cast<DKIM_LIB*>(lib_));
}

std::vector<SigResult> Verifier::verify(const Message& msg, const KeyMap& keys, std::string_view id) const {
  std::vector<SigResult> out;
  // our own view of each signature first: the result list follows the fields, whatever the library does
  struct Field {
    std::map<std::string, std::string> t;
  };
  std::vector<Field> sigs;
  for (auto& f : msg.fields())
    if (iequals(msg.field_name(f), "DKIM-Signature")) sigs.push_back({tags(msg.field_raw(f).substr(f.name_length + 1))});
  if (sigs.empty()) return out;

  DKIM_STAT st = DKIM_STAT_OK;
  std::string idz(id);
  Handle h;
  h.d = dkim_verify(static_cast<DKIM_LIB*>(lib_), reinterpret_cast<const unsigned char*>(idz.c_str()), nullptr, &st);
  Ctx ctx{&keys};
  std::vector<DKIM_SIGINFO*> infos;
  if (h.d) {
    dkim_set_user_context(h.d, &ctx);
    const std::string& data = msg.data();
    // the message as it arrived: every field, also those a plugin removed for the forward
    for (auto& f : msg.fields()) {
      size_t len = f.length;
      if (len >= 2 && data[f.offset + len - 2] == '\r' && data[f.offset + len - 1] == '\n') len -= 2;
      dkim_header(h.d, reinterpret_cast<u_char*>(const_cast<char*>(data.data() + f.offset)), len);
    }
    st = dkim_eoh(h.d);
    size_t off = msg.body_offset();
    if (st == DKIM_STAT_OK && off < data.size())
      dkim_body(h.d, reinterpret_cast<u_char*>(const_cast<char*>(data.data() + off)), data.size() - off);
    if (st == DKIM_STAT_OK) dkim_eom(h.d, nullptr);  // per-signature results below
    DKIM_SIGINFO** list = nullptr;
    int n = 0;
    if (dkim_getsiglist(h.d, &list, &n) == DKIM_STAT_OK && list)
      for (int i = 0; i < n; ++i) infos.push_back(list[i]);
  }

  for (size_t i = 0; i < sigs.size(); ++i) {
    auto& t = sigs[i].t;
    SigResult r;
    r.domain = lower(t.count("d") ? t["d"] : "");
    r.selector = t.count("s") ? t["s"] : "";
    r.algorithm = lower(t.count("a") ? t["a"] : "");
    r.b = (t.count("b") ? t["b"] : "").substr(0, 8);
    // the library's handle for this field: matched by b= (its list follows the header order too)
    DKIM_SIGINFO* si = nullptr;
    std::string fb = t.count("b") ? t["b"] : "";
    for (auto* cand : infos) {
      const u_char* cb = dkim_sig_gettagvalue(cand, false, reinterpret_cast<u_char*>(const_cast<char*>("b")));
      if (cb && strip_ws(reinterpret_cast<const char*>(cb)) == fb) {
        si = cand;
        break;
      }
    }
    if (!si && i < infos.size()) si = infos[i];
    const KeyAnswer* key = nullptr;
    if (!r.domain.empty() && !r.selector.empty()) {
      auto it = keys.find(SigRef{r.domain, r.selector}.key_name());
      if (it != keys.end()) key = &it->second;
    }
    if (!si) {
      r.result = "permerror";
      r.reason = "signature not processed";
    } else {
      int err = dkim_sig_geterror(si);
      unsigned flags = dkim_sig_getflags(si);
      int bh = dkim_sig_getbh(si);
      unsigned int bits = 0;
      dkim_sig_getkeysize(si, &bits);
      if (err == DKIM_SIGERROR_OK && (flags & DKIM_SIGFLAG_PASSED) && bh == DKIM_SIGBH_MATCH) {
        if (r.algorithm == "rsa-sha1") {
          r.result = "policy";
          r.reason = "rsa-sha1 is not accepted (RFC 8301)";
        } else if (r.algorithm == "rsa-sha256" && bits > 0 && bits < 1024) {
          r.result = "policy";
          r.reason = "RSA key shorter than 1024 bits (RFC 8301)";
        } else {
          r.result = "pass";
        }
      } else if (err == DKIM_SIGERROR_BADSIG || (err == DKIM_SIGERROR_OK && bh == DKIM_SIGBH_MISMATCH)) {
        r.result = "fail";
        r.reason = err == DKIM_SIGERROR_BADSIG ? "signature verification failed" : "body hash mismatch";
      } else if (err == DKIM_SIGERROR_OK && (flags & DKIM_SIGFLAG_PROCESSED)) {
        r.result = "fail";
        r.reason = "signature verification failed";
      } else if (err == DKIM_SIGERROR_EXPIRED) {
        r.result = "policy";
        r.reason = "signature expired (x=)";
      } else if (err == DKIM_SIGERROR_KEYTOOSMALL) {
        r.result = "policy";
        r.reason = "RSA key shorter than 1024 bits (RFC 8301)";
      } else if (r.algorithm == "rsa-sha1") {
        r.result = "policy";
        r.reason = "rsa-sha1 is not accepted (RFC 8301)";
      } else if (err == DKIM_SIGERROR_KEYFAIL || err == DKIM_SIGERROR_NOKEY || err == DKIM_SIGERROR_DNSSYNTAX ||
                 err == DKIM_SIGERROR_MULTIREPLY || (err == DKIM_SIGERROR_OK && !(flags & DKIM_SIGFLAG_PROCESSED))) {
        if (!key || key->status == dns::Status::temperror) {
          r.result = "temperror";
          r.reason = "key lookup failed temporarily";
        } else {
          r.result = "permerror";
          r.reason = key->status == dns::Status::ok ? "unusable key record" : "no key for signature";
        }
      } else {
        r.result = "permerror";
        const char* e = dkim_sig_geterrorstr(err);
        r.reason = e ? e : "invalid signature";
      }
    }
    out.push_back(std::move(r));
  }
  return out;
}

std::string auth_results_part(const SigResult& r) {
  auto value = [](const std::string& v) {
    bool token = !v.empty() && std::all_of(v.begin(), v.end(), token_char);
    if (token) return v;
    std::string q = "\"";
    for (char c : v) {
      if (c == '"' || c == '\\') q += '\\';
      q += c;
    }
    return q + "\"";
  };
  std::string out = "dkim=" + r.result;
  if (!r.reason.empty()) out += " reason=" + value(r.reason);
  if (!r.domain.empty()) out += " header.d=" + r.domain;
  if (!r.selector.empty()) out += " header.s=" + value(r.selector);
  if (!r.algorithm.empty()) out += " header.a=" + value(r.algorithm);
  if (!r.b.empty()) out += " header.b=" + value(r.b);
  return out;
}

}  // namespace gw::dkim
