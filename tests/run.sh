#!/usr/bin/env bash
# Runs every test: installs what is missing, builds, then CTest runs the GoogleTest unit tests, the
# integration tests (real binary, real peers started by the tests on loopback) and the fuzz targets.
#   SANITIZE=1 also builds with ASan+UBSan into build-asan and runs the unit and integration tests
#   under it (CI does). Extra arguments go to ctest (e.g. -L integration, -R core).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
ctest --test-dir "${BUILD_DIR:-build}" --output-on-failure -j "${TEST_JOBS:-2}" "$@"
if [ "${SANITIZE:-0}" = 1 ]; then
  BUILD_DIR=build-asan CMAKE_EXTRA="-DGATEWAY_SANITIZE=ON -DGATEWAY_BENCH=OFF" bash scripts/build.sh
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir build-asan --output-on-failure -j "${TEST_JOBS:-2}" -L "unit|integration" "$@"
fi
