#include "plugins/dkim_sign/signer.hpp"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#ifndef _Bool
#define _Bool bool  // dkim.h is C; its _Bool is C++'s bool (same ABI)
#endif
extern "C" {
#include <opendkim/dkim.h>
}

namespace gw::dkim {
namespace {

struct PkeyDeleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

Pkey parse_private_pem(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (!bio) return nullptr;
  EVP_PKEY* k = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  return Pkey(k);
}

std::string base64(const unsigned char* p, size_t n) {
  std::string out(4 * ((n + 2) / 3) + 1, '\0');
  int len = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), p, static_cast<int>(n));
  out.resize(static_cast<size_t>(len));
  return out;
}

std::string public_txt(EVP_PKEY* k) {
  if (EVP_PKEY_get_base_id(k) == EVP_PKEY_ED25519) {
    unsigned char raw[32];
    size_t n = sizeof raw;
    if (EVP_PKEY_get_raw_public_key(k, raw, &n) != 1) throw SignError("cannot extract the ed25519 public key");
    return "v=DKIM1; k=ed25519; p=" + base64(raw, n);
  }
  unsigned char* der = nullptr;
  int n = i2d_PUBKEY(k, &der);
  if (n <= 0) throw SignError("cannot encode the RSA public key");
  std::string txt = "v=DKIM1; k=rsa; p=" + base64(der, static_cast<size_t>(n));
  OPENSSL_free(der);
  return txt;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

struct DkimHandle {
  DKIM* d = nullptr;
  ~DkimHandle() {
    if (d) dkim_free(d);
  }
};

}  // namespace

const std::vector<std::string>& default_signed_headers() {
  static const std::vector<std::string> h{
      "from", "reply-to", "subject", "date", "to", "cc", "message-id", "in-reply-to", "references",
      "mime-version", "content-type", "content-transfer-encoding", "content-disposition", "content-id",
      "content-description", "list-id", "list-unsubscribe", "list-unsubscribe-post", "sender",
      "resent-date", "resent-from", "resent-to", "resent-cc", "resent-message-id"};
  return h;
}

SigningKey::SigningKey(KeySpec spec) : spec_(std::move(spec)) {
  Pkey k = parse_private_pem(spec_.key_pem);
  if (!k) throw SignError("not a PEM private key (PKCS#8 or traditional RSA)");
  int type = EVP_PKEY_get_base_id(k.get());
  if (spec_.algorithm == Algorithm::ed25519_sha256 && type != EVP_PKEY_ED25519)
    throw SignError("algorithm is ed25519-sha256 but the key is not an Ed25519 key");
  if (spec_.algorithm == Algorithm::rsa_sha256 && type != EVP_PKEY_RSA)
    throw SignError("algorithm is rsa-sha256 but the key is not an RSA key");
  bits_ = EVP_PKEY_get_bits(k.get());
  if (spec_.algorithm == Algorithm::rsa_sha256 && bits_ < 1024)
    throw SignError("RSA key of " + std::to_string(bits_) + " bits: at least 1024 (better 2048) are needed (RFC 8301)");

  if (spec_.headers.empty()) spec_.headers = default_signed_headers();
  for (auto& h : spec_.headers) h = lower(h);
  for (auto& h : spec_.oversign) h = lower(h);
  if (std::find(spec_.headers.begin(), spec_.headers.end(), "from") == spec_.headers.end())
    spec_.headers.insert(spec_.headers.begin(), "from");  // RFC 6376 §5.4: From MUST be signed

  DKIM_LIB* lib = dkim_init(nullptr, nullptr);
  if (!lib) throw SignError("libopendkim initialisation failed");
  lib_ = lib;
  hdr_storage_ = spec_.headers;
  hdr_list_.clear();
  for (auto& h : hdr_storage_) hdr_list_.push_back(h.c_str());
  hdr_list_.push_back(nullptr);
  if (dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_SIGNHDRS, hdr_list_.data(), sizeof(char**)) != DKIM_STAT_OK)
    throw SignError("libopendkim rejected the header list");
  static std::vector<const char*> none{nullptr};
  std::vector<const char*> over;
  for (auto& h : spec_.oversign) over.push_back(h.c_str());
  over.push_back(nullptr);
  // the library copies both lists into its own storage
  if (dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_OVERSIGNHDRS, over.data(), sizeof(char**)) != DKIM_STAT_OK)
    throw SignError("libopendkim rejected the over-signed header list");
  (void)none;
  // Prove the key works with the library now (a config error beats a failure per message).
  Message probe;
  probe.buffer() = "From: probe@" + spec_.domain + "\r\nSubject: probe\r\n\r\nprobe\r\n";
  (void)sign(probe, {}, "probe");
}

