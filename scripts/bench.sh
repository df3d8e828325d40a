#!/usr/bin/env bash
# Measures, in one sitting on this machine: Allot's reservation path and
# GET /slots and the open availability data under wrk, the HTTP ceiling of the same server (/healthz), and
# the Redis ceiling of Allot's own reservation function (redis-benchmark,
# FCALL with its real keys). Prints each Allot figure as a ratio
# to its ceiling, and for each run the CPU µs per request of each part
# (each loop thread, the persister thread, the rest of the process,
# redis-server, wrk), read from /proc (scripts/bench/cpu.py). When
# ../shared/perf is there, it also builds and measures the C reference
# server (libevent + hiredis, one light script, nothing parsed) against the
# same Redis with the same wrk script, and prints Allot's ratio to it.
# Usage: scripts/bench.sh [seconds per run, default 10]
# ALLOT_BIN=path measures that build instead of building this tree (for
# before/after runs); PERF_OUT=file records `perf record -g` of the server
# during the reservation run.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
scripts/deps.sh
command -v wrk >/dev/null || { sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo; $sudo apt-get install -y -qq wrk >/dev/null; }
allot=${ALLOT_BIN:-}
if [ -z "$allot" ]; then swift build -c release --product allot >/dev/null; allot=.build/release/allot; fi
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export ALLOT_ADMIN_TOKEN=bench-token
# DURABILITY=strict measures with appendfsync always (README "Durability").
"$allot" serve --port "$port" --data-dir "$work" --durability "${DURABILITY:-standard}" \
  2>"$work/server.log" &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
base="http://127.0.0.1:$port"
scripts/bench/setup_campaign.sh "$base" bench-token bench >/dev/null
sleep 0.6
redis_port=$(grep -o 'port=[0-9]*' "$work/server.log" | head -1 | cut -d= -f2)

redis_pid=$(pgrep -P "$server" -x redis-server | head -1)

wrk_rate() { grep Requests/sec | awk '{print $2}'; }
wrk_p99() { grep -E '^ +99%' | awk '{print $2}'; }
wrk_count() { grep -oE '[0-9]+ requests in' | awk '{print $1}'; }
cpu=scripts/bench/cpu.py
# measure NAME PIDS WRK-ARGS…: runs wrk, keeps its output in $work/NAME.out
# and the CPU µs per request of each part in $work/NAME.cpu.
measure() {
  local name=$1 pids=$2; shift 2
  local before after
  before=$(python3 $cpu snapshot $pids)
  (cd scripts/bench && python3 ../../$cpu run "$work/$name.wrkcpu" -- wrk "$@") > "$work/$name.out"
  after=$(python3 $cpu snapshot $pids)
  local count; count=$(wrk_count < "$work/$name.out")
  { python3 $cpu diff "$before" "$after" "$count"
    python3 -c "import sys; print(f'  {\"wrk (load generator)\":<32} {float(sys.argv[1]) * 1e6 / max(1, int(sys.argv[2])):8.1f} µs/request')" \
      "$(cat "$work/$name.wrkcpu")" "$count"; } > "$work/$name.cpu"
}

echo "machine: $(nproc) cores, $(uname -m); wrk -t2 -c64 -d${seconds}s on the same box; durability ${DURABILITY:-standard}"
measure healthz "$server $redis_pid" -t2 -c64 -d"${seconds}s" --latency "$base/healthz"
measure slots "$server $redis_pid" -t2 -c64 -d"${seconds}s" --latency "$base/v1/campaigns/bench/slots"
# The open data as pollers take it (gzip; curl --compressed, browsers and
# Python's requests all ask for it), and plain.
measure opendata "$server $redis_pid" -t2 -c64 -d"${seconds}s" --latency -H 'Accept-Encoding: gzip' \
  "$base/open/v1/campaigns/bench/availability.json"
measure opendata_plain "$server $redis_pid" -t2 -c64 -d"${seconds}s" --latency "$base/open/v1/campaigns/bench/availability.json"
# A poller that sends back the ETag it has: 304 until a place changes.
etag=$(curl -fsI "$base/open/v1/campaigns/bench/availability.json" | tr -d '\r' | sed -n 's/^ETag: //Ip')
measure opendata_304 "$server $redis_pid" -t2 -c64 -d"${seconds}s" --latency -H "If-None-Match: $etag" \
  "$base/open/v1/campaigns/bench/availability.json"
export WRK_CAMPAIGN=bench
if [ -n "${PERF_OUT:-}" ]; then perf record -F 999 -g -p "$server" -o "$PERF_OUT" -- sleep "$seconds" 2>/dev/null & fi
measure reserve "$server $redis_pid" -t2 -c64 -d"${seconds}s" --latency -s reserve.lua "$base"
batches=$(curl -fs "$base/metrics" | awk '/^allot_persist_batch_rows_count/ {n=$2} /^allot_persist_batch_rows_sum/ {s=$2} END {if (n > 0) printf "%d batches, %.0f rows each on average", n, s / n}')
healthz=$(cat "$work/healthz.out"); slots=$(cat "$work/slots.out"); reserve=$(cat "$work/reserve.out")
opendata=$(cat "$work/opendata.out"); opendata_plain=$(cat "$work/opendata_plain.out"); opendata_304=$(cat "$work/opendata_304.out")
non2xx=$(echo "$reserve" | grep -o 'Non-2xx or 3xx responses: [0-9]*' || true)

