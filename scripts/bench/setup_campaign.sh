#!/usr/bin/env bash
# Creates the benchmark campaign: scheme "cn-resident", 100 slots of ample capacity.
# Usage: setup_campaign.sh URL TOKEN [CAMPAIGN]
set -euo pipefail
url=$1 token=$2 campaign=${3:-bench}
auth=(-H "Authorization: Bearer $token" -H "Content-Type: application/json")
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
later=$(date -u -d '+1 day' +%Y-%m-%dT%H:%M:%SZ)
curl -fsS "${auth[@]}" -X POST "$url/v1/admin/campaigns" -d "{\"id\":\"$campaign\",\"name\":\"Benchmark\",\"status\":\"open\",\"id_scheme\":\"cn-resident\",\"per_citizen_limit\":1,\"opens_at\":\"2020-01-01T00:00:00Z\",\"closes_at\":\"$later\"}" >/dev/null
curl -fsS "${auth[@]}" -X PUT "$url/v1/admin/campaigns/$campaign/sites" -d '{"sites":[{"id":"hall","name":"Hall","address":"1 Bench Road"}]}' >/dev/null
slots=$(for i in $(seq 0 99); do printf '{"id":"s%d","site_id":"hall","starts_at":"2030-01-01T09:00:00Z","ends_at":"2030-01-01T10:00:00Z","capacity":1000000}' "$i"; if [ "$i" -lt 99 ]; then printf ','; fi; done)
curl -fsS "${auth[@]}" -X PUT "$url/v1/admin/campaigns/$campaign/slots" -d "{\"slots\":[$slots]}" >/dev/null
echo "campaign $campaign ready at $url (now $now)"
