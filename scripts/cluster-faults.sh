#!/usr/bin/env bash
# Issue 12's faults during booking on a Redis Cluster, from a seeded
# schedule (the same seed gives the same faults in the same order at the
# same times, on the same victims). The kinds:
#   kill-master        kill -9 of a master (its replica takes over; node
#                      timeout 2 s); the old master is started again 5 s
#                      later and rejoins as a replica
#   reshard            1 000 slots moved from one master to another while
#                      booking (redis-cli --cluster reshard: MIGRATE, ASK,
#                      TRYAGAIN)
#   kill-front         kill -9 of a front node, started again a second later
#   kill-lease-holder  kill -9 of the full node holding the SQLite writer
#                      lease (the standby takes over when the lease ends,
#                      10 s); started again 4 s later, it stands by
#   kill-after-debit   a node killed between a move's debit and its credit
#                      (armed through its fault trigger, FaultTrigger.swift);
#                      the sweeper must land the move; started again
# Then allot-load's checks: every 201 in SQLite once, no oversell, no
# citizen over the limit, no booking without an attempt; and no move of
# places left half-way.
#
#   scripts/cluster-faults.sh [standard|replicated] [RATE]   (replicated 600)
#
# SEED (1) seeds the schedule; FAULTS (5: each kind once, in a seeded order;
# more: a soak, each round of five shuffled again) and SPACING (8 s between
# faults) shape it. ALLOT_BUILD=debug uses the test build (CI's short run).
# Two full nodes (p holds the lease, q stands by) and two front nodes (a, b)
# share the load; a campaign of 16 buckets with about as many places as
# attempts, so that places keep moving between buckets all run. Runs under
# var/cluster-faults/.
set -uo pipefail
cd "$(dirname "$0")/.."
durability=${1:-replicated}
rate=${2:-600}
[[ "$rate" =~ ^[1-9][0-9]*$ ]] || { echo "cluster-faults.sh: RATE is a whole number of reservations per second" >&2; exit 2; }
seed=${SEED:-1}
count=${FAULTS:-5}
spacing=${SPACING:-8}
warmup=6
dir=var/cluster-faults
kinds=(kill-master reshard kill-front kill-lease-holder kill-after-debit)

