// DKIM sign/verify units: the RFC 8463 appendix A example, sign -> verify round trips, the result
// mapping (fail, permerror, temperror, policy for RFC 8301 and x=), and the dkim_verify plugin's
// asynchronous key fetch through a fake Resolver.
#include <gtest/gtest.h>


#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "gateway/core/plugin.hpp"
#include "gateway/dns/resolver.hpp"
#include "plugins/dkim_sign/signer.hpp"
#include "plugins/dkim_verify/verifier.hpp"

#ifndef _Bool
#define _Bool bool
#endif
extern "C" {
#include <opendkim/dkim.h>
}

namespace gw::dkim {
std::string from_domain(std::string_view v);  // plugins/dkim_sign/dkim_sign.cpp
}

namespace {

using namespace gw;
using namespace gw::dkim;

const char* kRfc8463Ed = "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
const char* kRfc8463Rsa =
    "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/"
    "J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+"
    "2kryOTIKT+l/K4w3QIDAQAB";

// RFC 8463 appendix A.3 (also tests/data/rfc8463-a3.eml, LF line ends there and here)
const char* kRfc8463Message = R"(DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;
 d=football.example.com; i=@football.example.com;
 q=dns/txt; s=brisbane; t=1528637909; h=from : to :
 subject : date : message-id : from : subject : date;
 bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;
 b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus
 Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==
DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;
 d=football.example.com; i=@football.example.com;
 q=dns/txt; s=test; t=1528637909; h=from : to : subject :
 date : message-id : from : subject : date;
 bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;
 b=F45dVWDfMbQDGHJFlXUNB2HKfbCeLRyhDXgFpEL8GwpsRe0IeIixNTe3
 DhCVlUrSjV4BwcVcOF6+FF3Zo9Rpo1tFOeS9mPYQTnGdaSGsgeefOsk2Jz
 dA+L10TeYt9BgDfQNZtKdN1WO//KgIqXP7OdEFE4LjFYNcUxZQ4FADY+8=
From: Joe SixPack <joe@football.example.com>
To: Suzie Q <suzie@shopping.example.net>
Subject: Is dinner ready?
Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)
Message-ID: <20030712040037.46341.5F8J@football.example.com>

Hi.

We lost the game.  Are you hungry yet?

Joe.

)";

std::string rfc8463_message() {
  std::string crlf;
  for (const char* c = kRfc8463Message; *c; ++c) {
    if (*c == '\n') crlf += '\r';
    crlf += *c;
  }
  return crlf;
}

KeyMap rfc8463_keys() {
  KeyMap k;
  k["brisbane._domainkey.football.example.com"] = {dns::Status::ok, {kRfc8463Ed}};
  k["test._domainkey.football.example.com"] = {dns::Status::ok, {kRfc8463Rsa}};
  return k;
}

Message make(const std::string& text) {
  Message m;
  m.buffer() = text;
  return m;
}

TEST(DkimVerify, Rfc8463AppendixAExampleVerifies) {
  Verifier v;
  Message m = make(rfc8463_message());
  ASSERT_GT(m.size(), 500u);
  auto refs = signature_refs(m);
  ASSERT_EQ(refs.size(), 2u);
  EXPECT_EQ(refs[0].key_name(), "brisbane._domainkey.football.example.com");
  auto r = v.verify(m, rfc8463_keys());
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].result, "pass") << r[0].reason;
  EXPECT_EQ(r[0].algorithm, "ed25519-sha256");
  EXPECT_EQ(r[0].b, "/gCrinpc");
  EXPECT_EQ(r[1].result, "pass") << r[1].reason;
  EXPECT_EQ(r[1].algorithm, "rsa-sha256");
  EXPECT_EQ(auth_results_part(r[0]),
            "dkim=pass header.d=football.example.com header.s=brisbane header.a=ed25519-sha256 header.b=\"/gCrinpc\"");
  EXPECT_EQ(auth_results_part(r[1]),
            "dkim=pass header.d=football.example.com header.s=test header.a=rsa-sha256 header.b=F45dVWDf");
}

TEST(DkimVerify, TamperedBodyOrHeaderFails) {
  Verifier v;
  std::string text = rfc8463_message();
  std::string body = text;
  body.replace(body.find("hungry"), 6, "HUNGRY");
  auto r = v.verify(make(body), rfc8463_keys());
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].result, "fail") << r[0].reason;
  EXPECT_EQ(r[1].result, "fail") << r[1].reason;
  std::string head = text;
  head.replace(head.find("Is dinner ready?"), 16, "Is lunch ready?");
  r = v.verify(make(head), rfc8463_keys());
  EXPECT_EQ(r[0].result, "fail") << r[0].reason;
  EXPECT_EQ(r[1].result, "fail") << r[1].reason;
}

