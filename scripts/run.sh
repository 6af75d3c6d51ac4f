#!/usr/bin/env bash
# Builds flowrt and starts the product: `flowrt serve` with a PostgreSQL it runs itself
# under .flowrt/ (initdb on first run, stopped with the server), migrations, the HTTP API
# on 127.0.0.1:8080, and a demo tenant with the example flows published and a webchat
# channel. It prints the curl lines to talk to the bot. Ctrl-C stops everything cleanly.
# Extra arguments go to flowrt serve (e.g. --listen 127.0.0.1:9000).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build --target flowrt flowrt_bundled_plugins -j "$(nproc)"

# As root, the local PostgreSQL runs as the postgres user, which cannot reach a checkout
# under a private folder such as /root: keep the data where it can.
data_dir=()
if [[ $(id -u) -eq 0 && " $* " != *" --data-dir"* ]] &&
  ! runuser -u postgres -- test -x "$PWD" 2>/dev/null; then
  data_dir=(--data-dir /var/lib/flowrt/demo)
  echo "run.sh: $PWD is private to root; the local PostgreSQL keeps its data in /var/lib/flowrt/demo" >&2
fi

exec build/api/flowrt serve --demo flows/examples "${data_dir[@]}" "$@"
