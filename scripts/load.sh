#!/usr/bin/env bash
# The load harness, built and run: builds `allot` and `allot-load` (each
# product on its own: `swift build --product a --product b` builds only the
# last one) and runs `allot-load` with the arguments given, against a server
# it starts from that build. Without arguments: the 1 000 000-citizen surge.
# ALLOT_BUILD=debug uses a debug build (what the test command does).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
configuration=${ALLOT_BUILD:-release}
swift build -c "$configuration" --product allot >&2
swift build -c "$configuration" --product allot-load >&2
bin=$(swift build -c "$configuration" --show-bin-path)
[ $# -gt 0 ] || set -- surge --citizens 1000000 --places 100000 --slots 200 --arrival-seconds 30
case " $* " in
  *" --allot "* | *" --url "*) exec "$bin/allot-load" "$@" ;;
  *) exec "$bin/allot-load" "$@" --allot "$bin/allot" ;;
esac
