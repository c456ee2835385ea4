#!/usr/bin/env bash
# docs/curves_example/: the training curves of two short real runs on `make demo`'s synthetic data
# and frozen tiny backbone (AIM adapters vs frozen space-only, 640 steps each, validation every 40),
# drawn by `aim-report curves`. The AIM run is stopped at step 160 and resumed, so its TensorBoard
# events span two files; with the `tensorboard` package in bench/.venv, its reader checks them.
# Run `make demo` first (it writes work_dirs/demo/data and work_dirs/demo/backbone.safetensors).
set -euo pipefail
cd "$(dirname "$0")/.."
W=work_dirs/demo
D=$W/data
E=work_dirs/curves_example
[ -f "$W/backbone.safetensors" ] || { echo "curves_example: run make demo first (no $W/backbone.safetensors)" >&2; exit 1; }
rm -rf "$E"
ARGS=(--set data.root="$D" --set data.train="$D/train_list.txt" --set data.val="$D/val_list.txt" --set model.num_classes=4
      --set model.pretrained="$W/backbone.safetensors" --set eval.interval=40 --threads 2)
bin/aim-train --config configs/debug/tiny_aim.yaml "${ARGS[@]}" --work-dir "$E/tiny_aim" --max-steps 160 2>&1 | grep -E "^(training|eval)|error" || true
sleep 1   # a second later: the resumed run's event file gets its own name
bin/aim-train --config configs/debug/tiny_aim.yaml "${ARGS[@]}" --work-dir "$E/tiny_aim" --resume auto 2>&1 | grep -E "^(resumed|eval)|error" || true
bin/aim-train --config configs/debug/tiny_space_only.yaml "${ARGS[@]}" --work-dir "$E/tiny_space_only" 2>&1 | grep -E "^(training|eval)|error" || true
bin/aim-report curves "$E/tiny_aim" "$E/tiny_space_only" --out docs/curves_example
py=bench/.venv/bin/python
if [ -x "$py" ] && "$py" -c "import tensorboard" 2>/dev/null; then
    "$py" tools/check_tensorboard_events.py "$E/tiny_aim" "$E/tiny_space_only"
else
    echo "curves_example: bench/.venv has no tensorboard package (bench/.venv/bin/pip install tensorboard); event files not checked" >&2
fi