TEST(DkimVerify, KeyLookupOutcomes) {
  Verifier v;
  Message m = make(rfc8463_message());
  KeyMap keys = rfc8463_keys();
  keys["brisbane._domainkey.football.example.com"] = {dns::Status::nxdomain, {}};
  keys["test._domainkey.football.example.com"] = {dns::Status::temperror, {}};
  auto r = v.verify(m, keys);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].result, "permerror") << r[0].reason;
  EXPECT_EQ(r[1].result, "temperror") << r[1].reason;
  // no answer at all (no resolver): temperror
  r = v.verify(m, {});
  EXPECT_EQ(r[0].result, "temperror") << r[0].reason;
  EXPECT_EQ(r[1].result, "temperror") << r[1].reason;
  // a record that is not a key
  keys["brisbane._domainkey.football.example.com"] = {dns::Status::ok, {"v=spf1 -all"}};
  r = v.verify(m, keys);
  EXPECT_NE(r[0].result, "pass");
  // the wrong key
  keys["brisbane._domainkey.football.example.com"] = {dns::Status::ok, {"v=DKIM1; k=ed25519; p=ijFBqZx2HphHe/EVTv6qDDHlh1BMSUWen/I/bWLe6C4="}};
  r = v.verify(m, keys);
  EXPECT_EQ(r[0].result, "fail") << r[0].reason;
}

TEST(DkimVerify, UnsignedMessageHasNoResults) {
  Verifier v;
  EXPECT_TRUE(v.verify(make("From: a@b.test\r\nSubject: x\r\n\r\nbody\r\n"), {}).empty());
}

struct Keys {
  GeneratedKey rsa = generate_key(Algorithm::rsa_sha256, 2048);
  GeneratedKey ed = generate_key(Algorithm::ed25519_sha256, 0);
};
const Keys& keys() {
  static Keys k;
  return k;
}

SigningKey make_key(Algorithm alg, std::string selector, Canon hc = Canon::relaxed, Canon bc = Canon::relaxed) {
  KeySpec s;
  s.domain = "example.test";
  s.selector = std::move(selector);
  s.algorithm = alg;
  s.key_pem = alg == Algorithm::rsa_sha256 ? keys().rsa.pem : keys().ed.pem;
  s.header_canon = hc;
  s.body_canon = bc;
  return SigningKey(std::move(s));
}

KeyMap example_keys() {
  KeyMap k;
  k["r1._domainkey.example.test"] = {dns::Status::ok, {keys().rsa.txt}};
  k["e1._domainkey.example.test"] = {dns::Status::ok, {keys().ed.txt}};
  return k;
}

TEST(DkimVerify, MalformedSignaturesArePermerrorsNotCrashes) {
  Verifier v;
  const std::string body = "From: a@example.test\r\nSubject: s\r\n\r\nbody\r\n";
  const char* sigs[] = {
      "v=1",
      "v=1; a=rsa-sha256; d=example.test; s=r1; h=from; bh=; b=",
      "v=1; a=rsa-sha256; d=example.test; s=r1; h=subject; bh=AAAA; b=AAAA",  // From not signed
      "v=1; a=rsa-sha257; c=bogus/bogus; d=example.test; s=r1; h=from; bh=AAAA; b=AAAA",
      "v=1; a=rsa-sha256; d=; s=; h=from; bh=AAAA; b=AAAA",
      "v=1; a=rsa-sha256; d=example.test; s=r1; h=from; bh=!!!!; b=####; l=99999999999999999999",
      ";;;;====;;;; d== s== b==",
      "v=1; a=ed25519-sha256; d=example.test; s=e1; h=from:from:from:from:from:from:from:from; bh=AAAA; b=AAAA",
  };
  for (const char* sig : sigs) {
    SCOPED_TRACE(sig);
    auto r = v.verify(make(std::string("DKIM-Signature: ") + sig + "\r\n" + body), example_keys());
    ASSERT_EQ(r.size(), 1u);
    EXPECT_NE(r[0].result, "pass");
    EXPECT_FALSE(r[0].result.empty());
  }
  // all of them in one message, beside a good one: each gets its own result, the good one passes
  std::string all;
  for (const char* sig : sigs) all += std::string("DKIM-Signature: ") + sig + "\r\n";
  SigningKey k = make_key(Algorithm::ed25519_sha256, "e1");
  Message plain = make(body);
  all += "DKIM-Signature: " + k.sign(plain, {}) + "\r\n" + body;
  auto r = v.verify(make(all), example_keys());
  ASSERT_EQ(r.size(), std::size(sigs) + 1);
  EXPECT_EQ(r.back().result, "pass") << r.back().reason;
  for (size_t i = 0; i + 1 < r.size(); ++i) EXPECT_NE(r[i].result, "pass");
}

