#!/usr/bin/env bash
# make demo: synthetic data → train → evaluate → report. Grows with the project; each step
# that is not built yet says so instead of pretending.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== aim-swift demo =="
echo "built so far: the compute core (tensors and kernels with forward and backward)."
echo "not built yet: synthetic data (aim-data synth), training (aim-train), evaluation (aim-eval), report (aim-report)."
bin/aim-bench --quick