SigningKey::~SigningKey() {
  if (lib_) dkim_close(static_cast<DKIM_LIB*>(lib_));
}

std::string SigningKey::sign(const Message& msg, const std::vector<Header>& extra, std::string_view id) const {
  DKIM_STAT st = DKIM_STAT_OK;
  std::string idz(id);
  DkimHandle h;
  h.d = dkim_sign(static_cast<DKIM_LIB*>(lib_), reinterpret_cast<const unsigned char*>(idz.c_str()), nullptr,
                  reinterpret_cast<dkim_sigkey_t>(const_cast<char*>(spec_.key_pem.c_str())),
                  reinterpret_cast<const unsigned char*>(spec_.selector.c_str()),
                  reinterpret_cast<const unsigned char*>(spec_.domain.c_str()),
                  spec_.header_canon == Canon::relaxed ? DKIM_CANON_RELAXED : DKIM_CANON_SIMPLE,
                  spec_.body_canon == Canon::relaxed ? DKIM_CANON_RELAXED : DKIM_CANON_SIMPLE,
                  spec_.algorithm == Algorithm::ed25519_sha256 ? DKIM_SIGN_ED25519SHA256 : DKIM_SIGN_RSASHA256, -1, &st);
  if (!h.d) throw SignError(std::string("dkim_sign: ") + dkim_getresultstr(st));
  dkim_set_margin(h.d, 0);  // one line; fold_signature() folds
  std::string line;
  for (auto& x : extra) {
    line.assign(x.name);
    line += ": ";
    line += x.value;
    if (dkim_header(h.d, reinterpret_cast<u_char*>(line.data()), line.size()) != DKIM_STAT_OK)
      throw SignError(std::string("dkim_header: ") + dkim_geterror(h.d));
  }
  const std::string& data = msg.data();
  for (auto& f : msg.fields()) {
    if (f.removed) continue;
    size_t len = f.length;
    if (len >= 2 && data[f.offset + len - 2] == '\r' && data[f.offset + len - 1] == '\n') len -= 2;
    // the library copies header fields; the buffer itself is never modified
    if (dkim_header(h.d, reinterpret_cast<u_char*>(const_cast<char*>(data.data() + f.offset)), len) != DKIM_STAT_OK)
      throw SignError(std::string("dkim_header: ") + dkim_geterror(h.d));
  }
  st = dkim_eoh(h.d);
  if (st != DKIM_STAT_OK) throw SignError(std::string("dkim_eoh: ") + (dkim_geterror(h.d) ? dkim_geterror(h.d) : dkim_getresultstr(st)));
  size_t off = msg.body_offset();
  if (off < data.size()) {
    st = dkim_body(h.d, reinterpret_cast<u_char*>(const_cast<char*>(data.data() + off)), data.size() - off);
    if (st != DKIM_STAT_OK) throw SignError(std::string("dkim_body: ") + dkim_getresultstr(st));
  }
  st = dkim_eom(h.d, nullptr);
  if (st != DKIM_STAT_OK) throw SignError(std::string("dkim_eom: ") + (dkim_geterror(h.d) ? dkim_geterror(h.d) : dkim_getresultstr(st)));
  u_char* out = nullptr;
  size_t outlen = 0;
  st = dkim_getsighdr_d(h.d, std::strlen("DKIM-Signature: "), &out, &outlen);
  if (st != DKIM_STAT_OK || !out) throw SignError(std::string("dkim_getsighdr: ") + dkim_getresultstr(st));
  return fold_signature(std::string_view(reinterpret_cast<const char*>(out), outlen),
                        spec_.header_canon == Canon::relaxed);
}

