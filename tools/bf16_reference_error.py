#!/usr/bin/env python3
"""How far PyTorch's own bf16 autocast lands from the float64 reference of a parity fixture.

Runs the fixture's model (tools/reference_state.py's transcription) under
torch.autocast("cpu", dtype=torch.bfloat16) with the fixture's weights and input, and prints the
relative error (max |Δ| / max |reference|, as BF16ParityTests) of the logits and of the worst
tunable gradients. BF16ParityTests' tolerance for a fixture is set from these figures: ours must
land where PyTorch's bf16 lands. Run by hand:

    bench/.venv/bin/python tools/bf16_reference_error.py Tests/Fixtures/ref_swin2d_aim.safetensors
"""
import json
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import reference_state as rs  # noqa: E402


def load(path):
    """(tensors, metadata) of a safetensors file (F32 / I64 only, as our fixtures hold), no pickle."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    dtypes = {"F32": np.float32, "I64": np.int64}
    out = {}
    for k, v in header.items():
        a, b = v["data_offsets"]
        out[k] = torch.from_numpy(np.frombuffer(data[a:b], dtype=dtypes[v["dtype"]]).reshape(v["shape"]).copy())
    return out, meta


def rel(a, b):
    return ((a.float() - b.float()).abs().max() / b.float().abs().max().clamp_min(1e-30)).item()


def main(path):
    t, meta = load(path)
    cfg = rs.full_config(json.loads(meta["overrides"]))
    model = rs.build_model(cfg)
    state = {k: v for k, v in t.items() if not k.startswith("grad.") and k not in ("video", "label", "logits", "loss")}
    model.load_state_dict(state, strict=True)
    model.eval()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(t["video"])
    loss = F.cross_entropy(logits.float(), t["label"])
    loss.backward()
    print(f"{path}: logits rel {rel(logits, t['logits']):.2e}")
    errs = sorted(((rel(p.grad, t["grad." + k]), k) for k, p in model.named_parameters() if p.requires_grad), reverse=True)
    for e, k in errs[:6]:
        print(f"  grad rel {e:.2e}  {k}")


if __name__ == "__main__":
    for p in sys.argv[1:]:
        main(p)