# The schedule, from the seed alone: rounds of every kind, each shuffled
# (Fisher-Yates on bash's seeded RANDOM), and a jitter of up to a fifth of
# the spacing on each time.
RANDOM=$seed
schedule=() at=()
while [ ${#schedule[@]} -lt "$count" ]; do
  round=("${kinds[@]}")
  for ((i = ${#round[@]} - 1; i > 0; i--)); do
    j=$((RANDOM % (i + 1))); t=${round[i]}; round[i]=${round[j]}; round[j]=$t
  done
  schedule+=("${round[@]:0:$((count - ${#schedule[@]}))}")
done
for i in "${!schedule[@]}"; do at+=($((warmup + i * spacing + RANDOM % (spacing * 200 + 1) / 1000))); done
seconds=$((warmup + count * spacing + 6))
# About one place per attempt (a few attempts go to no slot that has one).
places_per_slot=$((rate * seconds / 20))
echo "cluster faults: seed $seed, $count faults, $durability durability, $rate/s for $seconds s" >&2
for i in "${!schedule[@]}"; do printf '  at %3d s  %s\n' "${at[i]}" "${schedule[i]}" >&2; done

source scripts/cluster-lib.sh
cluster_setup
fault_triggers=1
start_nodes "$durability" p:full q:full a:front b:front
failed=0
say() { echo "fault at $(date +%T): $*" >&2; }
fail() { say "FAILED: $*"; failed=1; }
masters() {  # the ports of the masters that are up, in port order
  redis-cli -p "$(live_port)" cluster nodes | awk '$3 ~ /master/ && $3 !~ /fail/ { split($2, a, "[:@]"); print a[2] }' | sort -n
}
masters_with_replica() {  # those a kill -9 may take: a replica is there to take over
  local m
  for m in $(masters); do redis-cli -p "$m" info replication | grep -q '^connected_slaves:[1-9]' && echo "$m"; done
}
live_port() {
  local port
  for port in "${cluster_ports[@]}"; do redis-cli -p "$port" ping >/dev/null 2>&1 && { echo "$port"; return; }; done
}
# pick OPTION…: one of them into $picked, from the seeded RANDOM (not in a
# $(…) subshell: bash seeds a subshell's RANDOM afresh).
pick() { picked=${*:RANDOM % $# + 1:1}; }
node_pid() { cat "$dir/node-$1.pid"; }
node_alive() { kill -0 "$(node_pid "$1")" 2>/dev/null; }
# The lease value when its holder was killed: it names a dead process until
# it expires (10 s), and kill-lease-holder must not take it for a live one.
stale_lease=
note_if_lease_holder() {
  local held
  held=$(redis-cli -c -p "$(live_port)" get '{allot:writer}:lease')
  [ "${held%%/*}" = "$1" ] && stale_lease=$held
  return 0
}
unsettled_moves() {  # records of moves debited and not settled, over the masters ("unknown" if none answers)
  local m key left=0 up
  up=$(masters)
  [ -n "$up" ] || { echo unknown; return; }
  for m in $up; do
    while read -r key; do [ -n "$key" ] && left=$((left + $(redis-cli -p "$m" hlen "$key"))); done \
      < <(redis-cli -p "$m" --scan --pattern '*:xfer')
  done
  echo "$left"
}
# Before each fault: what the last one killed is back, and the cluster
# serves every slot again (a reshard needs it; a fault on a fault is not
# the schedule's).
settle() {
  wait
  for _ in $(seq 1 150); do
    redis-cli -p "$(live_port)" cluster info 2>/dev/null | grep -q 'cluster_state:ok' && return
    sleep 0.1
  done
  fail "the cluster was not serving every slot 15 s after the last fault"
}

kill_master() {
  local port pid candidates
  candidates=$(masters_with_replica)
  [ -n "$candidates" ] || { fail "no master has a replica to take over"; return; }
  pick $candidates; port=$picked
  pid=$(cat "$dir/cluster/$port/redis.pid")
  say "kill -9 master :$port"
  kill -9 "$pid"
  (sleep 5; scripts/cluster.sh start-node "$port" "$dir/cluster" && say "redis :$port started again") &
}
reshard() {
  local up from to
  mapfile -t up < <(masters)
  pick "${up[@]}"; from=$picked
  pick $(printf '%s\n' "${up[@]}" | grep -vx "$from"); to=$picked
  say "reshard 1000 slots :$from -> :$to"
  redis-cli --cluster reshard "127.0.0.1:$from" --cluster-from "$(redis-cli -p "$from" cluster myid)" \
    --cluster-to "$(redis-cli -p "$to" cluster myid)" --cluster-slots 1000 --cluster-yes >>"$dir/reshard.log" 2>&1 \
    || fail "reshard did not finish (see $dir/reshard.log)"
  say "reshard done: $(grep -c '^Moving slot' "$dir/reshard.log") slots moved so far"
}
restart_later() {  # restart_later SECONDS NAME: an Allot node, started again
  (sleep "$1"; start_node "$2" "${node_role[$2]}" "$durability"; say "node $2 started again") &
}
kill_front() {
  local name
  pick a b; name=$picked
  say "kill -9 front node $name"
  kill -9 "$(node_pid "$name")"
  restart_later 1 "$name"
}
kill_lease_holder() {
  local held holder
  # The holder a fault killed may still be named: wait for its successor.
  for _ in $(seq 1 150); do
    held=$(redis-cli -c -p "$(live_port)" get '{allot:writer}:lease')
    [ -n "$held" ] && [ "$held" != "$stale_lease" ] && break
    sleep 0.1
  done
  holder=${held%%/*}
  case "$holder" in
    p|q) if [ "$held" = "$stale_lease" ] || ! node_alive "$holder"; then
           fail "no live node holds the writer lease (it is '$held')"; return
         fi
         say "kill -9 full node $holder (the lease holder)"
         stale_lease=$held
         kill -9 "$(node_pid "$holder")"
         restart_later 4 "$holder" ;;
    *) fail "no node holds the writer lease (got '$held')" ;;
  esac
}
kill_after_debit() {
  local name pid
  pick p q a b; name=$picked
  pid=$(node_pid "$name")
  node_alive "$name" || { fail "node $name is not running to be armed"; return; }
  note_if_lease_holder "$name"
  touch "$dir/node-$name.kill-after-debit"
  say "node $name armed to kill itself after its next debit"
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    rm -f "$dir/node-$name.kill-after-debit"
    sleep 0.2
    # It may have fired between the last look and the removal.
    if kill -0 "$pid" 2>/dev/null; then fail "node $name made no move in 10 s"; return; fi
  fi
  say "node $name killed itself between a debit and its credit; moves not settled now: $(unsettled_moves)"
  restart_later 1 "$name"
}

faults() {
  local i start=$SECONDS
  RANDOM=$((seed + 1))  # a subshell's RANDOM is seeded afresh: the picks from the seed too
  for i in "${!schedule[@]}"; do
    settle
    while [ $((SECONDS - start)) -lt "${at[i]}" ]; do sleep 0.2; done
    "${schedule[i]//-/_}"
  done
  wait
  return $failed
}
# In a process group of its own: a cleanup on a signal ends the restarts it
# has waiting too (cluster_cleanup).
set -m
faults &
background=$!
set +m
ALLOT_ADMIN_TOKEN=$token "$bin/allot-load" steady "${urls[@]}" --db "$dir/node/allot.db" --data-dir "$dir/node" \
  --buckets 16 --slots 20 --rate "$rate" --duration "$seconds" --places-per-slot "$places_per_slot" \
  --faults-from-outside --connections 32 --seed "$seed" --report-dir "$dir/report"
status=$?
wait "$background" 2>/dev/null || failed=1
background=
# A move a killed node left half-way is the sweeper's once it is 10 s old.
for _ in $(seq 1 60); do [ "$(unsettled_moves)" = 0 ] && break; sleep 0.5; done
left=$(unsettled_moves)
echo "moves of places not settled after the run: $left"
[ "$left" = 0 ] || failed=1
echo "faults injected as scheduled: $([ $failed -eq 0 ] && echo yes || echo no)"
echo "durability $durability: the harness's checks $([ $status -eq 0 ] && echo held || echo failed)"
[ $status -eq 0 ] && [ $failed -eq 0 ]
