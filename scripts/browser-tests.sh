#!/usr/bin/env bash
# The citizen pages and the operator dashboard in a real browser: Debian's chromium and chromium-driver,
# driven by Selenium, with axe-core's accessibility scan (both from PyPI, in
# .venv-browser), against a live `allot serve --demo` this script starts with
# its own Redis and SQLite. BrowserTests/test_*.py say what is checked.
# Usage: scripts/browser-tests.sh   (ALLOT_BUILD=release tests a release build)
set -euo pipefail
cd "$(dirname "$0")/.."
sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
missing=()
for package in chromium chromium-driver fonts-noto-cjk; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "browser tests: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
venv=.venv-browser
requirements="selenium==4.38.0 axe-core-python==0.1.0"
if [ "$(cat "$venv/requirements" 2>/dev/null)" != "$requirements" ]; then
  if ! python3 -m venv --clear "$venv" 2>/dev/null; then
    $sudo apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv --clear "$venv"
  fi
  # shellcheck disable=SC2086
  "$venv/bin/pip" install -q --disable-pip-version-check $requirements
  echo "$requirements" > "$venv/requirements"
fi
configuration=${ALLOT_BUILD:-debug}
swift build -c "$configuration" --product allot >&2
bin=$(swift build -c "$configuration" --show-bin-path)
work=$(mktemp -d)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
# A Redis of the script's own (not the server's supervised one): the tests
# stop and continue it (SIGSTOP, SIGCONT) to see the "try again" pages.
redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$work" --appendonly yes --save '' --daemonize no \
  >"$work/redis.log" 2>&1 &
redis=$!
for _ in $(seq 1 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
ALLOT_ADMIN_TOKEN=browser-tests-admin-token "$bin/allot" serve --port "$port" --data-dir "$work" --redis "127.0.0.1:$redis_port" \
  --demo --log-level warning 2>"$work/server.log" &
server=$!
trap 'kill -CONT $redis 2>/dev/null; kill -TERM $server 2>/dev/null; wait $server 2>/dev/null; kill $redis 2>/dev/null; wait $redis 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fs "http://127.0.0.1:$port/readyz" >/dev/null || { echo "browser tests: the server did not get ready" >&2; cat "$work/server.log" >&2; exit 1; }
# Ready, and its demo campaign's times listed (the first snapshot may come a moment later).
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/v1/campaigns/demo/slots" 2>/dev/null | grep -q pharmacy-1-h8 && break; sleep 0.1; done
# CHROMIUM and CHROMEDRIVER name other binaries than Debian's.
# ALLOT_SCREENS=docs/screens keeps screenshots of the main pages there.
ALLOT_URL="http://127.0.0.1:$port" ALLOT_REDIS_PID=$redis ALLOT_ADMIN_TOKEN=browser-tests-admin-token \
  "$venv/bin/python" -m unittest -v BrowserTests/test_pages.py BrowserTests/test_booking.py BrowserTests/test_dashboard.py
