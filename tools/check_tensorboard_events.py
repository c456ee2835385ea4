#!/usr/bin/env python3
"""Reads the TensorBoard event files aim-train wrote with the `tensorboard` package's own reader and
prints each tag (step:value, the first and last three when there are more than six); then checks
them against the run's metrics.jsonl.

    bench/.venv/bin/pip install tensorboard          # once (CI has no Python packages: run by hand)
    bench/.venv/bin/python tools/check_tensorboard_events.py WORK_DIR [WORK_DIR ...]

Checks, per work dir (exit status 1 when one fails):
  * TensorBoard's EventAccumulator loads WORK_DIR/tensorboard (its record reader checks both CRCs);
  * each tag's steps are strictly increasing across all event files (orphan purging is turned off,
    so duplicated or out-of-order steps left by a resume would show here instead of being hidden);
  * every train/val record of metrics.jsonl has its scalars, equal as float32, at the same step
    (for steps computed twice after a resume, the last record counts, as in `aim-report curves`).
"""
import json
import math
import struct
import sys
from pathlib import Path

SCALAR_KEYS = {"train": ["loss", "top1", "lr", "clips_per_s", "time", "data_time"], "val": ["top1", "top5", "mean_class_accuracy"]}


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def expected_scalars(metrics_path):
    """tag -> {step: value} from metrics.jsonl; a step logged again replaces the earlier records."""
    records = []
    for line in metrics_path.read_text().splitlines():
        if not line.strip():
            continue
        r = json.loads(line)
        step, mode = r["step"], r["mode"]
        if mode not in SCALAR_KEYS:
            continue  # tests after training (--test-last/--test-best) are not TensorBoard scalars
        if any(s > step or (s == step and m == mode) for m, s, _ in records):
            records = [(m, s, x) for m, s, x in records if s < step or (s == step and m != mode)]
        records.append((mode, step, r))
    out = {}
    for mode, step, r in records:
        for key in SCALAR_KEYS.get(mode, []):
            v = r.get(key)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                out.setdefault(f"{mode}/{key}", {})[step] = f32(float(v))
    return out


def check(work_dir):
    work_dir = Path(work_dir)
    tb_dir = work_dir / "tensorboard"
    files = sorted(p.name for p in tb_dir.glob("*tfevents*"))
    print(f"{tb_dir}: {len(files)} event file(s): {', '.join(files)}")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # here: --help needs no tensorboard
    acc = EventAccumulator(str(tb_dir), size_guidance={"scalars": 0}, purge_orphaned_data=False)
    acc.Reload()
    tags = sorted(acc.Tags()["scalars"])
    problems = []
    got = {}
    for tag in tags:
        events = acc.Scalars(tag)
        steps = [e.step for e in events]
        got[tag] = {e.step: e.value for e in events}
        pairs = [f"{e.step}:{e.value:.6g}" for e in events]
        shown = ", ".join(pairs if len(pairs) <= 6 else pairs[:3] + ["..."] + pairs[-3:])
        print(f"  {tag:28} {len(events):4d} points  {shown}")
        if any(b <= a for a, b in zip(steps, steps[1:])):
            problems.append(f"{tag}: steps not strictly increasing: {steps}")
    metrics = work_dir / "metrics.jsonl"
    if metrics.exists():
        want = expected_scalars(metrics)
        compared = 0
        for tag, by_step in sorted(want.items()):
            for step, value in sorted(by_step.items()):
                have = got.get(tag, {}).get(step)
                compared += 1
                if have is None:
                    problems.append(f"{tag} step {step}: in metrics.jsonl, not in the event files")
                elif not (have == value or (math.isnan(have) and math.isnan(value))):
                    problems.append(f"{tag} step {step}: event {have!r}, metrics.jsonl {value!r}")
        extra = sum(len(set(got.get(t, {})) - set(want.get(t, {}))) for t in got)
        if extra:
            problems.append(f"{extra} event scalar(s) at steps metrics.jsonl does not have")
        print(f"  compared {compared} scalars with {metrics}: {'all equal' if not problems else 'MISMATCH'}")
    for p in problems:
        print(f"  error: {p}")
    return not problems


if __name__ == "__main__":
    if len(sys.argv) < 2 or any(a in ("-h", "--help") for a in sys.argv[1:]):
        print(__doc__)
        sys.exit(0 if len(sys.argv) >= 2 else 2)
    ok = all([check(d) for d in sys.argv[1:]])
    sys.exit(0 if ok else 1)
