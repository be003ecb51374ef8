#!/usr/bin/env bash
# One gateway row of the bench-anchors harness: writes the row's config into the cell directory from
# the harness's environment (BENCH_LISTEN_PORT, BENCH_UPSTREAM_HOST/PORT, BENCH_CELL_DIR) and execs
# the gateway, so the PID the harness measures is the gateway itself.
#   gateway-row.sh PROFILE      PROFILE = a file bench/profiles/PROFILE.toml (pipeline + plugin tables)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
profile="$here/profiles/$1.toml"
cfg="${BENCH_CELL_DIR:-.}/gateway-$1.toml"
{
  # ${BENCH_*} placeholders in a profile come from bench/run-anchors.sh's environment
  envsubst '${BENCH_DNS_PORT} ${BENCH_STATE} ${BENCH_DIR} ${BENCH_KEYS} ${BENCH_ANCHOR_KEYS}' < "$profile"
  cat <<TOML

[server]
hostname = "gw.bench.test"
max_connections = 20000
threads = ${GATEWAY_THREADS:-0}

[[listener]]
address = "127.0.0.1:${BENCH_LISTEN_PORT}"

[upstream]
servers = ["${BENCH_UPSTREAM_HOST:-127.0.0.1}:${BENCH_UPSTREAM_PORT}"]

[metrics]
listen = ""

[log]
level = "${GATEWAY_LOG_LEVEL:-warn}"
TOML
} > "$cfg"
exec "${GATEWAY_BIN:-$here/../build/smtp-gateway}" --config "$cfg"
