#!/usr/bin/env bash
# Configures and builds into build/ (Release with debug info; ccache when present).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo} ${CMAKE_EXTRA:-} >/dev/null
ninja -C "$BUILD_DIR" ${NINJA_TARGETS:-}
