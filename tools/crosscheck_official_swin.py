#!/usr/bin/env python3
"""Hand cross-check (never in CI): the OFFICIAL Swin classes reproduce our Swin parity fixtures.

  python tools/crosscheck_official_swin.py --official /path/to/adapt-image-models   # needs torch, einops

Copies mmaction/models/backbones/{swin2d_adapter,swin_transformer}.py of a checkout of
taoyang1122/adapt-image-models into a temporary directory with their timm / mmcv / mmaction
imports replaced by stubs (DropPath is identity: the fixtures have no drop-path), builds
SwinTransformer2D_Adapter and SwinTransformer3D with each fixture's settings under a recognizer
with an I3D-style head (`cls_head.fc_cls` after the mean over T, H, W), loads the fixture's
weights (identical key sets: nothing missing or unexpected but buffers) and compares logits,
loss and every gradient (tunable as tools/train.py: Adapter + cls_head; all for Video Swin),
computed in float64.

Then the bias-table resize of `tools/export_pretrained.py swin --window W`: a random 2D Swin
checkpoint whose tables belong to window 12 is loaded by the official
SwinTransformer3D.inflate_weights (window (4, 7, 7): bicubic resize to 13×13, repeat over 7
temporal offsets) and exported by ours with --window 7; our table repeated 2·wd−1 times (what the
Swift loader does for videoswin) must equal the official one, as must the inflated patch weight.
"""
import argparse, json, os, re, struct, sys, tempfile

import torch
import torch.nn as nn
import torch.nn.functional as F

STUBS = '''
import torch, torch.nn as nn
class DropPath(nn.Identity):
    def __init__(self, p=0.): super().__init__()
def to_2tuple(x): return tuple(x) if isinstance(x, (list, tuple)) else (x, x)
def trunc_normal_(t, std=1.):
    with torch.no_grad(): return t.normal_(0, std)
class _Registry:
    def register_module(self): return lambda c: c
BACKBONES = _Registry()
def get_root_logger(): import logging; return logging.getLogger()
def load_checkpoint(*a, **k): raise RuntimeError("not used")
'''


