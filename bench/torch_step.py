#!/usr/bin/env python3
"""PyTorch peer of aim-bench's training step (issue 7): the same three ViT-B/16 CLIP models,
8 frames of 224², batch 1, random weights, one training step = forward + cross-entropy + backward
+ AdamW step, in fp32 and with bf16 autocast. Prints JSON on stdout (progress on stderr).

The models come from tools/reference_state.py (our own PyTorch transcription of the official
block order: temporal adapter → spatial attention + S_Adapter → MLP + scaled MLP_Adapter), so the
work matches ours layer for layer; nn.MultiheadAttention with need_weights=False runs PyTorch's
fused scaled-dot-product attention.

Each (model, precision) runs in a fresh child process so its peak RSS (VmHWM) is its own; memory
growth is VmHWM minus VmRSS right after `import torch` (weights, optimizer state, activations and
allocator caches all count, as they do for ours).

  python bench/torch_step.py --threads 2 --steps 5
  python bench/torch_step.py --models aim --precisions fp32 --steps 5
  python bench/torch_step.py --models swin_aim,videoswin --precisions fp32 --steps 3   # Swin-B, 32x224^2
  python bench/torch_step.py --paced --models swin_aim --precisions fp32   # steps on demand (aim-bench)
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

MODELS = {
    # name: reference_state overrides (tunable parameters as our StepSection)
    "aim": {"model.tune": "adapters"},
    "full": {"model.adapters": [], "model.tune": "all"},
    "frozen": {"model.adapters": [], "model.tune": "adapters"},   # ln_post + head tunable
}
# Issue 19: Swin-B at the paper's K400 input (32 frames of 224², patch (2,4,4)), as
# configs/k400/aim_swinb_in21k_32f.yaml and videoswin_b_in21k_32f.yaml build them; not in the
# default --models (aim-bench's Swin section asks for them: one step is tens of seconds).
SWINB = {"model.patch_size": [2, 4, 4], "model.num_frames": 32, "model.embed_dim": 128,
         "model.depths": [2, 2, 18, 2], "model.num_heads": [4, 8, 16, 32]}
MODELS["swin_aim"] = dict(SWINB, **{"model.backbone": "swin2d", "model.window_size": 7,
                                    "model.tune": "adapters"})     # names with Adapter + cls_head
MODELS["videoswin"] = dict(SWINB, **{"model.backbone": "videoswin", "model.window_size": [8, 7, 7],
                                     "model.adapters": [], "model.tune": "all"})


def rss_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run_one(model_name, precision, threads, steps, warmup, paced=False):
    """One (model, precision) in this process; returns a result dict. Paced: after building the
    model, print "ready" and run one step per "step" line on stdin (answering {"step_s": t}) until
    "done", so the caller can alternate its own steps with ours step by step."""
    import torch  # noqa: imported here so the baseline below is taken right after it
    import torch.nn.functional as F
    base_kb = rss_kb("VmRSS")
    torch.set_num_threads(threads)
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
    import reference_state as ref

    torch.manual_seed(0)
    cfg = ref.full_config(dict(MODELS[model_name], **{"model.drop_path_rate": 0.0}))
    model = ref.build_model(cfg)
    model.cls_head.dropout.p = 0.0          # ours runs the step with head dropout 0 too
    model.train()
    tunable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(tunable, lr=3e-4, weight_decay=0.05)
    video = torch.randn(1, 3, cfg["model.num_frames"], cfg["model.input_resolution"], cfg["model.input_resolution"])
    label = torch.tensor([3])
    use_bf16 = precision == "bf16"

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16):
            logits = model(video)
        loss = F.cross_entropy(logits.float(), label)
        loss.backward()
        opt.step()

    def timed(i):
        t0 = time.perf_counter()
        step()
        dt = time.perf_counter() - t0
        log(f"  torch {model_name} {precision}: step {i} {dt:.2f} s{' (warm-up)' if i < warmup else ''}")
        return dt

    times = []
    if paced:
        print("ready", flush=True)
        i = 0
        while True:
            line = sys.stdin.readline()
            if line.strip() == "done" or not line:
                break
            if line.strip() != "step":
                sys.exit(f"torch_step.py: paced mode expects 'step' or 'done', got {line.strip()!r}")
            dt = timed(i)
            print(json.dumps({"step_s": dt}), flush=True)
            if i >= warmup:
                times.append(dt)
            i += 1
        if not times:
            sys.exit("torch_step.py: paced mode ended before a timed step")
    else:
        for i in range(warmup + steps):
            dt = timed(i)
            if i >= warmup:
                times.append(dt)
    peak_kb = rss_kb("VmHWM")
    return {
        "model": model_name, "precision": precision, "threads": threads,
        "tunable_params": sum(p.numel() for p in tunable),
        "step_s_median": statistics.median(times), "step_s_min": min(times), "step_s_max": max(times),
        "step_s": times,
        "peak_rss_growth_mb": (peak_kb - base_kb) / 1024.0,
        "rss_after_import_mb": base_kb / 1024.0,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5, help="timed steps per model (median reported)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--models", default="aim,full,frozen")
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--paced", action="store_true",
                    help="one model and precision in this process, one step per 'step' line on stdin (aim-bench alternates them with its own)")
    a = ap.parse_args()
    models = [m for m in a.models.split(",") if m]
    precisions = [p for p in a.precisions.split(",") if p]
    for m in models:
        if m not in MODELS:
            sys.exit(f"torch_step.py: unknown model {m!r}; known: {', '.join(MODELS)}")
    for p in precisions:
        if p not in ("fp32", "bf16"):
            sys.exit(f"torch_step.py: unknown precision {p!r}; known: fp32, bf16")
    if a.threads < 1 or a.steps < 1 or a.warmup < 0:
        sys.exit("torch_step.py: --threads and --steps must be ≥ 1, --warmup ≥ 0")

    if a.child or a.paced:       # exactly one model and precision, in this process
        print(json.dumps(run_one(models[0], precisions[0], a.threads, a.steps, a.warmup, paced=a.paced)), flush=True)
        return

    results = []
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
    for m in models:
        for p in precisions:
            cmd = [sys.executable, os.path.abspath(__file__), "--child", "--models", m, "--precisions", p,
                   "--threads", str(a.threads), "--steps", str(a.steps), "--warmup", str(a.warmup)]
            out = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, check=False)
            if out.returncode != 0:
                sys.exit(f"torch_step.py: the {m} {p} run failed (exit {out.returncode})")
            results.append(json.loads(out.stdout.decode().strip().splitlines()[-1]))
    import torch
    print(json.dumps({"torch_version": torch.__version__, "threads": a.threads, "steps": a.steps,
                      "warmup": a.warmup, "results": results}, indent=1))


if __name__ == "__main__":
    main()
