#!/usr/bin/env bash
# Measures, in one sitting on this machine: Allot's reservation path and
# GET /slots under wrk, the HTTP ceiling of the same server (/healthz), and
# the Redis ceiling of Allot's own reservation script (redis-benchmark,
# EVALSHA with the script's real keys). Prints each Allot figure as a ratio
# to its ceiling. Usage: scripts/bench.sh [seconds per run, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
scripts/deps.sh
command -v wrk >/dev/null || { sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo; $sudo apt-get install -y -qq wrk >/dev/null; }
swift build -c release --product allot >/dev/null
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export ALLOT_ADMIN_TOKEN=bench-token
# DURABILITY=strict measures with appendfsync always (README "Durability").
.build/release/allot serve --port "$port" --data-dir "$work" --durability "${DURABILITY:-standard}" \
  2>"$work/server.log" &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
base="http://127.0.0.1:$port"
scripts/bench/setup_campaign.sh "$base" bench-token bench >/dev/null
sleep 0.6
redis_port=$(grep -o 'port=[0-9]*' "$work/server.log" | head -1 | cut -d= -f2)

wrk_rate() { grep Requests/sec | awk '{print $2}'; }
wrk_p99() { grep -E '^ +99%' | awk '{print $2}'; }

echo "machine: $(nproc) cores, $(uname -m); wrk -t2 -c64 -d${seconds}s on the same box; durability ${DURABILITY:-standard}"
healthz=$(wrk -t2 -c64 -d"${seconds}s" --latency "$base/healthz")
slots=$(wrk -t2 -c64 -d"${seconds}s" --latency "$base/v1/campaigns/bench/slots")
reserve=$(cd scripts/bench && WRK_CAMPAIGN=bench wrk -t2 -c64 -d"${seconds}s" --latency -s reserve.lua "$base")
non2xx=$(echo "$reserve" | grep -o 'Non-2xx or 3xx responses: [0-9]*' || true)

# The script as the server loads it: token_bucket.lua in front (Scripts.swift).
script="$(cat Sources/AllotServer/RedisContract/Scripts/token_bucket.lua)
$(cat Sources/AllotServer/RedisContract/Scripts/reserve.lua)"
sha=$(redis-cli -p "$redis_port" script load "$script")
redis_ceiling=$(redis-benchmark -p "$redis_port" -n 200000 -c 32 -P 16 -r 100000000 -q evalsha "$sha" 10 \
  '{c:bench}:cfg' '{c:bench}:rem' '{c:bench}:held' '{c:bench}:stats' '{c:bench}:recs' '{c:bench}:ev' \
  '{c:bench}:tb:g' '{c:bench}:tb:ip:x' '{c:bench}:tb:c:__rand_int__' '{c:bench}:idem:-' \
  s1 hall "RID__rand_int__" CODE "ck__rand_int__" '' 86400 1000000000 2>/dev/null | tr '\r' '\n' | grep -o '[0-9.]* requests per second' | tail -1 | awk '{print $1}')

h=$(echo "$healthz" | wrk_rate); s=$(echo "$slots" | wrk_rate); r=$(echo "$reserve" | wrk_rate)
printf '\n%-38s %12s %10s\n' "measure" "requests/s" "p99"
printf '%-38s %12s %10s\n' "GET /healthz (HTTP ceiling)" "$h" "$(echo "$healthz" | wrk_p99)"
printf '%-38s %12s %10s\n' "GET /v1/campaigns/bench/slots" "$s" "$(echo "$slots" | wrk_p99)"
printf '%-38s %12s %10s\n' "POST reservations (new citizen each)" "$r" "$(echo "$reserve" | wrk_p99)"
printf '%-38s %12s %10s\n' "reserve.lua alone (redis-benchmark -P16)" "$redis_ceiling" "-"
python3 - "$h" "$s" "$r" "$redis_ceiling" <<'PY'
import sys
h, s, r, c = (float(x) for x in sys.argv[1:])
print(f"\nslots / HTTP ceiling:          {s / h:.2f}")
print(f"reservations / HTTP ceiling:   {r / h:.2f}")
print(f"reservations / script ceiling: {r / c:.2f}")
PY
[ -n "$non2xx" ] && echo "reservation run: $non2xx (should be none: every citizen is new)"
exit 0
