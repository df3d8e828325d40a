#!/usr/bin/env bash
# The whole test suite: pure unit tests, then live tests that start their
# own redis-server on free ports and SQLite files in temporary directories.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
swift build --build-tests
swift test "$@"
