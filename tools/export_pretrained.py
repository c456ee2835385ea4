#!/usr/bin/env python3
"""Convert pretrained image backbones into safetensors files our model loads (run by hand).

Output keys are the backbone's OWN state-dict names, WITHOUT the `backbone.` prefix (the
loader adds it), all float32, exactly what the official code loads with strict=False:

  clip   OpenAI CLIP ViT-B/16 or ViT-L/14, `visual.*` with the prefix stripped and `proj`
         dropped (as ViT_CLIP.init_weights does): conv1.weight, class_embedding,
         positional_embedding, ln_pre.*, transformer.resblocks.N.*, ln_post.*
  timm   timm/JAX ViT-B/16 (jx_vit_base_p16_224-80ecf9dd.pth, the IN-21K weights the paper and
         TimeSformer use): `norm.*` -> `ln_post.*` (as ViT_ImageNet.init_weights does),
         `head.*` dropped, other names kept (patch_embed.proj.*, cls_token, pos_embed, blocks.N.*).

  swin   Swin Transformer (the official microsoft/Swin-Transformer .pth, e.g.
         swin_base_patch4_window7_224_22k.pth, or timm's): the 2D Conv2d patch weight inflated over
         time as SwinTransformer2D_Adapter.init_weights / SwinTransformer3D.inflate_weights do
         (unsqueeze(2).repeat(1, 1, t, 1, 1) / t, t = --patch-t, 2), `relative_position_index`,
         `attn_mask` and `head.*` dropped; timm >= 0.9 layouts (downsample at the start of the next
         stage) are renamed to the official ones. The same file feeds model.backbone swin2d (AIM) and
         videoswin, whose loader repeats each relative_position_bias_table over 2·wd−1 temporal
         offsets as SwinTransformer3D.inflate_weights does.
         --window W (videoswin with a spatial window W other than the checkpoint's): every
         relative_position_bias_table whose (2w−1)² rows differ from (2W−1)² is resized bicubically
         exactly as mmaction2's SwinTransformer3D.inflate_weights does before its temporal repeat:
         F.interpolate(table.permute(1, 0).view(1, nH, S, S), size=(2W−1, 2W−1), mode='bicubic')
         .view(nH, (2W−1)²).permute(1, 0), S = int(rows ** 0.5). The official swin2d
         (SwinTransformer2D_Adapter.init_weights) does not resize: it cannot load such a table.

With --target timesformer the temporal weights are initialised the way the official loaders do:
clip adds `t_attn.* <- attn.*` and `t_norm.* <- ln_1.*` per block (AIM repo timesformer.py);
timm adds `temporal_attn.* <- attn.*`, `temporal_norm1.* <- norm1.*` and keeps `norm.*`
(facebookresearch TimeSformer helpers.load_pretrained).

Examples:
  python tools/export_pretrained.py clip --arch ViT-B/16 --out clip_vitb16.safetensors          # via `pip install git+https://github.com/openai/CLIP`
  python tools/export_pretrained.py clip --input ViT-B-16.pt --out clip_vitb16.safetensors      # OpenAI's TorchScript file (SHA-256 checked)
  python tools/export_pretrained.py timm --input jx_vit_base_p16_224-80ecf9dd.pth --out vitb16_in21k.safetensors

Inputs in pickle formats (.pt/.pth) are read with torch.load(weights_only=True), which refuses
arbitrary objects; OpenAI's TorchScript archives need torch.jit.load, which runs code from the
file: it is used on OpenAI's published ViT-B/16 and ViT-L/14 files (checked by SHA-256), and on
another TorchScript file only with --trust-torchscript.
"""
import argparse
import re
import sys

import torch


def fail(msg):
    sys.exit(f"export_pretrained: {msg}")


# SHA-256 of OpenAI's CLIP TorchScript files, as their download URLs (openai/CLIP clip/clip.py) carry them.
OPENAI_CLIP_SHA256 = {
    "5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f": "ViT-B/16",
    "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836": "ViT-L/14",
}


