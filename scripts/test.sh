#!/usr/bin/env bash
# Runs the whole test suite: installs what is missing, builds with -Werror, runs every
# CTest test (unit, PostgreSQL integration, plugin faults, HTTP end-to-end, transcript
# tests), then builds and runs the same suite again under AddressSanitizer and
# UndefinedBehaviorSanitizer. FLOWRT_SKIP_SANITIZERS=1 skips the second pass locally.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

jobs=$(nproc)
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-5G}
export CTEST_OUTPUT_ON_FAILURE=1

build_and_test() {
  local dir=$1
  shift
  cmake -S . -B "$dir" -G Ninja "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
  ctest --test-dir "$dir" -j "$jobs" --timeout 600
}

echo "== build and test (RelWithDebInfo, -Wall -Wextra -Werror)"
build_and_test build -DCMAKE_BUILD_TYPE=RelWithDebInfo

if [[ "${FLOWRT_SKIP_SANITIZERS:-0}" != 1 ]]; then
  echo "== build and test under AddressSanitizer + UndefinedBehaviorSanitizer"
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
  export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/scripts/lsan-suppressions.txt:print_suppressions=0}
  build_and_test build-asan -DCMAKE_BUILD_TYPE=Debug -DFLOWRT_SANITIZE=ON -DFLOWRT_BUILD_BENCH=OFF
fi