TEST(DkimSign, RoundTripBothAlgorithmsWithPrependedHeaders) {
  const std::string msg =
      "From: Alice <alice@example.test>\r\nTo: bob@remote.test\r\nSubject: hello\r\n  folded\r\n"
      "Date: Wed, 25 Nov 2026 22:00:00 +0000\r\n\r\nbody line  \r\n\r\n\r\n";
  Message m = make(msg);
  std::vector<Header> extra{{"X-Extra", "prepended"}};
  for (auto hc : {Canon::relaxed, Canon::simple})
    for (auto bc : {Canon::relaxed, Canon::simple}) {
      SCOPED_TRACE(std::string(hc == Canon::relaxed ? "relaxed" : "simple") + "/" + (bc == Canon::relaxed ? "relaxed" : "simple"));
      SigningKey rsa = make_key(Algorithm::rsa_sha256, "r1", hc, bc);
      SigningKey ed = make_key(Algorithm::ed25519_sha256, "e1", hc, bc);
      std::string sr = rsa.sign(m, extra), se = ed.sign(m, extra);
      EXPECT_NE(sr.find("a=rsa-sha256"), std::string::npos);
      EXPECT_NE(se.find("a=ed25519-sha256"), std::string::npos);
      EXPECT_EQ(sr.find('\n'), sr.find("\r\n") + 1) << "folded with CRLF";
      Message signed_msg = make("DKIM-Signature: " + sr + "\r\nDKIM-Signature: " + se + "\r\nX-Extra: prepended\r\n" + msg);
      Verifier v;
      auto r = v.verify(signed_msg, example_keys());
      ASSERT_EQ(r.size(), 2u);
      EXPECT_EQ(r[0].result, "pass") << r[0].reason;
      EXPECT_EQ(r[1].result, "pass") << r[1].reason;
    }
}

