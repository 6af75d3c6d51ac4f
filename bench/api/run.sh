#!/usr/bin/env bash
# Load benchmark of the running product: wrk posting webchat messages across 1,000
# conversations to `flowrt serve` (durable local PostgreSQL, a demo tenant whose webchat
# channel runs bench/api/flows/survey.json: no api_call, so that the figures are the
# server's and not a remote service's). Every request is a full durable turn: inbox
# insert, contact lock, executor, state + journal + outbox writes, commit, replies in the
# response.
#   bench/api/run.sh [--seconds N] [--connections N] [--users N] [--server-threads N]
# (--server-threads 0, the default, keeps the server's own default: 4 per core, at least 8)
# Prints wrk's RESULT line (requests/s, p50/p90/p99 latency). wrk and the server share the
# machine: on 2 cores, wrk gets one thread.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
seconds=30 connections=32 users=1000 server_threads=0 wrk_threads=1
while [[ $# -gt 0 ]]; do
  case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --users) users=$2; shift 2 ;;
    --server-threads) server_threads=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

"$root/scripts/install-deps.sh"
cmake --build "$root/build" --target flowrt flowrt_bundled_plugins >/dev/null

work=$(mktemp -d /tmp/flowrt-bench-api-XXXXXX)
chmod 755 "$work"  # the local PostgreSQL runs as the postgres user when we are root
server_pid=
cleanup() {
  [[ -n $server_pid ]] && kill -TERM "$server_pid" 2>/dev/null && wait "$server_pid" || true
  rm -rf "$work"
}
trap cleanup EXIT

# The per-tenant rate limit would turn most of the load into 429s: lift it.
server_env=(FLOWRT_RATE_LIMIT_PER_S=1000000 FLOWRT_RATE_LIMIT_BURST=1000000)
[[ $server_threads != 0 ]] && server_env+=(FLOWRT_THREADS="$server_threads")
env "${server_env[@]}" "$root/build/api/flowrt" serve --listen 127.0.0.1:0 \
  --data-dir "$work/data" --demo "$root/bench/api/flows" >"$work/out.log" 2>"$work/server.log" &
server_pid=$!
for _ in $(seq 1 300); do
  grep -q "/v1/webhooks/" "$work/out.log" 2>/dev/null && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
  sleep 0.2
done
url=$(grep -o 'http://[^ ]*/v1/webhooks/[A-Za-z0-9_]*' "$work/out.log" | head -1)
[[ -n $url ]] || { echo "the server printed no webhook URL" >&2; cat "$work/server.log" >&2; exit 1; }

echo "wrk: $seconds s, $connections connections, $users conversations, server threads $server_threads"
FLOWRT_BENCH_USERS=$users FLOWRT_BENCH_THREADS=$wrk_threads \
  wrk -t "$wrk_threads" -c "$connections" -d "${seconds}s" --latency \
  -s "$root/bench/api/webchat.lua" "$url" | grep -E "RESULT|Non-2xx|Socket errors" || true
