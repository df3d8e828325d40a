#!/usr/bin/env bash
# The whole test suite: pure unit tests, then live tests that start their
# own redis-server on free ports and SQLite files in temporary directories,
# then a short surge through the load harness, whose invariant checks must
# all pass (it starts its own server and Redis), then the short fault
# schedule (each fault once during a surge; nothing acknowledged may be
# lost), then 45 s of libFuzzer.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
swift build --build-tests
swift test "$@"
[ $# -eq 0 ] || exit 0   # a filtered run stops here
swift build --product allot --product allot-load
report=$(mktemp -d)
trap 'rm -rf "$report"' EXIT
.build/debug/allot-load surge --allot .build/debug/allot --citizens 8000 --places 2000 --slots 20 \
  --arrival-seconds 3 --connections 32 --report-dir "$report" > "$report/summary.txt" 2>"$report/progress.txt" \
  || { cat "$report/summary.txt" "$report/progress.txt"; exit 1; }
grep -E "^(ok|FAIL|met|miss) " "$report/summary.txt"
.build/debug/allot-load faults --allot .build/debug/allot --rate 300 --seed "${ALLOT_FAULT_SEED:-1}" \
  --report-dir "$report/faults" > "$report/faults.txt" 2>"$report/faults-progress.txt" \
  || { cat "$report/faults.txt" "$report/faults-progress.txt"; exit 1; }
grep -h "left out" "$report/faults-progress.txt" || true
grep -E "^(ok|FAIL) " "$report/faults.txt"
scripts/fuzz.sh 45