def sha256_of(path):
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_input(path, trust_torchscript=False):
    """Return a flat {name: tensor} from a safetensors, a state-dict pickle or a TorchScript file."""
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file
        return load_file(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as plain_error:
        try:
            import zipfile
            with zipfile.ZipFile(path) as z:
                is_script = any(n.endswith("/code/__torch__.py") or "/code/" in n for n in z.namelist())
        except Exception:
            is_script = False
        if not is_script:
            fail(f"{path}: not a weights-only state dict ({plain_error})")
        # torch.jit.load runs code from the file: only OpenAI's published files (their SHA-256 is
        # part of the download URL) load without the user saying they trust the file.
        digest = sha256_of(path)
        if digest in OPENAI_CLIP_SHA256:
            print(f"{path}: OpenAI's TorchScript {OPENAI_CLIP_SHA256[digest]} (SHA-256 as published), loading with torch.jit.load",
                  file=sys.stderr)
        elif trust_torchscript:
            print(f"{path}: TorchScript archive, loading with torch.jit.load (--trust-torchscript)", file=sys.stderr)
        else:
            fail(f"{path}: a TorchScript archive whose SHA-256 ({digest}) is not one OpenAI published; loading it "
                 "would run code from the file. Give --trust-torchscript if you trust it")
        obj = torch.jit.load(path, map_location="cpu").state_dict()
    for wrapper in ("state_dict", "model"):
        if isinstance(obj, dict) and wrapper in obj and isinstance(obj[wrapper], dict):
            obj = obj[wrapper]
    if not isinstance(obj, dict):
        fail(f"{path}: expected a state dict, got {type(obj).__name__}")
    return {k: v for k, v in obj.items() if torch.is_tensor(v)}


def clip_visual(args):
    if args.input:
        sd = load_input(args.input, args.trust_torchscript)
    else:
        try:
            import clip  # OpenAI's package; clip.load downloads and checks the SHA256 itself
        except ImportError:
            fail("no --input given and the `clip` package is not installed")
        model, _ = clip.load(args.arch, device="cpu", jit=False)
        sd = {"visual." + k: v for k, v in model.visual.state_dict().items()}
    vis = {k[len("visual."):]: v for k, v in sd.items() if k.startswith("visual.")}
    if not vis:  # already a bare visual state dict
        vis = dict(sd)
    vis.pop("proj", None)
    need = ["conv1.weight", "class_embedding", "positional_embedding", "ln_pre.weight", "ln_pre.bias",
            "ln_post.weight", "ln_post.bias", "transformer.resblocks.0.attn.in_proj_weight"]
    missing = [k for k in need if k not in vis]
    if missing:
        fail(f"not a CLIP ViT visual state dict, missing {missing}")
    if "conv1.bias" in vis:
        fail("conv1.bias present: CLIP ViT has a bias-free patch embedding; wrong checkpoint?")
    out = {k: v for k, v in vis.items() if k.split(".")[0] in
           ("conv1", "class_embedding", "positional_embedding", "ln_pre", "transformer", "ln_post")}
    dropped = sorted(set(vis) - set(out))
    if dropped:
        print(f"dropped keys not in ViT_CLIP: {dropped}", file=sys.stderr)
    if args.target == "timesformer":
        for k in list(out):
            m = re.match(r"(transformer\.resblocks\.\d+\.)(attn|ln_1)\.(.*)", k)
            if m:
                new = m.group(1) + ("t_attn" if m.group(2) == "attn" else "t_norm") + "." + m.group(3)
                out[new] = out[k].clone()
    return out


def timm_vit(args):
    if not args.input:
        fail("timm needs --input (e.g. jx_vit_base_p16_224-80ecf9dd.pth or a timm model.safetensors)")
    sd = load_input(args.input, args.trust_torchscript)
    need = ["patch_embed.proj.weight", "cls_token", "pos_embed", "norm.weight", "blocks.0.attn.qkv.weight"]
    missing = [k for k in need if k not in sd]
    if missing:
        fail(f"not a timm ViT state dict, missing {missing}")
    out = {}
    for k, v in sd.items():
        if k.startswith(("head.", "fc_norm.", "pre_logits.")):
            continue
        if k.startswith("norm.") and args.target == "aim":
            k = "ln_post." + k[len("norm."):]
        out[k] = v
    w = out["patch_embed.proj.weight"]
    if w.dim() == 2:  # very old JAX ports stored the patch projection flattened
        p = int(round((w.shape[1] / 3) ** 0.5))
        out["patch_embed.proj.weight"] = w.reshape(w.shape[0], 3, p, p)
    if args.target == "timesformer":
        for k in list(out):
            m = re.match(r"(blocks\.\d+\.)(attn|norm1)\.(.*)", k)
            if m:
                new = m.group(1) + ("temporal_attn" if m.group(2) == "attn" else "temporal_norm1") + "." + m.group(3)
                out[new] = out[k].clone()
    return out


def swin(args):
    if not args.input:
        fail("swin needs --input (e.g. swin_base_patch4_window7_224_22k.pth)")
    sd = load_input(args.input, args.trust_torchscript)
    need = ["patch_embed.proj.weight", "patch_embed.norm.weight", "layers.0.blocks.0.attn.relative_position_bias_table",
            "layers.0.blocks.0.attn.qkv.weight", "norm.weight"]
    missing = [k for k in need if k not in sd]
    if missing:
        fail(f"not a Swin Transformer state dict, missing {missing}")
    # timm >= 0.9 keeps each PatchMerging at the start of the next stage (layers.{i+1}.downsample).
    timm_layout = "layers.0.downsample.reduction.weight" not in sd and "layers.1.downsample.reduction.weight" in sd
    out = {}
    for k, v in sd.items():
        if k.startswith("head.") or k.endswith("relative_position_index") or k.endswith("attn_mask"):
            continue
        m = re.match(r"layers\.(\d+)\.downsample\.(.*)", k)
        if m and timm_layout:
            k = f"layers.{int(m.group(1)) - 1}.downsample.{m.group(2)}"
        out[k] = v
    w = out["patch_embed.proj.weight"]
    if w.dim() != 4:
        fail(f"patch_embed.proj.weight has shape {list(w.shape)}, expected a 2D Conv2d weight [C, 3, 4, 4]")
    t = args.patch_t
    out["patch_embed.proj.weight"] = w.unsqueeze(2).repeat(1, 1, t, 1, 1) / t
    if args.window:
        for k in [k for k in out if k.endswith("relative_position_bias_table")]:
            out[k] = resize_bias_table(out[k], args.window, args.window)
    return out


def resize_bias_table(table, wh, ww):
    """A 2D relative_position_bias_table [(2w−1)², nH] for a (wh, ww) window, as mmaction2's
    SwinTransformer3D.inflate_weights resizes it when its row count differs (the temporal repeat
    over 2·wd−1 is left to the loader). Unchanged when the sizes already match."""
    L1, nH = table.shape
    L2 = (2 * wh - 1) * (2 * ww - 1)
    if L1 == L2:
        return table
    S1 = int(L1 ** 0.5)
    if S1 * S1 != L1:
        fail(f"relative_position_bias_table with {L1} rows is not a square (2w-1)^2 table")
    resized = torch.nn.functional.interpolate(table.permute(1, 0).view(1, nH, S1, S1), size=(2 * wh - 1, 2 * ww - 1),
                                              mode="bicubic")
    return resized.view(nH, L2).permute(1, 0)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", choices=["clip", "timm", "swin"])
    ap.add_argument("--patch-t", type=int, default=2, help="swin only: temporal patch the Conv3d weight is inflated to")
    ap.add_argument("--window", type=int, default=0,
                    help="swin only: target spatial window; bias tables of another window are resized bicubically "
                         "as mmaction2's SwinTransformer3D.inflate_weights (0 = keep)")
    ap.add_argument("--arch", default="ViT-B/16", choices=["ViT-B/16", "ViT-L/14"], help="clip only, with the clip package")
    ap.add_argument("--input", help="checkpoint file (.pt/.pth state dict or TorchScript, or .safetensors)")
    ap.add_argument("--trust-torchscript", action="store_true",
                    help="load a TorchScript --input other than OpenAI's published CLIP files (torch.jit.load runs its code)")
    ap.add_argument("--target", choices=["aim", "timesformer"], default="aim")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    out = {"clip": clip_visual, "timm": timm_vit, "swin": swin}[args.source](args)
    out = {k: v.detach().to(torch.float32).contiguous() for k, v in sorted(out.items())}
    from safetensors.torch import save_file
    import os
    # The configs name pretrained/<file>; a fresh clone has no such folder.
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    meta = {"source": args.source, "target": args.target, "input": args.input or f"clip.load({args.arch})",
            "prefix": "none (backbone's own keys)"}
    save_file(out, args.out, metadata=meta)
    n = sum(v.numel() for v in out.values())
    print(f"{args.out}: {len(out)} tensors, {n:,} parameters")


if __name__ == "__main__":
    main()
