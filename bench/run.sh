#!/usr/bin/env bash
# Self-contained benchmark: works on a fresh checkout (Debian 12 with .ci/packages.txt installed:
# postfix provides smtp-source and smtp-sink). Builds the gateway, then bench/driver.py measures
# direct smtp-source -> smtp-sink and the gateway rows in the same run, RUNS times, and writes the
# medians, the report and the SVG plots.
#   bash bench/run.sh                          # 4 KiB, 1 and 20 sessions, pool on/off, 3 runs, idle 10,000
#   RUNS=5 SIZES="4096 102400" SESSIONS="1 20 200" bash bench/run.sh
#   ROWS="empty" IDLE_CONNS=0 bash bench/run.sh    # one row, no idle probe
#   ROWS="empty inbound-full" IDLE_CONNS=0 bash bench/run.sh   # every inbound plugin (DNS server, greylist
#                                              # warm-up and store filled in by driver.py)
#   bash bench/run.sh idle                     # only the idle-connection probe
# Results: bench/out/<UTC time>/ (report.md, results.tsv, runs.tsv, *.svg).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
mode="${1:-all}"
for tool in smtp-source smtp-sink; do
  command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || {
    echo "$tool not found: apt-get install postfix (Debian ships smtp-source/smtp-sink in it)" >&2; exit 1; }
done
export PATH="$PATH:/usr/sbin"
if [ -z "${GATEWAY_BIN:-}" ]; then
  NINJA_TARGETS=smtp-gateway bash "$root/scripts/build.sh" >/dev/null
fi
out="${OUT:-$here/out/$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$out"
python3 "$here/driver.py" "$out" "$mode"
if [ -f "$out/results.tsv" ]; then
  python3 "$here/plot.py" "$out" "$out"
fi
echo "results: $out/report.md"
