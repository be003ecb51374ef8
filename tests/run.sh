#!/usr/bin/env bash
# Runs every test: installs what is missing, builds, then CTest runs the GoogleTest unit tests and
# the integration tests (real binary, real peers started by the tests on loopback).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
ctest --test-dir "${BUILD_DIR:-build}" --output-on-failure -j "${TEST_JOBS:-2}" "$@"
