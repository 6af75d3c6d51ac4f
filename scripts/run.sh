#!/usr/bin/env bash
# Builds flowrt and starts it. For now this is `flowrt chat` on the lead-qualification
# example: a conversation in the terminal with the real executor, no server needed.
# Extra arguments go to flowrt chat (e.g. --name Ana).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build --target flowrt -j "$(nproc)"

exec build/api/flowrt chat flows/examples/lead-qualification.json "$@"
