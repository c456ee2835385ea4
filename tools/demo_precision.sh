#!/usr/bin/env bash
# The demo's accuracy under model.precision=bf16 against fp32 (issue 7, "bf16 accuracy").
# Runs the steps of tools/demo.sh (synthetic motion data, a tiny ViT pretrained on stills in fp32
# and frozen, then frozen space-only and AIM under mpirun -n 2 with 1 thread per rank, then
# multi-view evaluation), once per precision, all on the same fp32-pretrained backbone; the
# precision is set for training and evaluation alike. Prints a markdown table.
#
#   tools/demo_precision.sh                     # fp32 and bf16, seed 0
#   SEEDS="0 1" tools/demo_precision.sh         # AIM and space-only again with train.seed=1
#   AIM_BIN=/path/to/bin W=/tmp/demo_prec tools/demo_precision.sh
#
# Environment: AIM_BIN (default bin), W (work dir, default work_dirs/demo_precision; it is
# emptied), RANKS (default 2), PRECISIONS (default "fp32 bf16"), SEEDS (default 0).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${AIM_BIN:-bin}
W=${W:-work_dirs/demo_precision}
RANKS=${RANKS:-2}
PRECISIONS=${PRECISIONS:-fp32 bf16}
SEEDS=${SEEDS:-0}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# OpenBLAS's own threads (rarely woken: our loops run its products) sleep right after a call.
export OPENBLAS_THREAD_TIMEOUT="${OPENBLAS_THREAD_TIMEOUT:-4}"
die() { echo "demo_precision: $*" >&2; exit 1; }
for t in aim-data aim-train aim-model aim-eval; do [ -x "$BIN/$t" ] || die "$BIN/$t not found (build first or set AIM_BIN)"; done

D=$W/data
rm -rf "$W"; mkdir -p "$W"
echo "== synthetic data and fp32 backbone in $W" >&2
"$BIN/aim-data" synth "$D" --classes 4 --per-class 32 --stills-per-class 40 >"$W/synth.log" 2>&1 || die "aim-data synth failed (see $W/synth.log)"
DATA=(--set data.root="$D" --set data.train="$D/train_list.txt" --set data.val="$D/val_list.txt" --set model.num_classes=4)
"$BIN/aim-train" --config configs/debug/tiny_pretrain.yaml --set data.root="$D" \
    --set data.train="$D/stills_train_list.txt" --set data.val="$D/stills_val_list.txt" \
    --work-dir "$W/pretrain" --threads 2 >"$W/pretrain.log" 2>&1 || die "pretraining failed (see $W/pretrain.log)"
"$BIN/aim-model" export-backbone --config configs/debug/tiny_pretrain.yaml \
    --checkpoint "$W/pretrain/latest.safetensors" --output "$W/backbone.safetensors" >/dev/null || die "export-backbone failed"

for p in $PRECISIONS; do
  for s in $SEEDS; do
    for c in tiny_space_only tiny_aim; do
      run="$W/${c}_${p}_seed$s"
      echo "== $c precision=$p seed=$s: train under mpirun -n $RANKS, then evaluate" >&2
      t0=$(date +%s.%N)
      mpirun -n "$RANKS" --oversubscribe "$BIN/aim-train" --config "configs/debug/$c.yaml" "${DATA[@]}" \
          --set model.pretrained="$W/backbone.safetensors" --set model.precision="$p" --set train.seed="$s" \
          --work-dir "$run" --threads 1 >"$run.train.log" 2>&1 || die "training $c ($p, seed $s) failed (see $run.train.log)"
      t1=$(date +%s.%N)
      "$BIN/aim-eval" --config "configs/debug/$c.yaml" "${DATA[@]}" --set model.pretrained="$W/backbone.safetensors" \
          --set model.precision="$p" --set train.seed="$s" \
          --checkpoint "$run/latest.safetensors" --threads 2 --json >"$run.eval.json" 2>"$run.eval.log" \
          || die "evaluating $c ($p, seed $s) failed (see $run.eval.log)"
      python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$t0" "$t1" >"$run.train_seconds"
    done
  done
done

python3 - "$W" "$PRECISIONS" "$SEEDS" "$RANKS" <<'PY'
import json, sys
w, precs, seeds, ranks = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(), sys.argv[4]
names = {"tiny_space_only": "frozen space-only", "tiny_aim": "AIM (temporal + spatial + joint)"}
print(f"| model | precision | train.seed | top-1 | top-5 | mean class | videos | training wall s (mpirun -n {ranks}, 1 thread each) |")
print("|---|---|---|---|---|---|---|---|")
for c in ("tiny_space_only", "tiny_aim"):
    for p in precs:
        for s in seeds:
            run = f"{w}/{c}_{p}_seed{s}"
            r = json.load(open(run + ".eval.json"))
            t = open(run + ".train_seconds").read().strip()
            print(f"| {names[c]} | {p} | {s} | {r['top1']:.3f} | {r['top5']:.3f} | {r['mean_class_accuracy']:.3f} | {r['videos']} | {t} |")
PY
