#!/bin/sh
# What a CHECK constraint costs a writing statement on PostgreSQL 15, next to the same check
# as a domain (migration 0006). Three unlogged tables of two text columns: no check, two CHECK
# constraints, two domains; pgbench inserts one row per statement, 20 statements per
# transaction, one client, and alternates the three ROUNDS times.
#   bench/store/check_vs_domain.sh [ROUNDS] [SECONDS]
# Starts a throwaway cluster in a temporary folder (as the postgres user when run as root)
# and removes it afterwards. Prints statements/s per run and the medians.
set -eu
rounds=${1:-5}
seconds=${2:-3}
bin=/usr/lib/postgresql/15/bin
folder=$(mktemp -d /tmp/flowrt-checks-XXXXXX)
as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$folder"
cleanup() { as_owner "$bin/pg_ctl" stop -w -D "$folder/data" -m fast > /dev/null 2>&1 || true; rm -rf "$folder"; }
trap cleanup EXIT
as_owner "$bin/initdb" -D "$folder/data" -A trust > /dev/null
as_owner "$bin/pg_ctl" start -w -D "$folder/data" -l "$folder/log" \
  -o "-c listen_addresses='' -c unix_socket_directories=$folder" > /dev/null
as_owner psql -q -h "$folder" -d postgres -v ON_ERROR_STOP=1 <<'SQL'
CREATE DOMAIN status_domain AS text CHECK (VALUE IN ('active', 'waiting', 'handoff', 'ended', 'failed'));
CREATE DOMAIN state_domain AS text CHECK (VALUE IN ('pending', 'done', 'failed'));
CREATE UNLOGGED TABLE no_check (status text NOT NULL, state text NOT NULL);
CREATE UNLOGGED TABLE with_check (
  status text NOT NULL CHECK (status IN ('active', 'waiting', 'handoff', 'ended', 'failed')),
  state text NOT NULL CHECK (state IN ('pending', 'done', 'failed')));
CREATE UNLOGGED TABLE with_domain (status status_domain NOT NULL, state state_domain NOT NULL);
SQL
for table in no_check with_check with_domain; do
  for i in $(seq 20); do echo "INSERT INTO $table VALUES ('waiting', 'done');"; done > "$folder/$table.sql"
done
chmod 644 "$folder"/*.sql
for round in $(seq "$rounds"); do
  for table in no_check with_check with_domain; do
    tps=$(as_owner "$bin/pgbench" -n -M prepared -f "$folder/$table.sql" -c 1 -T "$seconds" \
      -h "$folder" postgres | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
    echo "$table $tps" | awk '{print $1, $2 * 20}'
    as_owner psql -q -h "$folder" -d postgres -c "TRUNCATE $table" > /dev/null
  done
done | tee "$folder/runs" | awk '{printf "%-12s %8.0f statements/s\n", $1, $2}'
echo "medians:"
for table in no_check with_check with_domain; do
  printf '%-12s %8.0f statements/s\n' "$table" \
    "$(grep "^$table " "$folder/runs" | awk '{print $2}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')"
done
