#include "plugins/dkim_sign/signer.hpp"

#include <algorithm>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>


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


}  // namespace

const std::vector<std::string>& default_signed_headers() {
  static const std::vector<std::string> h{
      "from", "reply-to", "subject", "date", "to", "cc", "message-id", "in-reply-to", "references",
      "mime-version", "content-type", "content-transfer-encoding", "content-disposition", "content-id",
      "content-description", "list-id", "list-unsubscribe", "list-unsubscribe-post", "sender",
      "resent-date", "resent-from", "resent-to", "resent-cc", "resent-message-id"};
  return h;
}

namespace {

bool wsp(char c) { return c == ' ' || c == '\t'; }

struct MdCtx {
  EVP_MD_CTX* c = EVP_MD_CTX_new();
  ~MdCtx() { EVP_MD_CTX_free(c); }
};

// Feeds the canonical body to a digest through a small staging buffer: no copy of the whole body.
class BodyHasher {
 public:
  BodyHasher(EVP_MD_CTX* md, Canon c) : md_(md), canon_(c) { buf_.reserve(kChunk + 1024); }

  void run(std::string_view body) {
    if (canon_ == Canon::simple) {
      // RFC 6376 §3.4.3: trailing empty lines are ignored; the result ends with exactly one CRLF
      size_t end = body.size();
      while (end >= 2 && body[end - 2] == '\r' && body[end - 1] == '\n') end -= 2;
      if (end > 0) EVP_DigestUpdate(md_, body.data(), end);
      EVP_DigestUpdate(md_, "\r\n", 2);
      return;
    }
    // relaxed (§3.4.4): WSP runs -> one SP, no WSP at line ends, no trailing empty lines
    size_t pos = 0;
    while (pos < body.size()) {
      size_t eol = body.find("\r\n", pos);
      std::string_view line = body.substr(pos, eol == std::string_view::npos ? std::string_view::npos : eol - pos);
      pos = eol == std::string_view::npos ? body.size() : eol + 2;
      size_t e = line.size();
      while (e > 0 && wsp(line[e - 1])) --e;
      line = line.substr(0, e);
      if (line.empty()) {
        ++empty_;
        continue;
      }
      for (; empty_ > 0; --empty_) put("\r\n");
      size_t i = 0;
      while (i < line.size()) {
        size_t j = i;
        while (j < line.size() && !wsp(line[j])) ++j;
        put(line.substr(i, j - i));
        if (j < line.size()) {
          put(" ");
          while (j < line.size() && wsp(line[j])) ++j;
        }
        i = j;
      }
      put("\r\n");
    }
    flush();
  }