TEST(DkimSign, CanonicalizationRfc6376Example) {
  // RFC 6376 §3.4.5
  EXPECT_EQ(canon_header("A", " X", Canon::relaxed), "a:X\r\n");
  EXPECT_EQ(canon_header("B ", " Y\t\r\n\tZ  ", Canon::relaxed), "b:Y Z\r\n");
  EXPECT_EQ(canon_header("B ", " Y\t\r\n\tZ  ", Canon::simple), "B : Y\t\r\n\tZ  \r\n");
  auto sha = [](const std::string& s) {
    unsigned char h[32];
    unsigned int n = 0;
    EVP_Digest(s.data(), s.size(), h, &n, EVP_sha256(), nullptr);
    std::string out(44, '\0');
    EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), h, 32);
    return out;
  };
  const std::string body = " C \r\nD \t E\r\n\r\n\r\n";
  EXPECT_EQ(body_hash_b64(body, Canon::relaxed), sha(" C\r\nD E\r\n"));
  EXPECT_EQ(body_hash_b64(body, Canon::simple), sha(" C \r\nD \t E\r\n"));
  // empty bodies (RFC 6376 §3.4.3, §3.4.4)
  EXPECT_EQ(body_hash_b64("", Canon::simple), "frcCV1k9oG9oKj3dpUqdJg1PxRT2RSN/XKdLCPjaYaY=");
  EXPECT_EQ(body_hash_b64("", Canon::relaxed), "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
  EXPECT_EQ(body_hash_b64("\r\n \t\r\n", Canon::relaxed), "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
  // no final CRLF: one is added
  EXPECT_EQ(body_hash_b64("x", Canon::simple), sha("x\r\n"));
  EXPECT_EQ(body_hash_b64("x  y ", Canon::relaxed), sha("x y\r\n"));
  // a body longer than the staging buffer hashes like the one-shot canonical form
  std::string big, canon;
  for (int i = 0; i < 5000; ++i) {
    big += "line\t\t" + std::to_string(i) + "   \r\n";
    canon += "line " + std::to_string(i) + "\r\n";
  }
  EXPECT_EQ(body_hash_b64(big + "\r\n\r\n", Canon::relaxed), sha(canon));
}

TEST(DkimSign, RemovedFieldsAreNotSigned) {
  Message m = make("From: a@example.test\r\nSubject: one\r\nSubject: two\r\n\r\nx\r\n");
  // a plugin removed the first Subject: the forwarded message holds only "two"
  m.remove_field(1);
  SigningKey k = make_key(Algorithm::ed25519_sha256, "e1");
  std::string sig = k.sign(m, {});
  Message fwd = make("DKIM-Signature: " + sig + "\r\nFrom: a@example.test\r\nSubject: two\r\n\r\nx\r\n");
  Verifier v;
  EXPECT_EQ(v.verify(fwd, example_keys())[0].result, "pass");
}

TEST(DkimSign, BadKeysAreRejected) {
  KeySpec s;
  s.domain = "example.test";
  s.selector = "x";
  s.key_pem = "garbage";
  EXPECT_THROW(SigningKey{s}, SignError);
  s.key_pem = keys().ed.pem;
  s.algorithm = Algorithm::rsa_sha256;
  EXPECT_THROW(SigningKey{s}, SignError);
  s.key_pem = generate_key(Algorithm::rsa_sha256, 1024).pem;
  EXPECT_EQ(SigningKey{s}.key_bits(), 1024);
  EXPECT_EQ(txt_record_for(keys().ed.pem), keys().ed.txt);
  EXPECT_THROW(read_key_file("/nonexistent/dir/k.key"), SignError);
}

TEST(DkimSign, FromDomain) {
  EXPECT_EQ(from_domain("Alice <alice@Example.TEST>"), "example.test");
  EXPECT_EQ(from_domain("alice@example.test"), "example.test");
  EXPECT_EQ(from_domain("\"Bob <b@evil.test>\" <bob@good.test>"), "good.test");
  EXPECT_EQ(from_domain("(c@evil.test) bob@good.test"), "good.test");
  EXPECT_EQ(from_domain("a@one.test, b@two.test"), "one.test");
  EXPECT_EQ(from_domain("nobody"), "");
}

// Signs with libopendkim directly, for signatures dkim_sign never makes (rsa-sha1, x= in the past).
std::string raw_sign(const std::string& msg, dkim_alg_t alg, uint64_t fixed_time, uint64_t ttl) {
  DKIM_LIB* lib = dkim_init(nullptr, nullptr);
  if (fixed_time) dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_FIXEDTIME, &fixed_time, sizeof fixed_time);
  if (ttl) dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_SIGNATURETTL, &ttl, sizeof ttl);
  DKIM_STAT st;
  std::string pem = keys().rsa.pem;
  DKIM* d = dkim_sign(lib, reinterpret_cast<const u_char*>("t"), nullptr, reinterpret_cast<dkim_sigkey_t>(pem.data()),
                      reinterpret_cast<const u_char*>("r1"), reinterpret_cast<const u_char*>("example.test"),
                      DKIM_CANON_RELAXED, DKIM_CANON_RELAXED, alg, -1, &st);
  EXPECT_NE(d, nullptr);
  Message m = make(msg);
  for (auto& f : m.fields()) {
    std::string h(m.field_raw(f).substr(0, f.length - 2));
    dkim_header(d, reinterpret_cast<u_char*>(h.data()), h.size());
  }
  dkim_eoh(d);
  std::string body(m.body());
  dkim_body(d, reinterpret_cast<u_char*>(body.data()), body.size());
  EXPECT_EQ(dkim_eom(d, nullptr), DKIM_STAT_OK);
  u_char* out = nullptr;
  size_t len = 0;
  dkim_getsighdr_d(d, 16, &out, &len);
  std::string sig;
  for (size_t i = 0; i < len; ++i) {
    if (out[i] == '\n') sig += '\r';
    sig += static_cast<char>(out[i]);
  }
  dkim_free(d);
  dkim_close(lib);
  return "DKIM-Signature: " + sig + "\r\n" + msg;
}

