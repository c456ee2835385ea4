#!/usr/bin/env bash
# make demo: the paper's point on a laptop-sized problem, with no download.
#  1. synthetic videos whose classes differ only in the order of frames (aim-data synth),
#     plus still frames for image pretraining;
#  2. an image backbone: a tiny CLIP-style ViT pretrained on the stills, then frozen;
#  3. frozen space-only and AIM adapters trained on it under mpirun -n 2;
#  4. multi-view evaluation of both, and a table;
#  5. the efficiency report for the same configs.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
W=work_dirs/demo
D=$W/data
RANKS=${RANKS:-2}
start=$(date +%s)
step() { printf '\n== %s (%ds)\n' "$1" $(( $(date +%s) - start )); }

rm -rf "$W"
mkdir -p "$W"
step "1. synthetic motion dataset"
bin/aim-data synth "$D" --classes 4 --per-class 32 --stills-per-class 40
DATA=(--set data.root="$D" --set data.train="$D/train_list.txt" --set data.val="$D/val_list.txt" --set model.num_classes=4
      --set data.classes="$D/classes.txt")

step "2. image backbone: tiny ViT pretrained on single frames (where is the square?), then frozen"
bin/aim-train --config configs/debug/tiny_pretrain.yaml --set data.root="$D" \
    --set data.train="$D/stills_train_list.txt" --set data.val="$D/stills_val_list.txt" \
    --work-dir "$W/pretrain" --threads 2 2>&1 | grep -E "^(training|eval|resumed)|error" || true
bin/aim-model export-backbone --config configs/debug/tiny_pretrain.yaml \
    --checkpoint "$W/pretrain/latest.safetensors" --output "$W/backbone.safetensors"

n=3
for c in tiny_space_only tiny_aim; do
  step "$n. train $c under mpirun -n $RANKS, then evaluate it"; n=4
  mpirun -n "$RANKS" --oversubscribe bin/aim-train --config "configs/debug/$c.yaml" "${DATA[@]}" \
      --set model.pretrained="$W/backbone.safetensors" --work-dir "$W/$c" --threads 1 2>&1 \
      | grep -E "^(training|eval)|error" || true
  bin/aim-eval --config "configs/debug/$c.yaml" "${DATA[@]}" --set model.pretrained="$W/backbone.safetensors" \
      --checkpoint "$W/$c/latest.safetensors" --threads 2 --json > "$W/$c/eval.json"
  echo "evaluated: $W/$c/eval.json (the table below)"
done

step "results"
python3 - "$W" <<'PY' || cat "$W"/*/eval.json
import json, sys
w = sys.argv[1]
rows = [("frozen space-only", "tiny_space_only"), ("AIM (temporal + spatial + joint)", "tiny_aim")]
print(f"{'model':36} {'top-1':>7} {'top-5':>7} {'mean class':>11} {'videos':>7}")
for name, d in rows:
    r = json.load(open(f"{w}/{d}/eval.json"))
    print(f"{name:36} {r['top1']:7.3f} {r['top5']:7.3f} {r['mean_class_accuracy']:11.3f} {r['videos']:7d}")
print("chance is 0.25; a model that averages frames cannot exceed 0.5 here (each class pair is the same frames reversed).")
PY

step "5. efficiency report"
bin/aim-report efficiency --config configs/debug/tiny_aim.yaml --config configs/debug/tiny_full_finetune.yaml \
    --config configs/debug/tiny_space_only.yaml --set model.pretrained= --set model.num_classes=4 --steps 5 \
    --out "$W/report" 2>&1 | grep -E "^(aim-report|wrote)|error" || true
# The measured tables of the report (parameters, memory), as a user would read them first.
sed -n '/^## Parameters and compute/,/^## Time per iteration/p' "$W/report/report.md" | grep -E '^(##|\|)' | grep -v '^## Time per iteration' | cut -d'|' -f1-8 || true
echo "full report with the paper's figures beside: $W/report/report.md (csv and svg charts beside it)"
step "6. training curves of both runs (metrics.jsonl; TensorBoard event files are in each work dir's tensorboard/)"
bin/aim-report curves "$W/tiny_space_only" "$W/tiny_aim" --out "$W/curves" 2>&1 | grep -E "wrote|error" || true

step "7. label videos with the trained AIM model (class names from the synthetic set's classes.txt)"
AIM=(--config configs/debug/tiny_aim.yaml "${DATA[@]}" --set model.pretrained="$W/backbone.safetensors"
     --checkpoint "$W/tiny_aim/latest.safetensors" --threads 2)
bin/aim-predict "${AIM[@]}" --top-k 3 "$D"/videos/val/move_left_000001.* "$D"/videos/val/move_up_000002.*
# A longer video: three clips of different classes back to back, labelled per 0.64 s window.
if ffmpeg -v error -y -i "$(ls "$D"/videos/val/move_right_000000.*)" -i "$(ls "$D"/videos/val/move_down_000001.*)" \
      -i "$(ls "$D"/videos/val/move_left_000002.*)" -filter_complex concat=n=3:v=1:a=0 -r 25 -c:v libx264 -pix_fmt yuv420p \
      "$W/three_actions.mp4"; then
  bin/aim-predict "${AIM[@]}" --top-k 2 --window 0.64 --stride 0.32 --out "$W/predict" "$W/three_actions.mp4"
fi
step "done"
