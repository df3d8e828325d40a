#!/usr/bin/env bash
# libFuzzer over everything a citizen's request goes through before Redis:
# routing, JSON, request and operator-body decoding, id schemes, ids,
# timestamps, X-Forwarded-For (Fuzz/allot-fuzz). Usage: scripts/fuzz.sh [seconds, default 60]
# New interesting inputs go to a scratch corpus seeded from Fuzz/corpus; a
# crash leaves its input in Fuzz/crashes/ (keep it in Fuzz/corpus once fixed)
# and exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
scripts/deps.sh
ALLOT_FUZZ=1 swift build --product allot-fuzz --scratch-path .build-fuzz -Xswiftc -sanitize=fuzzer,address >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp Fuzz/corpus/* "$work/"
mkdir -p Fuzz/crashes
.build-fuzz/debug/allot-fuzz "$work" -max_total_time="$seconds" -max_len=8192 -timeout=5 -rss_limit_mb=2048 \
  -artifact_prefix=Fuzz/crashes/ -print_final_stats=1 2>"$work/fuzz.log" \
  || { tail -40 "$work/fuzz.log"; exit 1; }
grep -E "^(Done|stat::number_of_executed_units|stat::peak_rss_mb)" "$work/fuzz.log" || tail -3 "$work/fuzz.log"
