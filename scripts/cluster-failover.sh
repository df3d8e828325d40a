#!/usr/bin/env bash
# A master of the cluster killed (`kill -9`) in the middle of steady booking,
# and what it cost: the harness's checks afterwards say how many answered
# 201s SQLite holds. Its replica takes over (node timeout 2 s); the nodes
# find it by reading the slot map again. In `standard` durability the writes
# the replica had not received are lost; in `replicated` every 201 waited
# for a replica, so none should be.
#
#   scripts/cluster-failover.sh [standard|replicated] [RATE] [SECONDS]   (standard 800 20)
#
# A full node and two front nodes, a campaign of 16 buckets, the first
# master killed halfway. Everything runs under var/cluster-failover/.
set -uo pipefail
cd "$(dirname "$0")/.."
durability=${1:-standard}
rate=${2:-800}
seconds=${3:-20}
dir=var/cluster-failover
source scripts/cluster-lib.sh
cluster_setup
start_nodes "$durability" p:full a:front b:front
victim=$(head -1 "$dir/cluster/ports")
( sleep $((seconds / 2 + 3)); kill -9 "$(cat "$dir/cluster/$victim/redis.pid")"
  echo "killed master :$victim at $(date +%T)" >&2 ) &
background=$!
ALLOT_ADMIN_TOKEN=$token "$bin/allot-load" steady "${urls[@]}" --db "$dir/node/allot.db" --data-dir "$dir/node" \
  --buckets 16 --slots 20 --rate "$rate" --duration "$seconds" --faults-from-outside --connections 32 --report-dir "$dir/report"
status=$?
wait "$background" 2>/dev/null
background=
echo "durability $durability: the harness's checks $([ $status -eq 0 ] && echo held || echo failed) (above: 'nothing lost' counts the 201s SQLite holds)"
exit $status
