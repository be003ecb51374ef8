#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (-fsanitize=fuzzer,address,undefined) and runs each for
# FUZZ_SECONDS (default 20) from its seed corpus in tests/fuzz/corpus/TARGET. A crash fails the run
# and leaves the input in build-fuzz/crash-*; every crash found becomes a regression test.
#   tests/fuzz/run.sh [TARGET...]      TARGET = command data_reader proxy message reply config auth dmarc rspamd milter dns_wire
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="${FUZZ_BUILD:-$root/build-fuzz}"
secs="${FUZZ_SECONDS:-20}"
mkdir -p "$out"
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(command data_reader proxy message reply config auth dmarc rspamd milter dns_wire)
flags=(-std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I"$root"
       -DTOML_HEADER_ONLY=0 -DTOML_SHARED_LIB=1 -DBOOST_ASIO_NO_DEPRECATED)
declare -A sources=(
  [command]="gateway/smtp/parser.cpp"
  [data_reader]="gateway/smtp/data_reader.cpp"
  [proxy]="gateway/smtp/proxy_protocol.cpp"
  [message]="gateway/core/message.cpp"
  [reply]="gateway/net/reply.cpp"
  [config]="gateway/config/config.cpp gateway/config/table.cpp gateway/config/record.cpp gateway/config/units.cpp gateway/config/network.cpp gateway/config/users_file.cpp"
  [auth]="gateway/smtp/base64.cpp"
  [dmarc]="plugins/dmarc/from_domain.cpp plugins/dmarc/policy.cpp plugins/dmarc/record.cpp"
  [rspamd]="plugins/rspamd/answer.cpp plugins/rspamd/edits.cpp plugins/rspamd/json_impl.cpp gateway/core/message.cpp"
  [milter]="plugins/milter/codec.cpp plugins/milter/edits.cpp gateway/core/message.cpp"
  [dns_wire]="gateway/dns/wire.cpp"
)
declare -A libs=([config]="-ltomlplusplus -lcrypt" [dmarc]="-lopendmarc -lpsl")
for t in "${targets[@]}"; do
  src=()
  for s in ${sources[$t]}; do src+=("$root/$s"); done
  bin="$out/fuzz_$t"
  if [ ! -x "$bin" ] || [ -n "$(find "$root/tests/fuzz/fuzz_$t.cpp" "${src[@]}" -newer "$bin" 2>/dev/null)" ]; then
    clang++ "${flags[@]}" "$root/tests/fuzz/fuzz_$t.cpp" "${src[@]}" ${libs[$t]:-} -o "$bin"
  fi
  corpus="$out/corpus_$t"
  mkdir -p "$corpus"
  echo "fuzz $t: ${secs}s"
  # Each target's findings are named after it; an earlier run's are dropped (a fixed crash becomes a
  # seed in tests/fuzz/corpus/TARGET, which every run replays first).
  rm -f "$out/$t"-crash-* "$out/$t"-leak-* "$out/$t"-timeout-*
  (cd "$out" && "$bin" -max_total_time="$secs" -max_len=4096 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$out/$t-" "$corpus" "$root/tests/fuzz/corpus/$t" 2>&1 \
      | grep -E "stat::number_of_executed_units|stat::peak_rss|ERROR|SUMMARY|Done|Test unit written" || true)
  # libFuzzer exits non-zero on a crash; the grep above hides its status, so look for the artifact
  if [ -n "$(find "$out" -maxdepth 1 \( -name "$t-crash-*" -o -name "$t-leak-*" -o -name "$t-timeout-*" \) -print -quit)" ]; then
    echo "fuzz $t: FAILED, inputs in $out/$t-*"; exit 1
  fi
done
echo "fuzz: all targets ran clean"
