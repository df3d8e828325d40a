# Shared by the cluster scripts (cluster-surge.sh, cluster-failover.sh,
# cluster-faults.sh): a cluster of their own under $dir/cluster, Allot
# nodes on it, and a cleanup that leaves nothing running. Sourced, with
# $dir set; defines $bin, $seeds, $token, cluster_ports, node_port.

# Binaries (release; ALLOT_BUILD=debug takes the test build's), a fresh
# $dir, and the cluster (scripts/cluster.sh; its MASTERS and REPLICAS apply).
cluster_setup() {
  local build=${ALLOT_BUILD:-release}
  scripts/deps.sh >/dev/null
  swift build -c "$build" --product allot >&2 && swift build -c "$build" --product allot-load >&2 || exit 1
  bin=$(swift build -c "$build" --show-bin-path)
  [ -f "$dir/cluster/ports" ] && scripts/cluster.sh stop "$dir/cluster" >/dev/null
  rm -rf "$dir" && mkdir -p "$dir/node"
  seeds=$(scripts/cluster.sh start "$dir/cluster" | sed -n 's/.*seeds //p')
  [ -n "$seeds" ] || exit 1
  mapfile -t cluster_ports < "$dir/cluster/ports"
  token=$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
  trap cluster_cleanup EXIT
}

declare -A node_port node_role

# start_node NAME ROLE [DURABILITY]: `allot serve` on the cluster, its pid in
# $dir/node-NAME.pid (a node started again from a subshell is found too),
# ready when this returns. The full node makes the citizen key in
# $dir/node; front nodes read it there. A node keeps its port. With
# fault_triggers=1, creating $dir/node-NAME.kill-after-debit makes the node
# kill itself between a move's debit and credit (FaultTrigger.swift).
fault_triggers=
start_node() {
  local name=$1 role=$2 durability=${3:-standard}
  node_role[$name]=$role
  # Never two on one port: the second would fail to bind and hide the first.
  if [ -f "$dir/node-$name.pid" ] && kill -0 "$(cat "$dir/node-$name.pid")" 2>/dev/null; then
    echo "start_node: node $name is still running" >&2
    return 1
  fi
  [ -n "${node_port[$name]:-}" ] \
    || node_port[$name]=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  env ${fault_triggers:+"ALLOT_FAULT_KILL_AFTER_DEBIT=$dir/node-$name.kill-after-debit"} \
    ALLOT_ADMIN_TOKEN=$token "$bin/allot" serve --redis-cluster "$seeds" --port "${node_port[$name]}" --node-id "$name" \
    --role "$role" --durability "$durability" --data-dir "$dir/node" --threads 1 --log-level warning \
    >>"$dir/node-$name.log" 2>&1 &
  echo $! > "$dir/node-$name.pid"
  disown $!  # a kill -9 of it is the point, not news for the terminal
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:${node_port[$name]}/readyz" >/dev/null && break; sleep 0.1; done
}

# (Safe under `set -e`: cluster-surge.sh runs with it.)
# start_nodes DURABILITY NAME:ROLE…: start_node for each, in order; their
# URLs (for allot-load's --url, the first sets the campaign up) in urls.
urls=()
start_nodes() {
  local durability=$1 spec
  shift
  for spec in "$@"; do
    start_node "${spec%%:*}" "${spec#*:}" "$durability"
    urls+=(--url "http://127.0.0.1:${node_port[${spec%%:*}]}")
  done
}

# Stops what the script started: $background (an injector), every node
# (SIGTERM: it drains into SQLite; killed if still there after 15 s), then
# the cluster.
background=
cluster_cleanup() {
  # Its process group (set -m), so what it has waiting ends too.
  if [ -n "$background" ]; then kill -- -"$background" 2>/dev/null || kill "$background" 2>/dev/null || true; fi
  local file pid alive node_pids=()
  for file in "$dir"/node-*.pid; do [ -f "$file" ] && node_pids+=("$(cat "$file")"); done
  if [ ${#node_pids[@]} -gt 0 ]; then
    kill "${node_pids[@]}" 2>/dev/null || true
    for _ in $(seq 1 150); do
      alive=0
      for pid in "${node_pids[@]}"; do if kill -0 "$pid" 2>/dev/null; then alive=1; fi; done
      [ "$alive" = 0 ] && break
      sleep 0.1
    done
    kill -9 "${node_pids[@]}" 2>/dev/null || true
  fi
  scripts/cluster.sh stop "$dir/cluster" >/dev/null || true
}
