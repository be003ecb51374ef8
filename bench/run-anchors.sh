#!/usr/bin/env bash
# Runs the shared bench-anchors harness (../shared/bench-anchors) with the gateway as extra rows, so
# every figure is a ratio to direct smtp-source -> smtp-sink (and to Haraka) taken in the same run.
#   bench/run-anchors.sh                      # rows: direct, haraka-n2, gateway-empty
#   ROWS="empty" TARGETS="direct haraka-n2" SIZES=4096 SESSIONS="1 20" bench/run-anchors.sh
#   ROWS="empty dkim_sign" TARGETS="direct haraka-dkim-n1 postfix-relay-dkim" bench/run-anchors.sh
# Results: bench/out/<time>/ (report.md, results.tsv); bench/README.md quotes them.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
anchors_src="${ANCHORS:-$root/../shared/bench-anchors}"
work="${BENCH_WORK:-/tmp/smtp-gateway-bench}"
mkdir -p "$work"
[ -d "$work/bench-anchors" ] || cp -r "$anchors_src" "$work/"
chmod -R u+w "$work/bench-anchors"
"$work/bench-anchors/setup.sh"
NINJA_TARGETS=smtp-gateway bash "$root/scripts/build.sh"

export BENCH_KEYS="$work/bench-anchors/keys"   # for profiles that sign (bench/profiles/dkim_sign.toml)
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
