#!/usr/bin/env bash
# The whole test suite: pure unit tests, then live tests that start their
# own redis-server on free ports and SQLite files in temporary directories,
# then Schemathesis against the contract (openapi.yaml), then the citizen
# pages in a real browser (scripts/browser-tests.sh), then a short surge through the load harness, whose invariant checks must
# all pass (it starts its own server and Redis), then the short fault
# schedule (each fault once during a surge; nothing acknowledged may be
# lost), the same on a Redis Cluster, then 45 s of libFuzzer.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
swift build --build-tests
swift test "$@"
[ $# -eq 0 ] || exit 0   # a filtered run stops here
# The contract, checked by a machine: Schemathesis against a live server.
scripts/schemathesis.sh "${ALLOT_SCHEMATHESIS_SECONDS:-120}" > "${TMPDIR:-/tmp}/allot-schemathesis.log" 2>&1 \
  || { cat "${TMPDIR:-/tmp}/allot-schemathesis.log"; exit 1; }
sed -n '/SUMMARY/,$p' "${TMPDIR:-/tmp}/allot-schemathesis.log" | grep -E "generated|Seed|in [0-9.]+s" || true
# The citizen pages in Chromium (Selenium), with an axe-core scan.
scripts/browser-tests.sh > "${TMPDIR:-/tmp}/allot-browser-tests.log" 2>&1 \
  || { cat "${TMPDIR:-/tmp}/allot-browser-tests.log"; exit 1; }
grep -E "^Ran |^OK" "${TMPDIR:-/tmp}/allot-browser-tests.log"
report=$(mktemp -d)
trap 'rm -rf "$report"' EXIT
# Through scripts/load.sh, as `make load` runs it: the documented path.
ALLOT_BUILD=debug scripts/load.sh surge --citizens 8000 --places 2000 --slots 20 \
  --arrival-seconds 3 --connections 32 --report-dir "$report" > "$report/summary.txt" 2>"$report/progress.txt" \
  || { cat "$report/summary.txt" "$report/progress.txt"; exit 1; }
grep -E "^(ok|FAIL|met|miss) " "$report/summary.txt"
# A short lottery (issue 14): registrations over a window, the draw, the
# winners' reservations in SQLite, `allot draw verify` on the published
# files (and refusing them with one byte changed). `make lottery` runs the
# full one (a million registrations).
ALLOT_BUILD=debug scripts/load.sh lottery --registrations 10000 --places 1000 --slots 20 --window-seconds 8 \
  --connections 32 --report-dir "$report/lottery" > "$report/lottery.txt" 2>&1 \
  || { cat "$report/lottery.txt"; exit 1; }
grep -E "^(PASS|FAIL) " "$report/lottery.txt"
# A short hold and waitlist surge (issue 14): holders confirm, confirm
# late, cancel or walk away, and half the refused join the waitlist and are
# offered the places given back; every place must end confirmed or back on
# sale, every expiry within a second. `make holds` runs a larger one.
ALLOT_BUILD=debug scripts/load.sh holds --citizens 3000 --places 300 --slots 10 --arrival-seconds 4 --hold-seconds 2 \
  --connections 32 --report-dir "$report/holds" > "$report/holds.txt" 2>&1 \
  || { cat "$report/holds.txt"; exit 1; }
grep -E "^(PASS|FAIL) " "$report/holds.txt"
ALLOT_BUILD=debug scripts/load.sh faults --rate 300 --seed "${ALLOT_FAULT_SEED:-1}" \
  --report-dir "$report/faults" > "$report/faults.txt" 2>"$report/faults-progress.txt" \
  || { cat "$report/faults.txt" "$report/faults-progress.txt"; exit 1; }
grep -h "left out" "$report/faults-progress.txt" || true
grep -E "^(ok|FAIL) " "$report/faults.txt"
# The short cluster fault schedule: a Redis Cluster of 3 masters and 3
# replicas, two full and two front nodes, each of its five faults once
# (scripts/cluster-faults.sh; FAULTS=N there for a soak), replicated.
ALLOT_BUILD=debug SEED="${ALLOT_FAULT_SEED:-1}" scripts/cluster-faults.sh replicated 300 > "$report/cluster-faults.txt" 2>&1 \
  || { cat "$report/cluster-faults.txt"; exit 1; }
grep -E "^fault at|^(ok|FAIL) |^moves of" "$report/cluster-faults.txt"
scripts/fuzz.sh 45
