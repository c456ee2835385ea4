#!/usr/bin/env bash
# make bench: runs the benchmarks side by side and writes BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bin/aim-bench --output BENCHMARKS.md "$@"
