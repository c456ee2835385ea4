#!/usr/bin/env bash
# make bench: runs the benchmarks side by side (ours and PyTorch's training step in one run) and
# writes BENCHMARKS.md. PyTorch comes from a private virtual environment, bench/.venv (git-ignored),
# created here with `pip install torch numpy` when missing; BENCH_PYTHON=/path/to/python uses an
# existing interpreter with torch instead.
#
# CPU_CLASS=avx2 (make bench CPU_CLASS=avx2) runs the same benchmarks as a CPU with only AVX2 and
# FMA would (AIM_CPU_FEATURES=avx2,fma: OpenBLAS Haswell kernels, oneDNN and BLIS held to AVX2,
# PyTorch held to AVX2 through ATEN_CPU_CAPABILITY / MKL_ENABLE_INSTRUCTIONS / ONEDNN_MAX_CPU_ISA)
# and writes BENCHMARKS_AVX2.md, so one machine gives figures for both classes. Nothing is emulated
# instruction by instruction: the same cores run narrower code, so clock, caches and memory are
# this machine's, not an AVX2 CPU's.
set -euo pipefail
cd "$(dirname "$0")/.."
# BENCH_OUTPUT=FILE writes elsewhere (e.g. one file per machine: BENCHMARKS_AMX.md).
output=${BENCH_OUTPUT:-BENCHMARKS.md}
case "${CPU_CLASS:-native}" in
    native|"") ;;
    avx2) export AIM_CPU_FEATURES=avx2,fma; output=BENCHMARKS_AVX2.md ;;
    avx512) export AIM_CPU_FEATURES=avx2,fma,avx512; output=BENCHMARKS_AVX512.md ;;
    *) echo "bench: CPU_CLASS must be native, avx2 or avx512, got '${CPU_CLASS}'" >&2; exit 2 ;;
esac
py="${BENCH_PYTHON:-bench/.venv/bin/python}"
if [ -z "${BENCH_PYTHON:-}" ] && ! { [ -x "$py" ] && "$py" -c "import torch, numpy" 2>/dev/null; }; then
    echo "bench: creating bench/.venv with torch and numpy (first run only)" >&2
    python3 -m venv bench/.venv
    # PyPI's Linux torch wheel is the CUDA build (several GB with its nvidia-* wheels) unless the
    # CPU index (download.pytorch.org/whl/cpu) is configured for pip; either runs on the CPU here.
    bench/.venv/bin/pip install --quiet torch numpy || echo "bench: pip reported an error; checking whether torch imports" >&2
fi
"$py" -c "import torch" || { echo "bench: $py cannot import torch" >&2; exit 1; }
echo "bench: load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
# OpenBLAS's own threads (rarely woken: our loops run its products) sleep right after a call;
# OpenMP keeps libgomp's default wait, as users run (aim-bench removes this for the PyTorch child).
export OPENBLAS_THREAD_TIMEOUT="${OPENBLAS_THREAD_TIMEOUT:-4}"
bin/aim-bench --torch-python "$py" --output "$output" "$@"
# The allreduce's share of a 2-rank step and the 1-16 node scaling model (docs/SCALING.md): about
# 4 minutes; BENCH_SKIP_ALLREDUCE=1 leaves it out (e.g. with --only).
if [ -z "${BENCH_SKIP_ALLREDUCE:-}" ]; then
    tools/allreduce_share.sh >> "$output"
fi
