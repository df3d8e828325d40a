#!/usr/bin/env bash
# Runs the micro-benchmarks (Benchmarks/, ordo-one/benchmark) and checks them
# against the thresholds recorded in Benchmarks/Thresholds: allocation counts
# strictly, times within a relative tolerance. Exit 1 on a regression; an
# improvement passes (record it with: scripts/microbench.sh --update).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
if [ "${1:-}" = "--update" ]; then
  exec swift package --allow-writing-to-package-directory benchmark thresholds update \
    --path Benchmarks/Thresholds --no-progress
fi
swift package benchmark --no-progress
out=$(swift package benchmark thresholds check --path Benchmarks/Thresholds --no-progress 2>&1) || true
echo "$out" | grep -E "Deviations|│ p90|WORSE|better" || true
if echo "$out" | grep -q "is WORSE than"; then
  echo "microbench: regression against Benchmarks/Thresholds" >&2
  exit 1
fi
echo "microbench: within thresholds"