# The C reference server, on the same Redis (its own keys), driven alike.
reference=""
perf=../shared/perf
if [ -f "$perf/evsrv.c" ] && gcc -O2 -o "$work/evsrv" "$perf/evsrv.c" -levent -lhiredis 2>"$work/evsrv.build"; then
  redis-cli -p "$redis_port" set slot:1:left 1000000000 >/dev/null
  light=$(redis-cli -p "$redis_port" script load "$(cat "$perf/reserve-light.lua")")
  reference_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$work/evsrv" "$reference_port" eval "$redis_port" "$light" 2>"$work/evsrv.log" &
  evsrv=$!
  for _ in $(seq 1 50); do curl -s "http://127.0.0.1:$reference_port/" >/dev/null 2>&1 && break; sleep 0.1; done
  measure reference "$evsrv $redis_pid" -t2 -c64 -d"${seconds}s" --latency -s reserve.lua "http://127.0.0.1:$reference_port"
  kill "$evsrv" 2>/dev/null; wait "$evsrv" 2>/dev/null || true
  reference=$(cat "$work/reference.out")
else
  echo "(no C reference: $perf/evsrv.c is not there, or did not build)"
fi

# The reservation function as the server loaded it (its name carries the
# library's version: Scripts.swift).
reserve_function=$(redis-cli -p "$redis_port" function list | grep -o 'allot_reserve_[0-9a-f]*' | head -1)
redis_ceiling=$(redis-benchmark -p "$redis_port" -n 200000 -c 32 -P 16 -r 100000000 -q fcall "$reserve_function" 10 \
  '{c:bench}:cfg' '{c:bench}:rem' '{c:bench}:held' '{c:bench}:stats' '{c:bench}:recs' '{c:bench}:ev' \
  '{c:bench}:bucket:g' '{c:bench}:bucket:ip:x' '{c:bench}:bucket:c:__rand_int__' '{c:bench}:idem:-' \
  s1 hall "RID__rand_int__" CODE "ck__rand_int__" '' 86400 1000000000 2>/dev/null | tr '\r' '\n' | grep -o '[0-9.]* requests per second' | tail -1 | awk '{print $1}')

h=$(echo "$healthz" | wrk_rate); s=$(echo "$slots" | wrk_rate); r=$(echo "$reserve" | wrk_rate); o=$(echo "$opendata" | wrk_rate); op=$(echo "$opendata_plain" | wrk_rate); o304=$(echo "$opendata_304" | wrk_rate)
printf '\n%-38s %12s %10s\n' "measure" "requests/s" "p99"
printf '%-38s %12s %10s\n' "GET /healthz (HTTP ceiling)" "$h" "$(echo "$healthz" | wrk_p99)"
printf '%-38s %12s %10s\n' "GET /v1/campaigns/bench/slots" "$s" "$(echo "$slots" | wrk_p99)"
printf '%-38s %12s %10s\n' "GET /open/v1/…/availability.json, gzip" "$o" "$(echo "$opendata" | wrk_p99)"
printf '%-38s %12s %10s\n' "the same, plain (12 KB)" "$op" "$(echo "$opendata_plain" | wrk_p99)"
printf '%-38s %12s %10s\n' "the same, If-None-Match (304)" "$o304" "$(echo "$opendata_304" | wrk_p99)"
printf '%-38s %12s %10s\n' "POST reservations (new citizen each)" "$r" "$(echo "$reserve" | wrk_p99)"
[ -n "$reference" ] && printf '%-38s %12s %10s\n' "C reference server (../shared/perf)" \
  "$(echo "$reference" | wrk_rate)" "$(echo "$reference" | wrk_p99)"
printf '%-38s %12s %10s\n' "reserve function alone (redis-benchmark -P16)" "$redis_ceiling" "-"
for name in healthz slots opendata opendata_plain opendata_304 reserve reference; do
  [ -f "$work/$name.cpu" ] || continue
  echo; echo "CPU per request, $name:"; cat "$work/$name.cpu"
done
python3 - "$h" "$s" "$r" "$redis_ceiling" "$(echo "$reference" | wrk_rate)" "$o" "$op" "$o304" <<'PY'
import sys
h, s, r, c = (float(x) for x in sys.argv[1:5])
print(f"\nslots / HTTP ceiling:          {s / h:.2f}")
print(f"open data / HTTP ceiling:      {float(sys.argv[6]) / h:.2f} gzip (issue 13: at least 0.9), {float(sys.argv[7]) / h:.2f} plain, {float(sys.argv[8]) / h:.2f} 304")
print(f"reservations / HTTP ceiling:   {r / h:.2f}")
print(f"reservations / script ceiling: {r / c:.2f}")
if sys.argv[5]:
    print(f"reservations / C reference:    {r / float(sys.argv[5]):.2f}")
PY
echo "persister: ${batches:-no batches}"
[ -n "$non2xx" ] && echo "reservation run: $non2xx (should be none: every citizen is new)"
exit 0
