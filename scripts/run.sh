#!/usr/bin/env bash
# One command serves: installs what is missing, builds release, starts the
# server (with its own redis-server) and a demo campaign, prints curl lines.
# Extra arguments go to `allot serve` (e.g. --port 9090 --threads 4).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
swift build -c release --product allot
port=8080
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  [ "${args[$i]}" = "--port" ] && port=${args[$((i + 1))]}
done
mkdir -p var
if [ -z "${ALLOT_ADMIN_TOKEN:-}" ]; then
  [ -f var/admin.token ] || (umask 077; head -c 24 /dev/urandom | base64 | tr '+/' '-_' > var/admin.token)
  ALLOT_ADMIN_TOKEN=$(cat var/admin.token)
  export ALLOT_ADMIN_TOKEN
fi
.build/release/allot serve --demo "$@" &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server' INT TERM
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  kill -0 $server 2>/dev/null || { echo "allot: the server did not start" >&2; exit 1; }
  sleep 0.1
done
base="http://127.0.0.1:$port"
cat <<INFO

Allot is serving on $base with the demo campaign "demo" (id scheme cn-resident).
The admin token is in var/admin.token (or your ALLOT_ADMIN_TOKEN). Try:

  curl -s $base/v1/campaigns
  curl -s $base/v1/campaigns/demo/slots?site=pharmacy-1
  curl -s -X POST $base/v1/campaigns/demo/reservations \\
       -H 'Content-Type: application/json' \\
       -d '{"citizen_id": "11010519491231002X", "slot_id": "pharmacy-1-h8"}'
  curl -s $base/v1/reservations/<id from the answer above>
  curl -s -X DELETE $base/v1/reservations/<id>
  curl -s -H "Authorization: Bearer \$(cat var/admin.token)" $base/v1/admin/campaigns/demo/stats
  curl -s -H "Authorization: Bearer \$(cat var/admin.token)" $base/v1/admin/campaigns/demo/reservations.csv

Ctrl-C stops the server (and its redis-server) cleanly.
INFO
wait $server