TEST(DkimVerify, Rfc8301AndExpiryNeverPass) {
  const std::string msg = "From: a@example.test\r\nSubject: s\r\n\r\nbody\r\n";
  Verifier v;
  // control: the same path with sha256 and no expiry passes
  auto r = v.verify(make(raw_sign(msg, DKIM_SIGN_RSASHA256, 0, 0)), example_keys());
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].result, "pass") << r[0].reason;
  r = v.verify(make(raw_sign(msg, DKIM_SIGN_RSASHA1, 0, 0)), example_keys());
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].algorithm, "rsa-sha1");
  EXPECT_EQ(r[0].result, "policy") << r[0].reason;
  // signed in 2020, valid for one day
  r = v.verify(make(raw_sign(msg, DKIM_SIGN_RSASHA256, 1600000000, 86400)), example_keys());
  ASSERT_EQ(r.size(), 1u);
  EXPECT_NE(r[0].result, "pass");
  EXPECT_EQ(r[0].result, "policy") << r[0].reason;
}

TEST(DkimVerify, ShortRsaKeyNeverPasses) {
  // a 512-bit key cannot be generated through generate_key (OpenSSL 3 refuses < 512 only), so build one
  EVP_PKEY* k = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{512});
  ASSERT_NE(k, nullptr);
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, k, nullptr, nullptr, 0, nullptr, nullptr);
  char* p = nullptr;
  long n = BIO_get_mem_data(bio, &p);
  std::string pem(p, static_cast<size_t>(n));
  BIO_free(bio);
  EVP_PKEY_free(k);
  const std::string msg = "From: a@example.test\r\nSubject: s\r\n\r\nbody\r\n";
  DKIM_LIB* lib = dkim_init(nullptr, nullptr);
  unsigned int minbits = 512;  // the library refuses to sign with short keys by default
  dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_MINKEYBITS, &minbits, sizeof minbits);
  DKIM_STAT st;
  DKIM* d = dkim_sign(lib, reinterpret_cast<const u_char*>("t"), nullptr, reinterpret_cast<dkim_sigkey_t>(pem.data()),
                      reinterpret_cast<const u_char*>("w1"), reinterpret_cast<const u_char*>("example.test"),
                      DKIM_CANON_RELAXED, DKIM_CANON_RELAXED, DKIM_SIGN_RSASHA256, -1, &st);
  ASSERT_NE(d, nullptr);
  std::string h1 = "From: a@example.test", h2 = "Subject: s", body = "body\r\n";
  dkim_header(d, reinterpret_cast<u_char*>(h1.data()), h1.size());
  dkim_header(d, reinterpret_cast<u_char*>(h2.data()), h2.size());
  dkim_eoh(d);
  dkim_body(d, reinterpret_cast<u_char*>(body.data()), body.size());
  ASSERT_EQ(dkim_eom(d, nullptr), DKIM_STAT_OK);
  u_char* out = nullptr;
  size_t len = 0;
  dkim_getsighdr_d(d, 16, &out, &len);
  std::string sig(reinterpret_cast<char*>(out), len);
  dkim_free(d);
  dkim_close(lib);
  std::string crlf;
  for (char c : sig) {
    if (c == '\n') crlf += '\r';
    crlf += c;
  }
  KeyMap km;
  km["w1._domainkey.example.test"] = {dns::Status::ok, {txt_record_for(pem)}};
  Verifier v;
  auto r = v.verify(make("DKIM-Signature: " + crlf + "\r\n" + msg), km);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].result, "policy") << r[0].reason;
}

// The plugin: keys come from the (fake) asynchronous resolver, results land on the transaction.
class FakeResolver : public dns::Resolver {
 public:
  std::map<std::string, dns::Answer> answers;
  std::vector<std::string> asked;
  boost::asio::awaitable<dns::Answer> query(std::string name, dns::Type type) override {
    asked.push_back(name);
    auto it = answers.find(name);
    if (it == answers.end()) co_return dns::Answer{dns::Status::nxdomain, {}, 60};
    co_return it->second;
  }
};

// Answers after a delay (the lookups of one message run at once); a name "throw" raises.
class SlowResolver : public dns::Resolver {
 public:
  std::map<std::string, dns::Answer> answers;
  boost::asio::awaitable<dns::Answer> query(std::string name, dns::Type) override {
    boost::asio::steady_timer t(co_await boost::asio::this_coro::executor);
    t.expires_after(std::chrono::milliseconds(300));
    co_await t.async_wait(boost::asio::use_awaitable);
    auto it = answers.find(name);
    if (it == answers.end()) throw std::runtime_error("resolver failure");
    co_return it->second;
  }
};

struct PluginRun {
  Verdict verdict;
  Transaction tx;
};

