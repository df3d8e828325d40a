#!/usr/bin/env bash
# Counts heap allocations per reservation on each thread of `allot serve`
# (the loops, the persister): perf uprobes on glibc's malloc, calloc, realloc
# and posix_memalign (Swift's allocations go through malloc; hiredis makes
# its reply objects with calloc), during 5 s of wrk reservations from a new
# citizen each. Needs perf and permission to add uprobes (root).
# Usage: scripts/bench/mallocs.sh   (ALLOT_BIN=path measures that build)
set -euo pipefail
cd "$(dirname "$0")/../.."
allot=${ALLOT_BIN:-}
if [ -z "$allot" ]; then swift build -c release --product allot >/dev/null; allot=.build/release/allot; fi
libc=$(ldconfig -p | awk '/libc.so.6 .*x86-64/ {print $NF; exit}')
probes=$(perf probe -l 2>/dev/null || true)
functions="malloc calloc realloc posix_memalign"
events=""
for function in $functions; do
  case "$probes" in *"probe_libc:$function "*) ;; *) perf probe -q -x "$libc" "$function" ;; esac
  events="$events -e probe_libc:$function"
done
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export ALLOT_ADMIN_TOKEN=bench-token
"$allot" serve --port "$port" --data-dir "$work" 2>"$work/server.log" &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
scripts/bench/setup_campaign.sh "http://127.0.0.1:$port" bench-token bench >/dev/null
sleep 0.6
perf stat $events --per-thread -p "$server" -o "$work/stat" -- sleep 6 &
counter=$!
sleep 0.5
(cd scripts/bench && WRK_CAMPAIGN=bench wrk -t2 -c64 -d5s -s reserve.lua "http://127.0.0.1:$port") > "$work/wrk.out"
wait $counter
requests=$(grep -oE '[0-9]+ requests in' "$work/wrk.out" | awk '{print $1}')
echo "$requests reservations; allocations per reservation, by thread (malloc + calloc + realloc + posix_memalign):"
awk -v n="$requests" '/probe_libc:/ {
    gsub(",", "", $2); split($3, event, ":"); if ($2 == 0) next
    total[$1] += $2; part[$1] = part[$1] sprintf(" %s %.2f", event[2], $2 / n)
  }
  END { for (thread in total) if (total[thread] > 0) printf "  %-28s %6.1f  (%s )\n", thread, total[thread] / n, part[thread] }' "$work/stat" | sort
