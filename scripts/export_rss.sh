#!/usr/bin/env bash
# Measures the memory of a million-row export, both ways: the streamed
# HTTP endpoint (server RSS before, peak after) and `allot export` (peak
# RSS of the command). Usage: scripts/export_rss.sh [rows, default 1000000]
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-1000000}
scripts/deps.sh
swift build -c release --product allot >/dev/null
work=$(mktemp -d)
mkdir -p "$work/data"
db="$work/data/allot.db"
# The schema comes from the server itself; the rows straight from SQLite.
.build/release/allot token list --db "$db" >/dev/null
now=$(date +%s%3N)
sqlite3 "$db" <<SQL
INSERT INTO campaigns (id, name, status, id_scheme, per_citizen_limit, opens_at, closes_at, created_at, updated_at)
VALUES ('big', 'Big export', 'open', 'any', 1, 0, 4102444800000, $now, $now);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $rows)
INSERT INTO reservations (id, campaign_id, site_id, slot_id, status, code, citizen_key, created_at, updated_at)
SELECT printf('01M8%022d', i), 'big', 'hall-' || (i % 50), 'slot-' || (i % 2000), 'confirmed',
       printf('K%03d-%04d', i % 1000, i % 10000), printf('%032x', i), $now + i, $now + i FROM n;
SQL
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export ALLOT_ADMIN_TOKEN=export-token
.build/release/allot serve --port "$port" --data-dir "$work/data" --log-level warning 2>"$work/server.log" &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
rss() { grep -E "^$1:" /proc/$server/status | awk '{print $2}'; }
before=$(rss VmRSS)
start=$(date +%s%N)
bytes=$(curl -fs -H "Authorization: Bearer $ALLOT_ADMIN_TOKEN" \
  "http://127.0.0.1:$port/v1/admin/campaigns/big/reservations.csv" | tee >(wc -l > "$work/lines") | wc -c)
elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "machine: $(nproc) cores, $(uname -m)"
echo "HTTP export: $(( $(cat "$work/lines") - 1 )) rows, $bytes bytes in ${elapsed_ms} ms"
echo "  server RSS before: ${before} kB, after: $(rss VmRSS) kB, peak (VmHWM): $(rss VmHWM) kB"
/usr/bin/time -f "%M" -o "$work/cli.rss" .build/release/allot export big --db "$db" --format jsonl -o "$work/big.jsonl"
echo "allot export --format jsonl: $(wc -l < "$work/big.jsonl") rows, peak RSS $(cat "$work/cli.rss") kB"
