#!/usr/bin/env bash
# A Redis Cluster on this machine, for issue 12's scale-out: 3 masters and
# 3 replicas on free loopback ports, cluster-enabled, AOF on (fsync every
# second), node timeout 2 s, created with `redis-cli --cluster create`.
# MASTERS=1 REPLICAS=0 makes a one-node cluster (every slot on it; for
# measuring against), which `redis-cli --cluster create` cannot.
#
#   scripts/cluster.sh start [DIR]   starts it (DIR: var/cluster) and prints
#                                    the seed list for --redis-cluster
#   scripts/cluster.sh stop [DIR]    stops every node it started there
#   scripts/cluster.sh status [DIR]  the cluster's state and its nodes
#   scripts/cluster.sh start-node PORT [DIR]
#                                    starts one of its nodes again (after a
#                                    kill -9: it rejoins, a failed-over master
#                                    as a replica of the one that took over)
#
# Each node keeps its data, log and nodes.conf in DIR/<port>/; DIR/ports
# lists the ports (masters first, as created).
set -euo pipefail
cd "$(dirname "$0")/.."
command=${1:-start}
dir=${2:-var/cluster}
masters=${MASTERS:-3}
replicas_per_master=${REPLICAS:-1}

# N distinct ports free now, each with its cluster bus port (port + 10000)
# free too; every socket is held until all are chosen, so none repeats.
free_ports() {
  python3 - "$1" <<'PY'
import random, socket, sys
held, ports = [], []
while len(ports) < int(sys.argv[1]):
    port = random.randint(20000, 50000)
    if port in ports or port + 10000 in ports or port - 10000 in ports:
        continue
    try:
        for p in (port, port + 10000):
            s = socket.socket(); s.bind(("127.0.0.1", p)); held.append(s)
    except OSError:
        continue
    ports.append(port)
print(" ".join(map(str, ports)))
PY
}

node_up() {
  local port=$1
  mkdir -p "$dir/$port"
  redis-server --port "$port" --bind 127.0.0.1 --dir "$(cd "$dir/$port" && pwd)" \
    --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 2000 \
    --appendonly yes --appendfsync everysec --save "" --protected-mode yes \
    --daemonize yes --pidfile "$(cd "$dir/$port" && pwd)/redis.pid" --logfile redis.log
}

case "$command" in
  start)
    scripts/deps.sh >/dev/null
    if [ -f "$dir/ports" ]; then echo "cluster.sh: $dir/ports exists: stop that cluster first" >&2; exit 1; fi
    mkdir -p "$dir"
    read -r -a ports <<< "$(free_ports $((masters * (1 + replicas_per_master))))"
    # Written first: `stop` finds every node even if the start fails later.
    printf '%s\n' "${ports[@]}" > "$dir/ports"
    trap 'echo "cluster.sh: start failed; stopping what started" >&2; "$0" stop "$dir" >/dev/null' ERR
    for port in "${ports[@]}"; do node_up "$port"; done
    for port in "${ports[@]}"; do
      for _ in $(seq 1 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
      redis-cli -p "$port" ping >/dev/null 2>&1 || { echo "cluster.sh: node $port did not start" >&2; false; }
    done
    # The first `masters` nodes become masters, each later one a replica.
    if [ "$masters" -ge 3 ]; then
      redis-cli --cluster create $(printf '127.0.0.1:%s ' "${ports[@]}") \
        --cluster-replicas "$replicas_per_master" --cluster-yes >"$dir/create.log" 2>&1 \
        || { cat "$dir/create.log" >&2; false; }
    elif [ "$masters" -eq 1 ] && [ "$replicas_per_master" -eq 0 ]; then
      redis-cli -p "${ports[0]}" cluster addslotsrange 0 16383 >/dev/null
    else
      echo "cluster.sh: MASTERS is 1 (with REPLICAS=0) or at least 3" >&2; false
    fi
    for _ in $(seq 1 100); do
      redis-cli -p "${ports[0]}" cluster info | grep -q 'cluster_state:ok' && break
      sleep 0.1
    done
    redis-cli -p "${ports[0]}" cluster info | grep -q 'cluster_state:ok' \
      || { echo "cluster.sh: the cluster did not become ready" >&2; false; }
    # Every replica in sync (`allot serve --durability replicated` checks it).
    for port in "${ports[@]:$masters}"; do
      for _ in $(seq 1 200); do
        redis-cli -p "$port" info replication | grep -q 'master_link_status:up' && break
        sleep 0.1
      done
      redis-cli -p "$port" info replication | grep -q 'master_link_status:up' \
        || { echo "cluster.sh: replica $port did not sync" >&2; false; }
    done
    trap - ERR
    seeds=$(printf '127.0.0.1:%s,' "${ports[@]:0:$masters}")
    echo "cluster ready: ${#ports[@]} nodes in $dir; seeds ${seeds%,}"
    ;;
  stop)
    [ -f "$dir/ports" ] || { echo "cluster.sh: no cluster in $dir"; exit 0; }
    while read -r port; do
      pid=$(cat "$dir/$port/redis.pid" 2>/dev/null || true)
      [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || true
    done < "$dir/ports"
    while read -r port; do
      pid=$(cat "$dir/$port/redis.pid" 2>/dev/null || true)
      for _ in $(seq 1 50); do [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      # Still there after 5 s: it is not saving anything worth waiting for.
      [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null || true
    done < "$dir/ports"
    rm -rf "$dir"
    echo "cluster stopped"
    ;;
  start-node)
    port=${2:?start-node PORT [DIR]}
    dir=${3:-var/cluster}
    grep -qx "$port" "$dir/ports" || { echo "cluster.sh: $port is not a node of $dir" >&2; exit 1; }
    node_up "$port"
    for _ in $(seq 1 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
    redis-cli -p "$port" ping >/dev/null 2>&1 || { echo "cluster.sh: node $port did not start" >&2; exit 1; }
    ;;
  status)
    [ -f "$dir/ports" ] || { echo "cluster.sh: no cluster in $dir"; exit 1; }
    first=$(head -1 "$dir/ports")
    redis-cli -p "$first" cluster info | grep -E 'cluster_state|cluster_known_nodes|cluster_size'
    redis-cli -p "$first" cluster nodes | awk '{print $2, $3, $9}' | sort
    ;;
  *) echo "usage: scripts/cluster.sh start|stop|status [DIR] | start-node PORT [DIR]" >&2; exit 2 ;;
esac
