#!/usr/bin/env bash
# Issue 12's surge over a Redis Cluster: a cluster on this machine
# (scripts/cluster.sh), three `allot serve --redis-cluster` nodes (the full
# node `p`, which has the SQLite file, holds the writer lease and answers
# operators, and two front nodes `a` and `b` without SQLite, which read the
# citizen key from the same data directory), and `allot-load surge`
# spreading citizens over all three (the first sets the campaign up).
# Afterwards: every invariant check of the harness, how many reservation
# calls each master ran (INFO commandstats), and how many moves of places
# between shards were made (their settled marks).
#
#   scripts/cluster-surge.sh [BUCKETS] [PLACES] [CITIZENS]   (16 4000 6000)
#   MASTERS=1 REPLICAS=0 scripts/cluster-surge.sh …          one master
#
# Builds release binaries first. Everything runs under var/cluster-surge/
# and is stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
buckets=${1:-16}
places=${2:-4000}
citizens=${3:-6000}
slots=${SLOTS:-4}
dir=var/cluster-surge
source scripts/cluster-lib.sh
cluster_setup
start_nodes standard p:full a:front b:front
masters=${MASTERS:-3}
# CPU seconds (user + system) a process has used, from /proc.
cpu() { awk -v tck="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / tck }' "/proc/$1/stat"; }
declare -A cpu_before
for port in "${cluster_ports[@]:0:$masters}"; do
  redis-cli -p "$port" config resetstat >/dev/null
  cpu_before[$port]=$(cpu "$(cat "$dir/cluster/$port/redis.pid")")
done
ALLOT_ADMIN_TOKEN=$token "$bin/allot-load" surge "${urls[@]}" --db "$dir/node/allot.db" --data-dir "$dir/node" --buckets "$buckets" --slots "$slots" --places "$places" \
  --citizens "$citizens" --arrival-seconds 5 --threads 1 --connections 64 --report-dir "$dir/report"
echo "per master: function calls (INFO commandstats, every function), reservations it holds, moves settled"
echo "out of its shards, and redis-server CPU seconds during the run (from /proc):"
total_moves=0
for port in "${cluster_ports[@]:0:$masters}"; do
  calls=$(redis-cli -p "$port" info commandstats | sed -n 's/^cmdstat_fcall:calls=\([0-9]*\),.*/\1/p')
  held=0
  while read -r key; do
    [ -n "$key" ] && held=$((held + $(redis-cli -p "$port" hlen "$key")))
  done < <(redis-cli -p "$port" --scan --pattern '*:recs')
  moves=$(redis-cli -p "$port" --scan --pattern '*:xdone:*' | wc -l)
  total_moves=$((total_moves + moves))
  used=$(awk -v a="${cpu_before[$port]}" -v b="$(cpu "$(cat "$dir/cluster/$port/redis.pid")")" 'BEGIN { printf "%.2f", b - a }')
  echo "  master :$port  fcall ${calls:-0}  reservations $held  moves $moves  cpu ${used}s"
done
echo "moves of places between shards: $total_moves for $places places (≤ 1 per 10 wanted: $((total_moves * 10 <= places)))"
