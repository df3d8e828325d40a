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
scripts/deps.sh >/dev/null
swift build -c release --product allot >&2 && swift build -c release --product allot-load >&2 || exit 1
bin=$(swift build -c release --show-bin-path)
[ -f "$dir/cluster/ports" ] && scripts/cluster.sh stop "$dir/cluster" >/dev/null
rm -rf "$dir" && mkdir -p "$dir/node"
seeds=$(scripts/cluster.sh start "$dir/cluster" | sed -n 's/.*seeds //p')
[ -n "$seeds" ] || exit 1
pids=()
killer=
cleanup() {
  [ -n "$killer" ] && kill "$killer" 2>/dev/null
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  scripts/cluster.sh stop "$dir/cluster" >/dev/null
}
trap cleanup EXIT
token=$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
urls=()
for node in p a b; do
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  urls+=(--url "http://127.0.0.1:$port")
  role=front; [ "$node" = p ] && role=full
  ALLOT_ADMIN_TOKEN=$token "$bin/allot" serve --redis-cluster "$seeds" --port "$port" --node-id "$node" --role "$role" \
    --durability "$durability" --data-dir "$dir/node" --threads 1 --log-level warning >"$dir/node-$node.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
done
victim=$(head -1 "$dir/cluster/ports")
( sleep $((seconds / 2 + 3)); kill -9 "$(cat "$dir/cluster/$victim/redis.pid")"
  echo "killed master :$victim at $(date +%T)" >&2 ) &
killer=$!
ALLOT_ADMIN_TOKEN=$token "$bin/allot-load" steady "${urls[@]}" --db "$dir/node/allot.db" --data-dir "$dir/node" \
  --buckets 16 --slots 20 --rate "$rate" --duration "$seconds" --faults-from-outside --connections 32 --report-dir "$dir/report"
status=$?
wait "$killer" 2>/dev/null
echo "durability $durability: the harness's checks $([ $status -eq 0 ] && echo held || echo failed) (above: 'nothing lost' counts the 201s SQLite holds)"
exit $status
