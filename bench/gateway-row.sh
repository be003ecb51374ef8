#!/usr/bin/env bash
# One gateway row of the bench-anchors harness: writes the row's config into the cell directory from
# the harness's environment (BENCH_LISTEN_PORT, BENCH_UPSTREAM_HOST/PORT, BENCH_CELL_DIR) and execs
# the gateway, so the PID the harness measures is the gateway itself.
#   gateway-row.sh PROFILE      PROFILE = a file bench/profiles/PROFILE.toml (pipeline + plugin tables)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
profile="$here/profiles/$1.toml"
cell_dir="$(cd "${BENCH_CELL_DIR:-.}" && pwd)"
cfg="$cell_dir/gateway-$1.toml"
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
# run in the repository's root, as bench/driver.py does: paths in policies are relative to it
gateway="${GATEWAY_BIN:-$here/../build/smtp-gateway}"
cd "$here/.."
exec "$gateway" --config "$cfg"
