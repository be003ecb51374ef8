#!/usr/bin/env bash
# Runs an external bench-anchors harness (ANCHORS=DIR) with the gateway as extra rows, so
# every figure is a ratio to direct smtp-source -> smtp-sink (and to Haraka) taken in the same run.
#   bench/run-anchors.sh                      # rows: direct, haraka-n2, gateway-empty
#   ROWS="empty" TARGETS="direct haraka-n2" SIZES=4096 SESSIONS="1 20" bench/run-anchors.sh
# Results: bench/out/<time>/ (report.md, results.tsv); bench/README.md quotes them.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
anchors_src="${ANCHORS:?set ANCHORS to a bench-anchors harness checkout (bench/run.sh needs none)}"
work="${BENCH_WORK:-/tmp/smtp-gateway-bench}"
mkdir -p "$work"
[ -d "$work/bench-anchors" ] || cp -r "$anchors_src" "$work/"
chmod -R u+w "$work/bench-anchors"
"$work/bench-anchors/setup.sh"
NINJA_TARGETS=smtp-gateway bash "$root/scripts/build.sh"

# What the plugin rows need: keys, a DNS server with the SPF record, the greylist triplet passed.
export BENCH_ANCHOR_KEYS="$work/bench-anchors/keys"  # the key the haraka-dkim and postfix-relay-dkim rows sign with
export BENCH_DIR="$here" BENCH_KEYS="$work/keys" BENCH_STATE="$work/state" BENCH_DNS_PORT="${BENCH_DNS_PORT:-5399}"
mkdir -p "$BENCH_KEYS"
[ -f "$BENCH_KEYS/bench.test.ed.key" ] || "$root/build/smtp-gateway" dkim-keygen --domain bench.test --selector ed --algorithm ed25519-sha256 --out "$BENCH_KEYS" >/dev/null
/usr/bin/python3 "$here/dns_server.py" "$BENCH_DNS_PORT" & dns_pid=$!
trap 'kill $dns_pid 2>/dev/null' EXIT
warm_row=""  # the first row whose pipeline greylists: smtp-source's triplet is passed through it once
for row in ${ROWS:-empty}; do
  if grep -q '^pipeline *=.*"greylist"' "$here/profiles/$row.toml"; then warm_row="$row"; break; fi
done
if [ -n "$warm_row" ]; then
  # pass the greylist triplet of smtp-source's envelope (from@bench.test -> to@bench.test) once
  sink_port=2599 gw_port=2598
  /usr/sbin/smtp-sink -u nobody 127.0.0.1:$sink_port 100 & warm_sink=$!
  BENCH_LISTEN_PORT=$gw_port BENCH_UPSTREAM_PORT=$sink_port BENCH_CELL_DIR="$work" GATEWAY_LOG_LEVEL=warn \
    "$here/gateway-row.sh" "$warm_row" & warm_gw=$!
  sleep 1
  for _ in 1 2; do
    swaks --server 127.0.0.1:$gw_port --from from@bench.test --to to@bench.test >/dev/null 2>&1 || true
    sleep 1.5
  done
  swaks --server 127.0.0.1:$gw_port --from from@bench.test --to to@bench.test >/dev/null 2>&1 \
    && echo "greylist triplet passed" || echo "warning: the greylist warm-up failed"
  kill $warm_gw $warm_sink; wait $warm_gw $warm_sink 2>/dev/null || true
fi

rows_file="$work/rows.tsv"
: > "$rows_file"
port=2540
for row in ${ROWS:-empty}; do
  printf 'gateway-%s\t%d\texec %q %q\n' "$row" "$port" "$here/gateway-row.sh" "$row" >> "$rows_file"
  port=$((port + 1))
done
out="$here/out/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
TARGETS="${TARGETS:-direct haraka-n2}" TARGETS_FILE="$rows_file" OUT="$out" \
  "$work/bench-anchors/run.sh" "${MODE:-matrix}"
echo "results: $out/report.md"
