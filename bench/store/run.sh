#!/bin/sh
# Durable turns/s through the store next to pgbench (same cluster, same client counts).
#   bench/store/run.sh [BUILD_DIR] [extra store_bench flags, e.g. --seconds 10]
# Starts a throwaway PostgreSQL 15 cluster with durable settings (it runs as the postgres
# user when invoked as root), prints a table with both rates and their ratio, stops it.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
[ $# -gt 0 ] && shift
cmake --build "$build" --target store_bench
exec "$build/bench/store/store_bench" "$@"