 private:
  static constexpr size_t kChunk = 16384;
  void put(std::string_view s) {
    buf_.append(s);
    if (buf_.size() >= kChunk) flush();
  }
  void flush() {
    if (!buf_.empty()) EVP_DigestUpdate(md_, buf_.data(), buf_.size());
    buf_.clear();
  }
  EVP_MD_CTX* md_;
  Canon canon_;
  std::string buf_;
  size_t empty_ = 0;
};

std::string b64_digest(EVP_MD_CTX* md) {
  unsigned char h[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(md, h, &n);
  return base64(h, n);
}

struct Field {
  std::string_view name;
  std::string_view raw_value;  // after ':' up to (not including) the final CRLF
  std::string_view raw;        // whole field with its CRLF (simple canonicalization)
  std::string owned;           // for prepended fields: "Name: value\r\n"
};

}  // namespace

std::string canon_header(std::string_view name, std::string_view v, Canon c) {
  if (c == Canon::simple) {
    std::string out(name);
    out += ':';
    out.append(v);
    out += "\r\n";
    return out;
  }
  std::string out = lower(std::string(name));
  while (!out.empty() && wsp(out.back())) out.pop_back();
  out += ':';
  size_t start = out.size();
  bool space = false;
  for (size_t i = 0; i < v.size(); ++i) {
    char ch = v[i];
    if (ch == '\r' || ch == '\n') continue;  // unfold
    if (wsp(ch)) {
      space = true;
      continue;
    }
    if (space && out.size() > start) out += ' ';
    space = false;
    out += ch;
  }
  out += "\r\n";
  return out;
}

std::string body_hash_b64(std::string_view body, Canon c) {
  MdCtx md;
  EVP_DigestInit_ex(md.c, EVP_sha256(), nullptr);
  BodyHasher(md.c, c).run(body);
  return b64_digest(md.c);
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
  // drop duplicates, keep the order
  std::vector<std::string> uniq;
  for (auto& h : spec_.headers)
    if (std::find(uniq.begin(), uniq.end(), h) == uniq.end()) uniq.push_back(h);
  spec_.headers = std::move(uniq);
  pkey_ = k.release();
}

SigningKey::~SigningKey() { EVP_PKEY_free(static_cast<EVP_PKEY*>(pkey_)); }

std::string SigningKey::sign(const Message& msg, const std::vector<Header>& extra, long long now) const {
  // the header block as the upstream receives it: prepended fields, then the message's own
  std::vector<Field> fields;
  fields.reserve(extra.size() + msg.fields().size());
  for (auto& x : extra) {
    Field f;
    f.owned = x.name + ": " + x.value + "\r\n";
    fields.push_back(std::move(f));
  }
  for (auto& f : fields) {  // views into `owned` once the vector no longer moves
    std::string_view o = f.owned;
    size_t colon = o.find(':');
    f.name = o.substr(0, colon);
    f.raw_value = o.substr(colon + 1, o.size() - colon - 3);
    f.raw = o;
  }
  for (auto& hf : msg.fields()) {
    if (hf.removed) continue;
    std::string_view raw = msg.field_raw(hf);
    Field f;
    f.name = raw.substr(0, hf.name_length);
    size_t end = raw.size();
    if (end >= 2 && raw[end - 2] == '\r' && raw[end - 1] == '\n') end -= 2;
    f.raw_value = raw.substr(hf.name_length + 1, end - hf.name_length - 1);
    f.raw = raw;
    fields.push_back(std::move(f));
  }

  // h=: every present instance of each listed name (selected bottom-up, RFC 6376 §5.4.2), plus one
  // more for over-signed names so that none can be added later
  std::vector<std::string> h;
  std::vector<const Field*> selected;
  for (auto& name : spec_.headers) {
    std::vector<const Field*> found;
    for (auto& f : fields)
      if (iequals(f.name, name)) found.push_back(&f);
    for (auto it = found.rbegin(); it != found.rend(); ++it) {
      h.push_back(name);
      selected.push_back(*it);
    }
    if (std::find(spec_.oversign.begin(), spec_.oversign.end(), name) != spec_.oversign.end()) h.push_back(name);
  }

  std::string bh = body_hash_b64(msg.body(), spec_.body_canon);
  bool relaxed = spec_.header_canon == Canon::relaxed;
  const char* alg = spec_.algorithm == Algorithm::ed25519_sha256 ? "ed25519-sha256" : "rsa-sha256";
  std::string c = std::string(relaxed ? "relaxed" : "simple") + "/" + (spec_.body_canon == Canon::relaxed ? "relaxed" : "simple");
  if (now == 0) now = static_cast<long long>(std::time(nullptr));
  std::vector<std::string> tags{"v=1", std::string("a=") + alg, "c=" + c, "d=" + spec_.domain, "s=" + spec_.selector,
                                "t=" + std::to_string(now), "bh=" + bh};
  std::string hl = "h=";
  for (size_t i = 0; i < h.size(); ++i) hl += (i ? ":" : "") + h[i];
  tags.push_back(hl);
  // the value up to "b=", folded at tag boundaries (hashed exactly like this in both canonicalizations)
  std::string value;
  size_t col = std::strlen("DKIM-Signature: ");
  for (auto& t : tags) {
    std::string piece = t + ";";
    if (!value.empty()) {
      if (col + 1 + piece.size() > 78) {
        value += "\r\n\t";
        col = 1;
      } else {
        value += ' ';
        ++col;
      }
    }
    value += piece;
    col += piece.size();
  }
  value += col + 3 > 78 ? "\r\n\tb=" : " b=";
  size_t nl = value.rfind('\n');
  col = nl == std::string::npos ? std::strlen("DKIM-Signature: ") + value.size() : value.size() - nl;

  // header hash input: the selected fields, then this field without its final CRLF (§3.7)
  MdCtx md;
  EVP_PKEY* key = static_cast<EVP_PKEY*>(pkey_);
  bool ed = spec_.algorithm == Algorithm::ed25519_sha256;
  if (ed) EVP_DigestInit_ex(md.c, EVP_sha256(), nullptr);
  else if (EVP_DigestSignInit(md.c, nullptr, EVP_sha256(), nullptr, key) != 1) throw SignError("RSA signing setup failed");
  auto feed = [&](const std::string& s) {
    if (ed) EVP_DigestUpdate(md.c, s.data(), s.size());
    else EVP_DigestSignUpdate(md.c, s.data(), s.size());
  };
  for (const Field* f : selected) {
    if (relaxed) feed(canon_header(f->name, f->raw_value, Canon::relaxed));
    else feed(std::string(f->raw));
  }
  std::string self = relaxed ? canon_header("DKIM-Signature", " " + value, Canon::relaxed) : "DKIM-Signature: " + value + "\r\n";
  self.resize(self.size() - 2);
  feed(self);

  std::vector<unsigned char> sig;
  size_t siglen = 0;
  if (ed) {
    unsigned char digest[32];
    unsigned int dlen = 0;
    EVP_DigestFinal_ex(md.c, digest, &dlen);
    MdCtx sctx;  // RFC 8463: PureEdDSA over the SHA-256 of the header data
    if (EVP_DigestSignInit(sctx.c, nullptr, nullptr, nullptr, key) != 1) throw SignError("Ed25519 signing setup failed");
    siglen = 64;
    sig.resize(siglen);
    if (EVP_DigestSign(sctx.c, sig.data(), &siglen, digest, dlen) != 1) throw SignError("Ed25519 signing failed");
  } else {
    if (EVP_DigestSignFinal(md.c, nullptr, &siglen) != 1) throw SignError("RSA signing failed");
    sig.resize(siglen);
    if (EVP_DigestSignFinal(md.c, sig.data(), &siglen) != 1) throw SignError("RSA signing failed");
  }
  std::string b = base64(sig.data(), siglen);
  // fold inside b= only: its value and the whitespace in it are removed before hashing (§3.7)
  std::string_view rest = b;
  while (!rest.empty()) {
    size_t room = col >= 76 ? 0 : 76 - col;
    if (room == 0) {
      value += "\r\n\t ";
      col = 2;
      continue;
    }
    size_t take = std::min(room, rest.size());
    value.append(rest.substr(0, take));
    rest.remove_prefix(take);
    col += take;
  }
  return value;
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