PluginRun run_verify(std::shared_ptr<dns::Resolver> resolver, const std::string& text, bool outbound = false) {
  config::Config cfg;
  config::Table table;
  Services services;
  services.resolver = std::move(resolver);
  const std::string name = "dkim_verify";
  PluginEnv env{cfg, name, table, services};
  const PluginFactory* f = PluginRegistry::find("dkim_verify");
  EXPECT_NE(f, nullptr);
  auto plugin = (*f)(env);
  PluginRun run;
  run.tx.conn.trusted = outbound;
  run.tx.message.buffer() = text;
  boost::asio::io_context io;
  auto fut = boost::asio::co_spawn(io, plugin->on_data(run.tx), boost::asio::use_future);
  io.run();
  run.verdict = fut.get();
  return run;
}

TEST(DkimVerifyPlugin, FetchesKeysThroughResolver) {
  auto res = std::make_shared<FakeResolver>();
  res->answers["brisbane._domainkey.football.example.com"] = {dns::Status::ok, {kRfc8463Ed}, 300};
  res->answers["test._domainkey.football.example.com"] = {dns::Status::ok, {kRfc8463Rsa}, 300};
  auto run = run_verify(res, rfc8463_message());
  EXPECT_EQ(run.verdict.kind, Verdict::Kind::proceed);
  EXPECT_EQ(res->asked.size(), 2u);
  ASSERT_EQ(run.tx.dkim.size(), 2u);
  EXPECT_EQ(run.tx.dkim[0].result, "pass");
  EXPECT_EQ(run.tx.dkim[0].selector, "brisbane");
  EXPECT_EQ(run.tx.dkim[1].result, "pass");
  ASSERT_EQ(run.tx.auth_results.size(), 2u);
  EXPECT_EQ(run.tx.auth_results[1].rfind("dkim=pass header.d=football.example.com header.s=test", 0), 0u);
  // outbound mail is not verified
  res->asked.clear();
  run = run_verify(res, rfc8463_message(), true);
  EXPECT_TRUE(res->asked.empty());
  EXPECT_TRUE(run.tx.dkim.empty());
}

TEST(DkimVerifyPlugin, LookupsRunConcurrentlyAndErrorsAreTemperror) {
  auto res = std::make_shared<SlowResolver>();
  res->answers["brisbane._domainkey.football.example.com"] = {dns::Status::ok, {kRfc8463Ed}, 300};
  res->answers["test._domainkey.football.example.com"] = {dns::Status::ok, {kRfc8463Rsa}, 300};
  auto start = std::chrono::steady_clock::now();
  auto run = run_verify(res, rfc8463_message());
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_LT(took, std::chrono::milliseconds(550));  // two 300 ms lookups side by side
  ASSERT_EQ(run.tx.dkim.size(), 2u);
  EXPECT_EQ(run.tx.dkim[0].result, "pass");
  EXPECT_EQ(run.tx.dkim[1].result, "pass");
  res->answers.erase("test._domainkey.football.example.com");  // this lookup throws
  run = run_verify(res, rfc8463_message());
  EXPECT_EQ(run.tx.dkim[0].result, "pass");
  EXPECT_EQ(run.tx.dkim[1].result, "temperror");
}

TEST(DkimVerifyPlugin, OnFailActions) {
  auto res = std::make_shared<FakeResolver>();
  res->answers["brisbane._domainkey.football.example.com"] = {dns::Status::ok, {kRfc8463Ed}, 300};
  res->answers["test._domainkey.football.example.com"] = {dns::Status::ok, {kRfc8463Rsa}, 300};
  std::string bad = rfc8463_message();
  bad.replace(bad.find("hungry"), 6, "HUNGRY");
  auto run = run_verify(res, bad);
  EXPECT_EQ(run.verdict.kind, Verdict::Kind::proceed);  // default on_fail = tag
  EXPECT_EQ(run.tx.dkim[0].result, "fail");
}

TEST(DkimVerifyPlugin, NoResolverGivesTemperrorAndUnsignedGivesNone) {
  auto run = run_verify(nullptr, rfc8463_message());
  ASSERT_EQ(run.tx.dkim.size(), 2u);
  EXPECT_EQ(run.tx.dkim[0].result, "temperror");
  EXPECT_EQ(run.tx.dkim[1].result, "temperror");
  run = run_verify(nullptr, "From: a@b.test\r\n\r\nx\r\n");
  EXPECT_TRUE(run.tx.dkim.empty());
  ASSERT_EQ(run.tx.auth_results.size(), 1u);
  EXPECT_EQ(run.tx.auth_results[0], "dkim=none");
}

}  // namespace
