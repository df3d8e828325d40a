#!/usr/bin/env bash
# Runs Schemathesis (property-based API testing from the contract) against a
# live `allot serve` it starts with its own Redis and SQLite: every
# operation of openapi.yaml, positive and negative data, stateful links, all
# checks (schemathesis.toml says which statuses each check may see, and why).
# Any 5xx, crash, or answer outside the document fails the run.
# Usage: scripts/schemathesis.sh [seconds, default 150]
# ALLOT_BUILD=release tests a release build (default: debug, as the tests).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-150}
venv=.venv-schemathesis
version=4.32.5
if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$version"; then
  # Debian's own python3 makes virtual environments only with python3-venv.
  if ! python3 -m venv --clear "$venv" 2>/dev/null; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv --clear "$venv"
  fi
  "$venv/bin/pip" install -q --disable-pip-version-check "schemathesis==$version"
fi
configuration=${ALLOT_BUILD:-debug}
swift build -c "$configuration" --product allot >&2
bin=$(swift build -c "$configuration" --show-bin-path)
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export ALLOT_ADMIN_TOKEN=schemathesis-admin-token
"$bin/allot" serve --port "$port" --data-dir "$work" --demo --log-level warning 2>"$work/server.log" &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
status=0
# One worker: with two threads, Hypothesis's lambda descriptions call
# ast.parse concurrently, and CPython 3.11's AST conversion keeps its
# recursion depth in state the threads share ("AST constructor recursion
# depth mismatch": a SystemError inside the tool, seen once in a fresh-clone
# run whose every case had passed).
"$venv/bin/schemathesis" run openapi.yaml --url "http://127.0.0.1:$port" \
  --header "Authorization: Bearer $ALLOT_ADMIN_TOKEN" --checks all --mode all \
  --phases examples,coverage,fuzzing,stateful --max-time "$seconds" --seed "${ALLOT_SCHEMATHESIS_SEED:-1}" \
  --workers 1 --report junit --report-dir "$work/report" --no-color || status=$?
# The server must still be alive: a crash fails the run whatever the checks said.
kill -0 $server 2>/dev/null || { echo "schemathesis: the server died" >&2; tail -20 "$work/server.log" >&2; exit 1; }
exit $status