// The library hashes the DKIM-Signature field unfolded but, with its default margin, emits it folded at
// places that differ from what it hashed (a simple/x ed25519 signature then never verifies). So it
// makes one line (margin 0) and the folding happens here, only where no canonicalization can see it:
// inside the b= value (removed with its whitespace before hashing, RFC 6376 §3.7) and, for relaxed
// header canonicalization, after the "; " between tags (relaxed reduces any FWS to one SP).
std::string fold_signature(std::string_view line, bool relaxed) {
  std::string out;
  out.reserve(line.size() + line.size() / 32 + 16);
  size_t b = line.rfind("b=");
  while (b != std::string_view::npos && b > 0 && line[b - 1] != ' ' && line[b - 1] != ';' && line[b - 1] != '\t')
    b = b >= 1 ? line.rfind("b=", b - 1) : std::string_view::npos;
  std::string_view head = b == std::string_view::npos ? line : line.substr(0, b);
  std::string_view bval = b == std::string_view::npos ? std::string_view{} : line.substr(b + 2);
  size_t col = std::strlen("DKIM-Signature: ");
  if (relaxed) {
    size_t pos = 0;
    while (pos < head.size()) {
      size_t semi = head.find("; ", pos);
      std::string_view tag = head.substr(pos, semi == std::string_view::npos ? std::string_view::npos : semi + 1 - pos);
      if (col + tag.size() > 76 && col > 1) {
        out += "\r\n\t";
        col = 1;
      } else if (!out.empty()) {
        out += ' ';
        ++col;
      }
      out += tag;
      col += tag.size();
      if (semi == std::string_view::npos) break;
      pos = semi + 2;
    }
    if (b != std::string_view::npos) {
      out += "\r\n\t";
      col = 1;
    }
  } else {
    out.append(head);
    col += head.size();
  }
  if (b == std::string_view::npos) return out;
  out += "b=";
  col += 2;
  while (!bval.empty()) {
    size_t room = col >= 76 ? 0 : 76 - col;
    if (room == 0) {
      out += "\r\n\t ";
      col = 2;
      continue;
    }
    size_t take = std::min(room, bval.size());
    out.append(bval.substr(0, take));
    bval.remove_prefix(take);
    col += take;
  }
  return out;
}

std::string read_key_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw SignError("cannot read key file " + path + ": " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw SignError("cannot read key file " + path);
  return ss.str();
}

GeneratedKey generate_key(Algorithm alg, int bits) {
  EVP_PKEY* raw = nullptr;
  if (alg == Algorithm::ed25519_sha256) {
    raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  } else {
    raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(bits));
  }
  if (!raw) throw SignError("key generation failed");
  Pkey k(raw);
  BIO* bio = BIO_new(BIO_s_mem());
  if (!bio || PEM_write_bio_PKCS8PrivateKey(bio, k.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    BIO_free(bio);
    throw SignError("cannot encode the private key");
  }
  char* p = nullptr;
  long n = BIO_get_mem_data(bio, &p);
  GeneratedKey g;
  g.pem.assign(p, static_cast<size_t>(n));
  BIO_free(bio);
  g.txt = public_txt(k.get());
  return g;
}

std::string txt_record_for(const std::string& pem) {
  Pkey k = parse_private_pem(pem);
  if (!k) throw SignError("not a PEM private key");
  return public_txt(k.get());
}

}  // namespace gw::dkim
