// DKIM sign and verify of 4 KiB and 100 KiB messages, rsa-sha256 (2048 bits) and ed25519-sha256,
// relaxed/relaxed, from the message buffer in place (as the plugins do). Verify gets its key from a
// prepared KeyMap (the DNS lookup is the resolver's cost, not measured here).
#include <benchmark/benchmark.h>

#include "plugins/dkim_sign/signer.hpp"
#include "plugins/dkim_verify/verifier.hpp"

namespace {

using namespace gw;
using namespace gw::dkim;

std::string make_message(size_t size) {
  std::string m =
      "From: Alice <alice@example.test>\r\nTo: Bob <bob@remote.test>\r\nSubject: benchmark message\r\n"
      "Date: Wed, 25 Nov 2026 22:00:00 +0000\r\nMessage-ID: <bench@example.test>\r\nMIME-Version: 1.0\r\n"
      "Content-Type: text/plain; charset=us-ascii\r\n\r\n";
  const std::string line = "The quick brown fox jumps over the lazy dog.  0123456789 abcdefghijklmnopqr\r\n";
  while (m.size() + line.size() <= size) m += line;
  return m;
}

struct Fixture {
  GeneratedKey rsa = generate_key(Algorithm::rsa_sha256, 2048);
  GeneratedKey ed = generate_key(Algorithm::ed25519_sha256, 0);
  std::unique_ptr<SigningKey> rsa_key, ed_key;
  KeyMap keys;
  Verifier verifier;
  Fixture() {
    KeySpec s;
    s.domain = "example.test";
    s.selector = "r1";
    s.key_pem = rsa.pem;
    rsa_key = std::make_unique<SigningKey>(s);
    s.selector = "e1";
    s.algorithm = Algorithm::ed25519_sha256;
    s.key_pem = ed.pem;
    ed_key = std::make_unique<SigningKey>(s);
    keys["r1._domainkey.example.test"] = {dns::Status::ok, {rsa.txt}};
    keys["e1._domainkey.example.test"] = {dns::Status::ok, {ed.txt}};
  }
};

Fixture& fx() {
  static Fixture f;
  return f;
}

const SigningKey& key_for(int64_t alg) { return alg == 0 ? *fx().rsa_key : *fx().ed_key; }

void BM_DkimSign(benchmark::State& state) {
  const SigningKey& key = key_for(state.range(0));
  Message msg;
  msg.buffer() = make_message(static_cast<size_t>(state.range(1)));
  for (auto _ : state) benchmark::DoNotOptimize(key.sign(msg, {}));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(msg.size()));
  state.SetLabel(state.range(0) == 0 ? "rsa-2048" : "ed25519");
}

void BM_DkimVerify(benchmark::State& state) {
  const SigningKey& key = key_for(state.range(0));
  std::string text = make_message(static_cast<size_t>(state.range(1)));
  Message plain;
  plain.buffer() = text;
  Message msg;
  msg.buffer() = "DKIM-Signature: " + key.sign(plain, {}) + "\r\n" + text;
  if (fx().verifier.verify(msg, fx().keys).at(0).result != "pass") {
    state.SkipWithError("signature does not verify");
    return;
  }
  for (auto _ : state) benchmark::DoNotOptimize(fx().verifier.verify(msg, fx().keys));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(msg.size()));
  state.SetLabel(state.range(0) == 0 ? "rsa-2048" : "ed25519");
}

// range(0): 0 = rsa-sha256 (2048 bits), 1 = ed25519-sha256; range(1): message size
BENCHMARK(BM_DkimSign)->ArgsProduct({{0, 1}, {4096, 102400}})->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_DkimVerify)->ArgsProduct({{0, 1}, {4096, 102400}})->Unit(benchmark::kMicrosecond);

}  // namespace
