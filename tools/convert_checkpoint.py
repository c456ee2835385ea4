#!/usr/bin/env python3
"""Move trained models between the official PyTorch code (mmaction2/mmcv checkpoints) and aim-swift
(run by hand; needs PyTorch and safetensors).

Both sides name parameters alike (`backbone.transformer.resblocks.N.S_Adapter.D_fc1.weight`,
`cls_head.fc_cls.weight`, ...), so converting is a change of container, not of names:

  from-official  an official checkpoint (.pth: mmcv's {"state_dict": ..., "meta": ...}, or a bare
                 state dict; a DistributedDataParallel `module.` prefix is dropped) -> one
                 safetensors file of every weight, float32. aim-eval / aim-predict read it as
                 "full recognizer weights" with --checkpoint; the frozen backbone comes from the
                 file, so the config's model.pretrained is not read (it need not exist).
  to-official    an aim-swift checkpoint (step_*.safetensors, latest/best) -> a .pth holding
                 {"state_dict": its weights, "meta": its step and config}, AdamW moments left out.
                 It holds the tunable weights only: build the official model as for training (its
                 init_weights loads the CLIP/IN-21K backbone), then
                 mmcv.runner.load_checkpoint(model, "adapters.pth", strict=False).

Examples:
  python tools/convert_checkpoint.py from-official aim_vitb16_k400.pth --out aim_vitb16_k400.safetensors
  bin/aim-eval --config configs/k400/aim_vitb16_clip_8f.yaml --checkpoint aim_vitb16_k400.safetensors
  python tools/convert_checkpoint.py to-official work_dirs/aim_vitb16_clip_8f/best.safetensors --out aim_vitb16_adapters.pth

.pth inputs are read with torch.load(weights_only=True), which refuses arbitrary objects (numpy
scalars, which mmcv's checkpoint meta holds, are allowed as the data they are).
"""
import argparse
import importlib
import json
import sys

import torch


def fail(msg):
    sys.exit(f"convert_checkpoint: {msg}")


def numpy_scalar_globals():
    """The numpy types an mmcv checkpoint's meta holds (EvalHook's best score is a numpy.float64):
    plain data, allowed to the weights-only loader, which refuses them by default."""
    try:
        import numpy as np
    except ImportError:
        return []
    allowed = [np.dtype]
    scalar = None
    for module in ("numpy._core.multiarray", "numpy.core.multiarray"):
        try:
            scalar = importlib.import_module(module).scalar
            break
        except (ImportError, AttributeError):
            continue
    if scalar is not None:
        # Under both names: checkpoints pickled with numpy 1 (every official one) say
        # numpy.core.multiarray.scalar, numpy 2 says numpy._core; the loader matches names exactly.
        allowed += [(scalar, "numpy.core.multiarray.scalar"), (scalar, "numpy._core.multiarray.scalar")]
    dtypes = getattr(np, "dtypes", None)
    allowed += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith("DType")] if dtypes else []
    return allowed


def from_official(args):
    try:
        safe = getattr(torch.serialization, "safe_globals", None)
        if safe is None:
            obj = torch.load(args.input, map_location="cpu", weights_only=True)
        else:
            with safe(numpy_scalar_globals()):
                obj = torch.load(args.input, map_location="cpu", weights_only=True)
    except Exception as e:
        fail(f"{args.input}: not a weights-only checkpoint ({e})")
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        fail(f"{args.input}: expected a state dict, got {type(obj).__name__}")
    out = {}
    for k, v in obj.items():
        if not torch.is_tensor(v):
            continue
        name = k[len("module."):] if k.startswith("module.") else k
        if not (name.startswith("backbone.") or name.startswith("cls_head.")):
            print(f"  skipped {k}: not a recognizer weight (backbone. / cls_head.)", file=sys.stderr)
            continue
        # Swin's index and mask buffers are computed from the shapes, not learned: aim-swift
        # makes its own, and `aim-model run` refuses weights it does not have.
        if name.rsplit(".", 1)[-1] in ("relative_position_index", "attn_mask"):
            continue
        out[name] = v.detach().to(torch.float32).contiguous()
    if not any(k.startswith("cls_head.") for k in out):
        fail(f"{args.input}: no cls_head.* weight: a backbone file? (tools/export_pretrained.py converts those)")
    from safetensors.torch import save_file
    save_file(dict(sorted(out.items())), args.out, metadata={"source": "official checkpoint", "input": args.input})
    n = sum(v.numel() for v in out.values())
    print(f"{args.out}: {len(out)} tensors, {n:,} parameters")


def to_official(args):
    from safetensors import safe_open
    with safe_open(args.input, framework="pt") as f:
        meta = f.metadata() or {}
        if meta.get("format") is None:
            print(f"{args.input}: no aim-swift checkpoint metadata; converting its tensors as they are", file=sys.stderr)
        sd = {k: f.get_tensor(k) for k in f.keys() if not k.startswith("optimizer.")}
    if not sd:
        fail(f"{args.input}: no weights")
    keep = {k: meta[k] for k in ("step", "epoch", "best_top1", "config", "frozen_weights") if k in meta}
    try:
        keep["config"] = json.loads(keep["config"]) if keep.get("config", "").startswith("{") else keep.get("config")
    except ValueError:
        pass
    torch.save({"state_dict": sd, "meta": {"aim_swift": keep}}, args.out)
    n = sum(v.numel() for v in sd.values())
    print(f"{args.out}: {len(sd)} tensors, {n:,} parameters (load with strict=False over the official model's own backbone)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("direction", choices=["from-official", "to-official"])
    ap.add_argument("input")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    {"from-official": from_official, "to-official": to_official}[args.direction](args)


if __name__ == "__main__":
    main()
