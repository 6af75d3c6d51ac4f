#!/bin/sh
# The machine's CPU time per durable turn, for comparing two builds of store_bench: a steadier
# figure than turns/s on a shared machine, where the CPU's speed moves from minute to minute.
#   bench/store/cpu_per_turn.sh FOLDER STORE_BENCH [CONVERSATIONS THREADS]
# FOLDER holds a cluster made by `STORE_BENCH --folder FOLDER --clients 2 --seconds 1
# --pgbench no` (owned by the postgres user when run as root). The script starts it, runs
# STORE_BENCH on it for 11 s (32 conversations on 8 threads by default), counts the busy CPU
# of the whole machine (/proc/stat) and the committed transactions over the 6 s in the
# middle, stops the cluster and prints turns/s and µs of CPU per turn. Run the two builds
# alternately, each on its own cluster if their schemas differ, and compare medians.
set -eu
folder=$1
bench=$2
conversations=${3:-32}
threads=${4:-8}
as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pg_ctl=/usr/lib/postgresql/15/bin/pg_ctl
as_owner "$pg_ctl" start -w -D "$folder/data" -l "$folder/postgres.log" >/dev/null
trap 'as_owner "$pg_ctl" stop -w -D "$folder/data" >/dev/null' EXIT
commits() {
  as_owner psql -h "$folder/run" -d flowrt -Atc \
    "SELECT xact_commit FROM pg_stat_database WHERE datname = 'flowrt'"
}
busy() { head -1 /proc/stat | awk '{print $2 + $3 + $4 + $7 + $8}'; }
out=$(mktemp)
"$bench" --database-url "postgresql://postgres@/flowrt?host=$folder/run" \
  --clients "$conversations" --threads "$threads" --seconds 11 --pgbench no >"$out" 2>&1 &
sleep 3
x0=$(commits)
c0=$(busy)
sleep 6
x1=$(commits)
c1=$(busy)
wait
echo "$(tail -1 "$out" | awk '{print $3}') turns/s" \
  "$(((c1 - c0) * 1000000 / $(getconf CLK_TCK) / (x1 - x0))) us of CPU per turn"
rm -f "$out"