def load(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__")
    out = {}
    for k, v in header.items():
        s, e = v["data_offsets"]
        dt = {"F32": torch.float32, "I64": torch.int64}[v["dtype"]]
        out[k] = torch.frombuffer(bytearray(data[s:e]), dtype=dt).reshape(v["shape"])
    return out, json.loads(meta["overrides"])


class Head(nn.Module):
    def __init__(self, d, k):
        super().__init__()
        self.fc_cls = nn.Linear(d, k)

    def forward(self, x):
        return self.fc_cls(x.mean(dim=(2, 3, 4)))


class Rec(nn.Module):
    def __init__(self, backbone, d, k):
        super().__init__()
        self.backbone, self.cls_head = backbone, Head(d, k)

    def forward(self, x):
        return self.cls_head(self.backbone(x))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--official", required=True, help="checkout of taoyang1122/adapt-image-models")
    ap.add_argument("--fixtures", default=os.path.join(os.path.dirname(__file__), "..", "Tests", "Fixtures"))
    args = ap.parse_args()
    tmp = tempfile.mkdtemp()
    for name in ("swin2d_adapter.py", "swin_transformer.py"):
        s = open(os.path.join(args.official, "mmaction/models/backbones", name)).read()
        s = re.sub(r"from timm\.models\.layers import", "from stubs import", s)
        s = s.replace("from ..builder import BACKBONES", "from stubs import BACKBONES")
        s = s.replace("from mmaction.utils import get_root_logger", "from stubs import get_root_logger")
        s = s.replace("from mmcv.runner import load_checkpoint", "from stubs import load_checkpoint")
        open(os.path.join(tmp, name), "w").write(s)
    open(os.path.join(tmp, "stubs.py"), "w").write(STUBS)
    sys.path.insert(0, tmp)
    import swin2d_adapter as S2
    import swin_transformer as S3
    bad = False
    for case in ("swin2d_aim", "videoswin", "videoswin_pad", "videoswin_padclip"):
        t, cfg = load(os.path.join(args.fixtures, f"ref_{case}.safetensors"))
        e, d, h = cfg["model.embed_dim"], cfg["model.depths"], cfg["model.num_heads"]
        if case == "swin2d_aim":
            # The official constructor does not pass img_size on to PatchEmbed3D (it always builds for 224).
            S2.PatchEmbed3D.__init__.__defaults__ = (cfg["model.input_resolution"],) + S2.PatchEmbed3D.__init__.__defaults__[1:]
            bb = S2.SwinTransformer2D_Adapter(patch_size=tuple(cfg["model.patch_size"]), num_frames=cfg["model.num_frames"],
                                              embed_dim=e, depths=d, num_heads=h, window_size=cfg["model.window_size"], drop_path_rate=0.)
        else:
            bb = S3.SwinTransformer3D(patch_size=tuple(cfg["model.patch_size"]), embed_dim=e, depths=d, num_heads=h,
                                      window_size=tuple(cfg["model.window_size"]), drop_path_rate=0., patch_norm=True)
        m = Rec(bb, e * 2 ** (len(d) - 1), cfg["model.num_classes"])
        params = {k: v for k, v in t.items() if not k.startswith(("grad.", "video", "label", "logits", "loss"))}
        missing, unexpected = m.load_state_dict(params, strict=False)
        missing = [k for k in missing if not k.endswith(("relative_position_index", "attn_mask", "t_relative_coords"))]
        m = m.double().eval()
        for n, p in m.named_parameters():
            p.requires_grad_(cfg["model.tune"] == "all" or "Adapter" in n or "cls_head" in n)
        logits = m(t["video"].double())
        loss = F.cross_entropy(logits, t["label"])
        loss.backward()
        rel = lambda a, b: ((a.float() - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()
        grads = {n: p.grad for n, p in m.named_parameters() if p.requires_grad}
        fixture = {k[5:] for k in t if k.startswith("grad.")}
        worst = max(rel(g, t["grad." + n]) for n, g in grads.items())
        ok = not missing and not unexpected and set(grads) == fixture and rel(logits.detach(), t["logits"]) <= 1e-6 and worst <= 1e-6
        bad |= not ok
        print(f"{case}: missing {missing} unexpected {unexpected}; logits rel {rel(logits.detach(), t['logits']):.1e}, "
              f"loss {loss.item():.6f} (fixture {t['loss'].item():.6f}), {len(grads)} grads (fixture {len(fixture)}), worst rel {worst:.1e}"
              + ("" if ok else "  MISMATCH"))
    bad |= not check_inflate(S3, tmp)
    sys.exit(1 if bad else 0)


def check_inflate(S3, tmp):
    import argparse as ap_, logging
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import export_pretrained
    torch.manual_seed(0)
    wd = 4
    bb = S3.SwinTransformer3D(patch_size=(2, 4, 4), embed_dim=8, depths=[2, 2], num_heads=[2, 4], window_size=(wd, 7, 7),
                              drop_path_rate=0., patch_norm=True)
    sd2d = {}
    for k, v in bb.state_dict().items():
        if k.endswith("relative_position_index"):
            continue
        if k == "patch_embed.proj.weight":
            sd2d[k] = torch.randn(v.shape[0], v.shape[1], v.shape[3], v.shape[4])
        elif k.endswith("relative_position_bias_table"):
            sd2d[k] = torch.randn((2 * 12 - 1) ** 2, v.shape[1])     # pretrained with window 12
        else:
            sd2d[k] = torch.randn_like(v)
    path = os.path.join(tmp, "swin2d_window12.pth")
    torch.save({"model": sd2d}, path)
    bb.pretrained = path
    bb.inflate_weights(logging.getLogger("inflate"))
    official = bb.state_dict()
    ours = export_pretrained.swin(ap_.Namespace(input=path, patch_t=2, window=7))
    tables = [k for k in ours if k.endswith("relative_position_bias_table")]
    worst = 0.0
    for k in tables + ["patch_embed.proj.weight"]:
        mine = ours[k].repeat(2 * wd - 1, 1) if k in tables else ours[k]
        if mine.shape != official[k].shape:
            print(f"inflate: {k} shape {list(mine.shape)} vs official {list(official[k].shape)}  MISMATCH")
            return False
        worst = max(worst, (mine - official[k]).abs().max().item())
    changed = all(ours[k].shape[0] == 13 * 13 for k in tables)
    ok = worst == 0.0 and changed and len(tables) == 4
    print(f"inflate: {len(tables)} bias tables 23x23 -> 13x13 (bicubic) x {2 * wd - 1} temporal repeats and the patch weight, "
          f"max |ours - official| {worst:.1e}" + ("" if ok else "  MISMATCH"))
    return ok


if __name__ == "__main__":
    main()
