#!/usr/bin/env python3
"""PyTorch oracle for the AIM models (issue 3). Run by hand, never in CI.

Our own transcription of the official forwards described in docs/MODEL_REFERENCE.md
(taoyang1122/adapt-image-models: ViT_CLIP, ViT_ImageNet, TimeSformer; facebookresearch/TimeSformer
divided space-time ViT), with the official module names so that `state_dict()` keys equal the
official recognizer's (`backbone.…`, `cls_head.fc_cls.…`). Imports nothing but torch/numpy/safetensors.

  python tools/reference_state.py                     # write every Tests/Fixtures/ref_<case>.safetensors
  python tools/reference_state.py --cases aim_clip_t1 # only some
  python tools/reference_state.py --counts            # params + fvcore GFLOPs of the paper configs
"""
import argparse
import copy
import json
import math
import os
import sys
from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F

# --------------------------------------------------------------------------- config

DEFAULTS = OrderedDict([
    ("model.backbone", "clip"),            # clip | imagenet | timesformer
    ("model.input_resolution", 224),
    ("model.patch_size", 16),
    ("model.width", 768),
    ("model.layers", 12),
    ("model.heads", 12),
    ("model.num_frames", 8),
    ("model.num_classes", 400),
    ("model.adapters", ["temporal", "spatial", "joint"]),
    ("model.num_tadapter", 1),
    ("model.adapter_scale", 0.5),
    ("model.adapter_layers", "all"),       # all | bottom6 | top6 | skip
    ("model.tune", "adapters"),            # adapters | all | head
    ("model.divided_space_time", False),   # with backbone imagenet: facebookresearch TimeSformer
    ("model.drop_path_rate", 0.0),
    # Swin family (model.backbone swin2d | videoswin; model.patch_size is then a list (t, h, w))
    ("model.embed_dim", 128),
    ("model.depths", [2, 2, 18, 2]),
    ("model.num_heads", [4, 8, 16, 32]),
    ("model.window_size", 7),
])


def full_config(overrides):
    cfg = OrderedDict(DEFAULTS)
    for k, v in overrides.items():
        if k not in cfg:
            raise KeyError(f"unknown model key {k!r}")
        cfg[k] = v
    return cfg


def adapted_blocks(cfg):
    """Indices of blocks that carry adapters (the rest are plain image-model blocks)."""
    n, where = cfg["model.layers"], cfg["model.adapter_layers"]
    if not cfg["model.adapters"]:
        return set()
    if where == "all":
        return set(range(n))
    if where in ("bottom6", "top6"):
        if n < 12:
            raise ValueError(f"adapter_layers {where} needs >= 12 layers, got {n}")
        return set(range(6)) if where == "bottom6" else set(range(n - 6, n))
    if where == "skip":
        return set(range(0, n, 2))
    raise ValueError(f"adapter_layers {where!r}")


# --------------------------------------------------------------------------- building blocks

class DropPath(nn.Module):
    """Stochastic depth per sample (first dim of the tensor it is applied to); identity in eval."""

    def __init__(self, p):
        super().__init__()
        self.p = p

    def forward(self, x):
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep


def drop_path_or_identity(p):
    return DropPath(p) if p > 0.0 else nn.Identity()


class Adapter(nn.Module):
    """D -> D/4 -> D bottleneck with exact GELU; skip adds the input back."""

    def __init__(self, d, skip):
        super().__init__()
        self.skip_connect = skip
        self.act = nn.GELU()
        self.D_fc1 = nn.Linear(d, int(d * 0.25))
        self.D_fc2 = nn.Linear(int(d * 0.25), d)

    def forward(self, x):
        xs = self.D_fc2(self.act(self.D_fc1(x)))
        return x + xs if self.skip_connect else xs


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class TimmAttention(nn.Module):
    """timm ViT attention: packed qkv [3D, D] (q, k, v blocks; heads contiguous), proj."""

    def __init__(self, d, heads):
        super().__init__()
        self.num_heads = heads
        self.scale = (d // heads) ** -0.5
        self.qkv = nn.Linear(d, 3 * d, bias=True)
        self.proj = nn.Linear(d, d)

    def forward(self, x):  # [S, L, D] batch-first
        s, l, d = x.shape
        qkv = self.qkv(x).reshape(s, l, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(s, l, d))


class TimmMlp(nn.Module):
    def __init__(self, d, hidden):
        super().__init__()
        self.fc1 = nn.Linear(d, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, d)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


# Token-layout helpers (einops spelled out). CLIP blocks are seq-first [N, (b t), D].
def seqfirst_to_time(x, t):        # 'n (b t) d -> t (b n) d'
    n, bt, d = x.shape
    return x.reshape(n, bt // t, t, d).permute(2, 1, 0, 3).reshape(t, (bt // t) * n, d)


def time_to_seqfirst(x, n):        # 't (b n) d -> n (b t) d'
    t, bn, d = x.shape
    return x.reshape(t, bn // n, n, d).permute(2, 1, 0, 3).reshape(n, (bn // n) * t, d)


def frames_to_time(x, t):          # '(b t) n d -> (b n) t d'
    bt, n, d = x.shape
    return x.reshape(bt // t, t, n, d).permute(0, 2, 1, 3).reshape((bt // t) * n, t, d)


def time_to_frames(x, n):          # '(b n) t d -> (b t) n d'
    bn, t, d = x.shape
    return x.reshape(bn // n, n, t, d).permute(0, 2, 1, 3).reshape((bn // n) * t, n, d)


# --------------------------------------------------------------------------- 1. ViT_CLIP + AIM

class ResidualAttentionBlock(nn.Module):
    def __init__(self, d, heads, scale, num_tadapter, num_frames, drop_path, adapters):
        super().__init__()
        self.adapters = set(adapters)
        self.num_tadapter = num_tadapter
        self.attn = nn.MultiheadAttention(d, heads)
        self.ln_1 = nn.LayerNorm(d, eps=1e-5)
        self.mlp = nn.Sequential(OrderedDict([
            ("c_fc", nn.Linear(d, 4 * d)), ("gelu", QuickGELU()), ("c_proj", nn.Linear(4 * d, d))]))
        self.ln_2 = nn.LayerNorm(d, eps=1e-5)
        # Same construction order as the official block.
        if "joint" in self.adapters:
            self.MLP_Adapter = Adapter(d, skip=False)
        if "spatial" in self.adapters:
            self.S_Adapter = Adapter(d, skip=True)
        self.scale = scale
        if "temporal" in self.adapters:
            self.T_Adapter = Adapter(d, skip=False)
            if num_tadapter == 2:
                self.T_Adapter_in = Adapter(d, skip=True)
        self.num_frames = num_frames
        self.drop_path = drop_path_or_identity(drop_path)

    def attention(self, x):
        return self.attn(x, x, x, need_weights=False)[0]

    def forward(self, x):  # [N, (b t), D]
        n = x.shape[0]
        if "temporal" in self.adapters:
            xt = self.ln_1(seqfirst_to_time(x, self.num_frames))
            if self.num_tadapter == 2:
                xt = self.T_Adapter_in(xt)
            xt = self.T_Adapter(self.attention(xt))
            x = x + self.drop_path(time_to_seqfirst(xt, n))
        a = self.attention(self.ln_1(x))
        x = x + (self.S_Adapter(a) if "spatial" in self.adapters else a)
        xn = self.ln_2(x)
        if "joint" in self.adapters:
            return x + self.mlp(xn) + self.drop_path(self.scale * self.MLP_Adapter(xn))
        return x + self.mlp(xn)


class Transformer(nn.Module):
    def __init__(self, blocks):
        super().__init__()
        self.resblocks = nn.Sequential(*blocks)

    def forward(self, x):
        return self.resblocks(x)


def clip_stem_params(m, cfg, d, with_temporal):
    p, r = cfg["model.patch_size"], cfg["model.input_resolution"]
    m.conv1 = nn.Conv2d(3, d, kernel_size=p, stride=p, bias=False)
    m.class_embedding = nn.Parameter(d ** -0.5 * torch.randn(d))
    m.positional_embedding = nn.Parameter(d ** -0.5 * torch.randn((r // p) ** 2 + 1, d))
    m.ln_pre = nn.LayerNorm(d, eps=1e-5)
    if with_temporal:
        m.temporal_embedding = nn.Parameter(torch.zeros(1, cfg["model.num_frames"], d))


def clip_stem_forward(m, x):
    """video [B,3,T,H,W] -> ln_pre output [(b t), N, D] (temporal_embedding added if present)."""
    b, c, t, h, w = x.shape
    x = x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
    x = m.conv1(x)
    x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
    cls = m.class_embedding.to(x.dtype) + torch.zeros(x.shape[0], 1, x.shape[-1], dtype=x.dtype, device=x.device)
    x = torch.cat([cls, x], dim=1) + m.positional_embedding.to(x.dtype)
    if hasattr(m, "temporal_embedding"):
        n = x.shape[1]
        x = time_to_frames(frames_to_time(x, t) + m.temporal_embedding, n)
    return m.ln_pre(x)


def per_frame_cls_to_head_input(x, b, t):
    """[(b t), D] class tokens -> [B, D, T, 1, 1] as the official backbones return for I3DHead."""
    return x.reshape(b, t, -1).permute(0, 2, 1).unsqueeze(-1).unsqueeze(-1)


class ViT_CLIP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d, layers = cfg["model.width"], cfg["model.layers"]
        ad = adapted_blocks(cfg)
        temporal = "temporal" in cfg["model.adapters"] and len(ad) > 0
        self.num_frames = cfg["model.num_frames"]
        clip_stem_params(self, cfg, d, temporal)
        dpr = [v.item() for v in torch.linspace(0, cfg["model.drop_path_rate"], layers, device="cpu")]
        self.transformer = Transformer([
            ResidualAttentionBlock(d, cfg["model.heads"], cfg["model.adapter_scale"], cfg["model.num_tadapter"],
                                   self.num_frames, dpr[i], cfg["model.adapters"] if i in ad else [])
            for i in range(layers)])
        self.ln_post = nn.LayerNorm(d, eps=1e-5)

    def forward(self, video):
        b, _, t, _, _ = video.shape
        x = clip_stem_forward(self, video)
        x = self.transformer(x.permute(1, 0, 2)).permute(1, 0, 2)
        x = self.ln_post(x)[:, 0]
        return per_frame_cls_to_head_input(x, b, t)


# --------------------------------------------------------------------------- 2. ViT_ImageNet + AIM

class PatchEmbed(nn.Module):
    def __init__(self, patch, d):
        super().__init__()
        self.proj = nn.Conv2d(3, d, kernel_size=patch, stride=patch, bias=True)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class ImageNetBlock(nn.Module):
    def __init__(self, d, heads, scale, num_tadapter, num_frames, drop_path, adapters):
        super().__init__()
        self.adapters = set(adapters)
        self.num_frames = num_frames
        self.num_tadapter = num_tadapter
        self.norm1 = nn.LayerNorm(d, eps=1e-6)
        self.attn = TimmAttention(d, heads)
        if "joint" in self.adapters:
            self.MLP_Adapter = Adapter(d, skip=False)
        if "spatial" in self.adapters:
            self.S_Adapter = Adapter(d, skip=True)
        self.scale = scale
        if "temporal" in self.adapters:
            self.T_Adapter = Adapter(d, skip=False)
            if num_tadapter == 2:
                self.T_Adapter_in = Adapter(d, skip=True)
        self.drop_path = drop_path_or_identity(drop_path)
        self.norm2 = nn.LayerNorm(d, eps=1e-6)
        self.mlp = TimmMlp(d, 4 * d)

    def forward(self, x):  # [(b t), N, D]
        n = x.shape[1]
        if "temporal" in self.adapters:
            xt = self.norm1(frames_to_time(x, self.num_frames))
            if self.num_tadapter == 2:
                xt = self.T_Adapter_in(xt)
            xt = self.T_Adapter(self.attn(xt))
            x = x + self.drop_path(time_to_frames(xt, n))
        a = self.attn(self.norm1(x))
        x = x + (self.S_Adapter(a) if "spatial" in self.adapters else a)
        xn = self.norm2(x)
        if "joint" in self.adapters:
            return x + self.mlp(xn) + self.drop_path(self.scale * self.MLP_Adapter(xn))
        return x + self.mlp(xn)


class ViT_ImageNet(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d, layers, p, r = cfg["model.width"], cfg["model.layers"], cfg["model.patch_size"], cfg["model.input_resolution"]
        ad = adapted_blocks(cfg)
        self.num_frames = cfg["model.num_frames"]
        self.patch_embed = PatchEmbed(p, d)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = nn.Parameter(torch.zeros(1, (r // p) ** 2 + 1, d))
        if "temporal" in cfg["model.adapters"] and ad:
            self.temporal_embedding = nn.Parameter(torch.zeros(1, self.num_frames, d))
        dpr = [v.item() for v in torch.linspace(0, cfg["model.drop_path_rate"], layers, device="cpu")]
        self.blocks = nn.ModuleList([
            ImageNetBlock(d, cfg["model.heads"], cfg["model.adapter_scale"], cfg["model.num_tadapter"],
                          self.num_frames, dpr[i], cfg["model.adapters"] if i in ad else [])
            for i in range(layers)])
        self.ln_post = nn.LayerNorm(d, eps=1e-6)

    def forward(self, video):
        b, c, t, h, w = video.shape
        x = self.patch_embed(video.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w))
        cls = self.cls_token.to(x.dtype) + torch.zeros(x.shape[0], 1, x.shape[-1], dtype=x.dtype, device=x.device)
        x = torch.cat([cls, x], dim=1) + self.pos_embed.to(x.dtype)
        if hasattr(self, "temporal_embedding"):
            n = x.shape[1]
            x = time_to_frames(frames_to_time(x, t) + self.temporal_embedding, n)
        for blk in self.blocks:
            x = blk(x)
        x = self.ln_post(x)[:, 0]
        return per_frame_cls_to_head_input(x, b, t)


# --------------------------------------------------------------------------- 3. CLIP TimeSformer (official AIM repo)

class TimeSformerCLIPBlock(nn.Module):
    def __init__(self, d, heads, num_frames, drop_path):
        super().__init__()
        self.attn = nn.MultiheadAttention(d, heads)
        self.ln_1 = nn.LayerNorm(d, eps=1e-5)
        self.mlp = nn.Sequential(OrderedDict([
            ("c_fc", nn.Linear(d, 4 * d)), ("gelu", QuickGELU()), ("c_proj", nn.Linear(4 * d, d))]))
        self.ln_2 = nn.LayerNorm(d, eps=1e-5)
        self.t_attn = nn.MultiheadAttention(d, heads)
        self.t_norm = nn.LayerNorm(d, eps=1e-5)
        self.T_Adapter = nn.Linear(d, d)
        self.num_frames = num_frames
        self.drop_path = drop_path_or_identity(drop_path)

    def forward(self, x):  # [N, (b t), D]
        n = x.shape[0]
        xt = self.t_norm(seqfirst_to_time(x, self.num_frames))
        xt = self.drop_path(self.t_attn(xt, xt, xt, need_weights=False)[0])
        x = x + time_to_seqfirst(self.T_Adapter(xt), n)
        h = self.ln_1(x)
        x = x + self.drop_path(self.attn(h, h, h, need_weights=False)[0])
        return x + self.drop_path(self.mlp(self.ln_2(x)))


class TimeSformerCLIP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d, layers = cfg["model.width"], cfg["model.layers"]
        self.num_frames = cfg["model.num_frames"]
        clip_stem_params(self, cfg, d, True)
        dpr = [v.item() for v in torch.linspace(0, cfg["model.drop_path_rate"], layers, device="cpu")]
        self.transformer = Transformer([
            TimeSformerCLIPBlock(d, cfg["model.heads"], self.num_frames, dpr[i]) for i in range(layers)])
        self.ln_post = nn.LayerNorm(d, eps=1e-5)

    forward = ViT_CLIP.forward


# --------------------------------------------------------------------------- 4. IN-21K divided space-time TimeSformer

class DividedBlock(nn.Module):
    def __init__(self, d, heads, drop_path):
        super().__init__()
        self.norm1 = nn.LayerNorm(d, eps=1e-6)
        self.attn = TimmAttention(d, heads)
        self.temporal_norm1 = nn.LayerNorm(d, eps=1e-6)
        self.temporal_attn = TimmAttention(d, heads)
        self.temporal_fc = nn.Linear(d, d)
        self.drop_path = drop_path_or_identity(drop_path)
        self.norm2 = nn.LayerNorm(d, eps=1e-6)
        self.mlp = TimmMlp(d, 4 * d)

    def forward(self, x, b, t):  # [B, 1 + (h w t), D]
        d = x.shape[-1]
        l = (x.shape[1] - 1) // t
        # temporal: per patch over T ('b (hw t) d -> (b hw) t d' is a plain reshape)
        xt = x[:, 1:, :].reshape(b * l, t, d)
        r = self.drop_path(self.temporal_attn(self.temporal_norm1(xt)))
        r = self.temporal_fc(r.reshape(b, l * t, d))
        xt = x[:, 1:, :] + r
        # spatial: per frame over (class token copy, hw patches)
        init_cls = x[:, 0:1, :]
        cls = init_cls.repeat(1, t, 1).reshape(b * t, 1, d)
        xs = xt.reshape(b, l, t, d).permute(0, 2, 1, 3).reshape(b * t, l, d)   # 'b (hw t) d -> (b t) hw d'
        s = self.drop_path(self.attn(self.norm1(torch.cat((cls, xs), 1))))
        sc = s[:, 0, :].reshape(b, t, d).mean(1, keepdim=True)
        sp = s[:, 1:, :].reshape(b, t, l, d).permute(0, 2, 1, 3).reshape(b, l * t, d)  # back to (hw t)
        x = torch.cat((init_cls, xt), 1) + torch.cat((sc, sp), 1)
        return x + self.drop_path(self.mlp(self.norm2(x)))


class TimeSformerIN21K(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d, layers, p, r = cfg["model.width"], cfg["model.layers"], cfg["model.patch_size"], cfg["model.input_resolution"]
        self.patch_embed = PatchEmbed(p, d)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = nn.Parameter(torch.zeros(1, (r // p) ** 2 + 1, d))
        self.time_embed = nn.Parameter(torch.zeros(1, cfg["model.num_frames"], d))
        dpr = [v.item() for v in torch.linspace(0, cfg["model.drop_path_rate"], layers, device="cpu")]
        self.blocks = nn.ModuleList([DividedBlock(d, cfg["model.heads"], dpr[i]) for i in range(layers)])
        self.norm = nn.LayerNorm(d, eps=1e-6)

    def forward(self, video):
        b, c, t, h, w = video.shape
        x = self.patch_embed(video.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w))
        x = torch.cat((self.cls_token.expand(x.size(0), -1, -1), x), dim=1) + self.pos_embed
        cls = x[:b, 0, :].unsqueeze(1)          # as upstream: rows 0..B-1 (all rows hold the same value)
        x = x[:, 1:]
        n = x.shape[1]
        x = frames_to_time(x, t) + self.time_embed                  # '(b t) n d -> (b n) t d'
        x = torch.cat((cls, x.reshape(b, n * t, -1)), dim=1)        # '(b n) t d -> b (n t) d'
        for blk in self.blocks:
            x = blk(x, b, t)
        return self.norm(x)[:, 0]               # [B, D]


# --------------------------------------------------------------------------- 5. Swin family (issue 19)
# AIM on Swin (official mmaction/models/backbones/swin2d_adapter.py, SwinTransformer2D_Adapter) and
# Video Swin (mmaction2 swin_transformer.py, SwinTransformer3D): our transcription with the official
# module names. Tokens are (B, D, H, W, C) as in SwinTransformer3D; swin2d runs per frame on (BT, H, W, C).

def swin_window_partition(x, ws):
    """(B, D, H, W, C) -> (B * nW, wd * wh * ww, C), windows (d, h, w)-major."""
    b, d, h, w, c = x.shape
    x = x.view(b, d // ws[0], ws[0], h // ws[1], ws[1], w // ws[2], ws[2], c)
    return x.permute(0, 1, 3, 5, 2, 4, 6, 7).reshape(-1, ws[0] * ws[1] * ws[2], c)


def swin_window_reverse(windows, ws, b, d, h, w):
    x = windows.view(b, d // ws[0], h // ws[1], w // ws[2], ws[0], ws[1], ws[2], -1)
    return x.permute(0, 1, 4, 2, 5, 3, 6, 7).reshape(b, d, h, w, -1)


def swin_get_window_size(x_size, window_size, shift_size):
    ws, ss = list(window_size), list(shift_size)
    for i in range(len(x_size)):
        if x_size[i] <= window_size[i]:
            ws[i] = x_size[i]
            ss[i] = 0
    return tuple(ws), tuple(ss)


def swin_compute_mask(d, h, w, ws, ss):
    img = torch.zeros((1, d, h, w, 1))
    cnt = 0
    for sd in (slice(-ws[0]), slice(-ws[0], -ss[0]), slice(-ss[0], None)):
        for sh in (slice(-ws[1]), slice(-ws[1], -ss[1]), slice(-ss[1], None)):
            for sw in (slice(-ws[2]), slice(-ws[2], -ss[2]), slice(-ss[2], None)):
                img[:, sd, sh, sw, :] = cnt
                cnt += 1
    mw = swin_window_partition(img, ws).squeeze(-1)
    m = mw.unsqueeze(1) - mw.unsqueeze(2)
    return m.masked_fill(m != 0, -100.0).masked_fill(m == 0, 0.0)


def swin_relative_index(ws):
    """relative_position_index of a (wd, wh, ww) window (2D windows: wd = 1; time: (T, 1, 1))."""
    coords = torch.stack(torch.meshgrid(torch.arange(ws[0]), torch.arange(ws[1]), torch.arange(ws[2]), indexing="ij"))
    cf = coords.flatten(1)
    rel = (cf[:, :, None] - cf[:, None, :]).permute(1, 2, 0).contiguous()
    rel[:, :, 0] += ws[0] - 1
    rel[:, :, 1] += ws[1] - 1
    rel[:, :, 2] += ws[2] - 1
    rel[:, :, 0] *= (2 * ws[1] - 1) * (2 * ws[2] - 1)
    rel[:, :, 1] *= 2 * ws[2] - 1
    return rel.sum(-1)


class SwinWindowAttention(nn.Module):
    """WindowAttention of swin2d_adapter.py (window (1, w, w), optional temporal table) and
    WindowAttention3D of Video Swin (window (wd, wh, ww)): parameters in the official order."""

    def __init__(self, d, window, heads, num_ttokens=0):
        super().__init__()
        self.num_heads = heads
        self.scale = (d // heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * window[0] - 1) * (2 * window[1] - 1) * (2 * window[2] - 1), heads))
        self.register_buffer("relative_position_index", swin_relative_index(window), persistent=False)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        if num_ttokens:
            self.temporal_position_bias_table = nn.Parameter(torch.zeros(2 * num_ttokens - 1, heads))
            self.register_buffer("t_relative_index", swin_relative_index((num_ttokens, 1, 1)), persistent=False)

    def forward(self, x, mask=None, temporal=False):
        b_, n, c = x.shape
        qkv = self.qkv(x).reshape(b_, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0] * self.scale, qkv[1], qkv[2]
        attn = q @ k.transpose(-2, -1)
        if temporal:
            table, index = self.temporal_position_bias_table, self.t_relative_index
        else:
            table, index = self.relative_position_bias_table, self.relative_position_index
        bias = table[index[:n, :n].reshape(-1)].reshape(n, n, -1).permute(2, 0, 1)
        attn = attn + bias.unsqueeze(0)
        if mask is not None:
            nw = mask.shape[0]
            attn = attn.view(b_ // nw, nw, self.num_heads, n, n) + mask.unsqueeze(1).unsqueeze(0)
            attn = attn.view(-1, self.num_heads, n, n)
        attn = attn.softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b_, n, c))


class Swin2DAdapterBlock(nn.Module):
    """SwinTransformerBlock of swin2d_adapter.py on (B, T, H, W, C)."""

    def __init__(self, d, resolution, num_ttokens, heads, window, shift, t_attn, drop_path):
        super().__init__()
        if resolution <= window:          # official: one window, no shift
            window, shift = resolution, 0
        self.window, self.shift, self.t_attn = window, shift, t_attn
        if t_attn:
            self.T_Adapter = Adapter(d, skip=False)
        self.norm1 = nn.LayerNorm(d)
        self.attn = SwinWindowAttention(d, (1, window, window), heads, num_ttokens if t_attn else 0)
        self.drop_path = drop_path_or_identity(drop_path)
        self.norm2 = nn.LayerNorm(d)
        self.mlp = TimmMlp(d, 4 * d)
        self.S_Adapter = Adapter(d, skip=False)
        self.S_Adapter2 = Adapter(d, skip=True)
        if shift > 0:
            self.register_buffer("attn_mask", swin_compute_mask(1, resolution, resolution, (1, window, window), (0, shift, shift)),
                                 persistent=False)
        else:
            self.attn_mask = None

    def forward(self, x):
        b, t, h, w, c = x.shape
        if self.t_attn:     # '(b t) n c -> (b n) t c'
            xt = x.permute(0, 2, 3, 1, 4).reshape(b * h * w, t, c)
            r = self.T_Adapter(self.attn(self.norm1(xt), temporal=True))
            xt = xt + self.drop_path(r)
            x = xt.reshape(b, h, w, t, c).permute(0, 3, 1, 2, 4)
        shortcut = x
        xf = self.norm1(x).reshape(b * t, 1, h, w, c)
        if self.shift > 0:
            xf = torch.roll(xf, shifts=(-self.shift, -self.shift), dims=(2, 3))
        ws = (1, self.window, self.window)
        win = self.S_Adapter2(self.attn(swin_window_partition(xf, ws), mask=self.attn_mask))
        xf = swin_window_reverse(win, ws, b * t, 1, h, w)
        if self.shift > 0:
            xf = torch.roll(xf, shifts=(self.shift, self.shift), dims=(2, 3))
        x = shortcut + xf.reshape(b, t, h, w, c)      # no drop-path here (official)
        xn = self.norm2(x)
        # DropPath on the (b t) n c tensor: per frame
        s = self.drop_path(0.5 * self.S_Adapter(xn).reshape(b * t, h * w, c)).reshape(b, t, h, w, c)
        return x + self.mlp(xn) + s


class SwinBlock3D(nn.Module):
    """SwinTransformerBlock3D of Video Swin on (B, D, H, W, C): after norm1 the tokens are zero-padded
    (F.pad) at the end of D, H, W up to multiples of the (clipped) window, shifted, windowed, and
    cropped back after the reverse shift, as the official forward_part1."""

    def __init__(self, d, heads, window, shift, drop_path):
        super().__init__()
        self.window, self.shift = window, shift
        self.norm1 = nn.LayerNorm(d)
        self.attn = SwinWindowAttention(d, window, heads)
        self.drop_path = drop_path_or_identity(drop_path)
        self.norm2 = nn.LayerNorm(d)
        self.mlp = TimmMlp(d, 4 * d)

    def forward(self, x, mask):
        b, d, h, w, c = x.shape
        ws, ss = swin_get_window_size((d, h, w), self.window, self.shift)
        y = self.norm1(x)
        pd, ph, pw = (-d) % ws[0], (-h) % ws[1], (-w) % ws[2]
        y = F.pad(y, (0, 0, 0, pw, 0, ph, 0, pd))
        dp, hp, wp = d + pd, h + ph, w + pw
        if any(i > 0 for i in ss):
            y = torch.roll(y, shifts=(-ss[0], -ss[1], -ss[2]), dims=(1, 2, 3))
        else:
            mask = None
        y = swin_window_reverse(self.attn(swin_window_partition(y, ws), mask=mask), ws, b, dp, hp, wp)
        if any(i > 0 for i in ss):
            y = torch.roll(y, shifts=ss, dims=(1, 2, 3))
        y = y[:, :d, :h, :w, :]
        x = x + self.drop_path(y)
        return x + self.drop_path(self.mlp(self.norm2(x)))


class SwinPatchMerging(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.reduction = nn.Linear(4 * d, 2 * d, bias=False)
        self.norm = nn.LayerNorm(4 * d)

    def forward(self, x):   # (B, D, H, W, C)
        h, w = x.shape[2], x.shape[3]
        if h % 2 == 1 or w % 2 == 1:   # Video Swin's PatchMerging pads an odd grid (swin2d grids are even)
            x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
        x0, x1 = x[:, :, 0::2, 0::2, :], x[:, :, 1::2, 0::2, :]
        x2, x3 = x[:, :, 0::2, 1::2, :], x[:, :, 1::2, 1::2, :]
        return self.reduction(self.norm(torch.cat([x0, x1, x2, x3], -1)))


class SwinPatchEmbed3D(nn.Module):
    def __init__(self, patch, d):
        super().__init__()
        self.proj = nn.Conv3d(3, d, kernel_size=patch, stride=patch)
        self.norm = nn.LayerNorm(d)

    def forward(self, x):   # (B, 3, T, H, W) -> (B, T', H', W', C)
        # The official PatchEmbed3D zero-pads the end of W, H, D up to patch multiples.
        (pt, ph, pw), (d, h, w) = self.proj.kernel_size, x.shape[2:]
        x = F.pad(x, (0, (-w) % pw, 0, (-h) % ph, 0, (-d) % pt))
        return self.norm(self.proj(x).permute(0, 2, 3, 4, 1))


class SwinStage(nn.Module):
    def __init__(self, blocks, downsample):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.downsample = downsample


class SwinBackbone(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        video = cfg["model.backbone"] == "videoswin"
        e, depths, heads = cfg["model.embed_dim"], cfg["model.depths"], cfg["model.num_heads"]
        patch, r = cfg["model.patch_size"], cfg["model.input_resolution"]
        self.video = video
        self.patch_embed = SwinPatchEmbed3D(tuple(patch), e)
        tt = cfg["model.num_frames"] // patch[0]
        dpr = [v.item() for v in torch.linspace(0, cfg["model.drop_path_rate"], sum(depths))]
        self.layers = nn.ModuleList()
        win = cfg["model.window_size"]
        for i, depth in enumerate(depths):
            d, res = e * 2 ** i, r // patch[1] // 2 ** i
            blocks = []
            for j in range(depth):
                dp = dpr[sum(depths[:i]) + j]
                if video:
                    shift = (0, 0, 0) if j % 2 == 0 else tuple(v // 2 for v in win)
                    blocks.append(SwinBlock3D(d, heads[i], tuple(win), shift, dp))
                else:
                    w = win if isinstance(win, int) else win[0]
                    blocks.append(Swin2DAdapterBlock(d, res, tt, heads[i], w, 0 if j % 2 == 0 else w // 2, j % 2 == 0, dp))
            self.layers.append(SwinStage(blocks, SwinPatchMerging(d) if i < len(depths) - 1 else None))
        self.norm = nn.LayerNorm(e * 2 ** (len(depths) - 1))
        self.window = tuple(win) if video else None

    def forward(self, video):
        x = self.patch_embed(video)                  # (B, T', H', W', C)
        for layer in self.layers:
            if self.video:
                b, d, h, w, c = x.shape
                ws, ss = swin_get_window_size((d, h, w), self.window, tuple(v // 2 for v in self.window))
                # the mask is built on the padded sizes (official BasicLayer: Dp, Hp, Wp)
                pad = lambda n, k: -(-n // k) * k
                mask = swin_compute_mask(pad(d, ws[0]), pad(h, ws[1]), pad(w, ws[2]), ws, ss)
                for blk in layer.blocks:
                    x = blk(x, mask)
            else:
                for blk in layer.blocks:
                    x = blk(x)
            if layer.downsample is not None:
                x = layer.downsample(x)
        x = self.norm(x)
        return x.permute(0, 4, 1, 2, 3)              # (B, C, T', H', W') for the I3D head


# --------------------------------------------------------------------------- recognizer

class I3DHead(nn.Module):
    def __init__(self, d, k, dropout=0.5):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.fc_cls = nn.Linear(d, k)

    def forward(self, x):
        if x.dim() == 5:                        # [B, D, T, H, W] -> mean over T, H, W (AdaptiveAvgPool3d)
            x = x.mean(dim=(2, 3, 4))
        return self.fc_cls(self.dropout(x))


class Recognizer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        kind = cfg["model.backbone"]
        if kind == "clip":
            self.backbone = ViT_CLIP(cfg)
        elif kind == "imagenet":
            self.backbone = TimeSformerIN21K(cfg) if cfg["model.divided_space_time"] else ViT_ImageNet(cfg)
        elif kind == "timesformer":
            self.backbone = TimeSformerCLIP(cfg)
        elif kind in ("swin2d", "videoswin"):
            self.backbone = SwinBackbone(cfg)
        else:
            raise ValueError(f"model.backbone {kind!r}")
        if kind == "timesformer" or cfg["model.divided_space_time"]:
            if cfg["model.adapters"]:
                raise ValueError("TimeSformer models take model.adapters: []")
        width = cfg["model.embed_dim"] * 2 ** (len(cfg["model.depths"]) - 1) if kind in ("swin2d", "videoswin") else cfg["model.width"]
        self.cls_head = I3DHead(width, cfg["model.num_classes"])

    def forward(self, video):
        return self.cls_head(self.backbone(video))


def is_tunable(name, tune):
    if tune == "all":
        return True
    if tune == "head":
        return "cls_head" in name
    if tune == "adapters":  # tools/train.py of the official repo
        return any(s in name for s in ("temporal_embedding", "ln_post", "cls_head", "Adapter"))
    raise ValueError(f"model.tune {tune!r}")


def build_model(cfg):
    model = Recognizer(cfg)
    for name, p in model.named_parameters():
        p.requires_grad_(is_tunable(name, cfg["model.tune"]))
    return model


# --------------------------------------------------------------------------- fixtures

def randomize(model, gen):
    """Every tensor random and non-zero (also D_fc2, temporal_embedding, temporal_fc) so each
    gradient is informative; scales keep activations O(1) so softmaxes stay unsaturated."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            shape = p.shape
            leaf = name.rsplit(".", 1)[-1]
            if p.dim() >= 2 and leaf in ("weight", "in_proj_weight"):
                fan_in = math.prod(shape[1:])
                v = torch.randn(shape, generator=gen) / math.sqrt(fan_in)
            elif leaf == "weight":                          # LayerNorm gain
                v = 1.0 + 0.1 * torch.randn(shape, generator=gen)
            elif leaf in ("bias", "in_proj_bias"):
                v = 0.1 * torch.randn(shape, generator=gen)
            else:                                           # embeddings and class tokens
                v = 0.3 * torch.randn(shape, generator=gen)
            p.copy_(v)


CASES = OrderedDict()


def case(name, batch=2, seed=0, **kw):
    ov = {"model." + k: v for k, v in kw.items()}
    CASES[name] = dict(overrides=ov, batch=batch, seed=seed)


TINY = dict(width=32, layers=2, heads=4, patch_size=8, input_resolution=32, num_frames=4, num_classes=5,
            drop_path_rate=0.0)
ODD = dict(TINY, input_resolution=24, num_frames=3)   # 3x3 patches + class = 10 tokens, T = 3

case("aim_clip_t1", seed=1, backbone="clip", **TINY)
case("aim_clip_t2", seed=2, backbone="clip", num_tadapter=2, adapter_scale=1.0, **ODD)
case("aim_imagenet", seed=3, backbone="imagenet", num_tadapter=2, adapter_scale=1.0,
     **dict(TINY, heads=1))
case("imagenet_spatial", seed=4, backbone="imagenet", adapters=["spatial"], **ODD)
case("imagenet_spatial_temporal", seed=5, backbone="imagenet", adapters=["temporal", "spatial"],
     num_tadapter=2, **ODD)
case("frozen_space_only", seed=6, backbone="clip", adapters=[], **TINY)
case("finetuned_space_only", seed=7, backbone="clip", adapters=[], tune="all", **dict(ODD, width=24))
case("timesformer_clip", seed=8, backbone="timesformer", adapters=[], tune="all", divided_space_time=True,
     **dict(ODD, width=24))
case("timesformer_imagenet", seed=9, backbone="imagenet", adapters=[], tune="all", divided_space_time=True,
     **dict(ODD, width=24))
case("aim_clip_skip", seed=10, backbone="clip", adapter_layers="skip", **dict(TINY, layers=4, width=16))
case("aim_clip_top6", seed=11, backbone="clip", adapter_layers="top6",
     **dict(TINY, layers=12, width=16, heads=2, input_resolution=16))
case("aim_clip_joint_head", seed=12, backbone="clip", adapters=["joint"], tune="head", **ODD)
# Swin: 64² input, patch (2,4,4) -> 16², 8², 4², 2² token grids; window 2 shifts (with masks) in
# stages 1-3 and is clipped to the 2×2 grid of stage 4 (one window, no shift), as window 7 at 224².
SWIN_TINY = dict(embed_dim=8, depths=[2, 2, 2, 2], num_heads=[1, 2, 2, 4], patch_size=[2, 4, 4], input_resolution=64,
                 num_frames=8, num_classes=5, drop_path_rate=0.0)
case("swin2d_aim", batch=1, seed=13, backbone="swin2d", window_size=2, **SWIN_TINY)
# Video Swin: window (2,2,2) over T' = 4: 3D shifts with masks in stages 1-3, stage 4 clipped in h, w.
case("videoswin", batch=1, seed=14, backbone="videoswin", window_size=[2, 2, 2], tune="all", adapters=[],
     **dict(SWIN_TINY, embed_dim=4, num_heads=[1, 1, 2, 2]))
# Video Swin with zero-padded windows: 40² input -> 10×10 then 5×5 token grids, T' = 5. Window
# (3, 7, 7): stage 1 pads to 6×14×14 (2×2×2 windows, shifted by (1, 3, 3) with the mask of the
# padded volume); stage 2 clips h, w to 5 but still pads time 5 -> 6.
case("videoswin_pad", batch=1, seed=15, backbone="videoswin", window_size=[3, 7, 7], tune="all", adapters=[],
     **dict(SWIN_TINY, embed_dim=4, depths=[2, 2], num_heads=[1, 2], input_resolution=40, num_frames=10))
# Video Swin on a clip that is not a patch multiple: 7 frames of 38² are padded to 8 × 40² (T' = 4,
# 10×10 tokens); window (2, 3, 3) pads stage 1 to 12×12 and stage 2's 5×5 to 6×6; the second
# PatchMerging pads the odd 5×5 grid to 6×6 (-> 3×3, where the window is clipped).
case("videoswin_padclip", batch=1, seed=16, backbone="videoswin", window_size=[2, 3, 3], tune="all", adapters=[],
     **dict(SWIN_TINY, embed_dim=4, depths=[2, 2, 2], num_heads=[1, 2, 2], input_resolution=38, num_frames=7))


def save_safetensors(path, tensors, metadata):
    """safetensors writer with a deterministic header (sorted keys), so re-running the script
    reproduces the fixtures byte for byte (safetensors' own writer orders metadata at random)."""
    dtypes = {torch.float32: "F32", torch.int64: "I64"}
    header, blobs, offset = {"__metadata__": dict(sorted(metadata.items()))}, [], 0
    for k in sorted(tensors):
        v = tensors[k].contiguous()
        data = v.numpy().tobytes()
        header[k] = {"dtype": dtypes[v.dtype], "shape": list(v.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(len(h).to_bytes(8, "little"))
        f.write(h)
        for b in blobs:
            f.write(b)


def run_case(name, out_dir):
    spec = CASES[name]
    cfg = full_config(spec["overrides"])
    gen = torch.Generator().manual_seed(1000 + spec["seed"])
    torch.manual_seed(spec["seed"])  # parameter construction only; every value is overwritten below
    model = build_model(cfg)
    randomize(model, gen)
    b, t, r = spec["batch"], cfg["model.num_frames"], cfg["model.input_resolution"]
    video = torch.randn(b, 3, t, r, r, generator=gen)
    label = torch.randint(0, cfg["model.num_classes"], (b,), generator=gen)

    # Expected values are computed in float64 from exactly the stored float32 tensors.
    m64 = copy.deepcopy(model).double().eval()     # eval: no dropout, no drop-path
    logits = m64(video.double())
    loss = F.cross_entropy(logits, label)
    loss.backward()

    tensors = OrderedDict()
    for k, v in model.state_dict().items():
        tensors[k] = v.detach().float().contiguous()
    tensors["video"] = video.contiguous()
    tensors["label"] = label.to(torch.int64)
    tensors["logits"] = logits.detach().float().contiguous()
    tensors["loss"] = loss.detach().float().reshape(1)
    n_grad = 0
    for k, p in m64.named_parameters():
        if p.requires_grad:
            if p.grad is None:
                raise RuntimeError(f"{name}: tunable {k} got no gradient")
            tensors["grad." + k] = p.grad.float().contiguous()
            n_grad += 1
    meta = {"overrides": json.dumps(dict(cfg)), "torch_version": torch.__version__,
            "note": "expected logits/loss/grads computed in float64 from the float32 weights and input"}
    path = os.path.join(out_dir, f"ref_{name}.safetensors")
    save_safetensors(path, tensors, meta)
    n_par = sum(p.numel() for p in model.parameters())
    print(f"{path}: {os.path.getsize(path)} bytes, {n_par} params, {n_grad} grads, loss {loss.item():.6f}")


# --------------------------------------------------------------------------- reference counts

PAPER = OrderedDict()


def paper(name, views, **kw):
    PAPER[name] = (views, {"model." + k: v for k, v in kw.items()})


B16 = dict(backbone="clip")
L14 = dict(backbone="clip", patch_size=14, width=1024, layers=24, heads=16)
IN21K = dict(backbone="imagenet", num_classes=174, num_tadapter=2, adapter_scale=1.0)
for f in (8, 16, 32):
    paper(f"AIM ViT-B/16 CLIP K400 {f}f", 3, num_frames=f, **B16)
for f in (8, 16, 32):
    paper(f"AIM ViT-L/14 CLIP K400 {f}f", 3, num_frames=f, **L14)
for pos in ("bottom6", "top6", "skip"):
    paper(f"AIM ViT-B/16 CLIP K400 8f {pos}", 3, adapter_layers=pos, **B16)
paper("TimeSformer ViT-B/16 CLIP K400 8f (tune all)", 3, backbone="timesformer", adapters=[], tune="all",
      divided_space_time=True)
paper("Finetuned space-only ViT-B/16 CLIP K400 8f", 3, adapters=[], tune="all", **B16)
paper("AIM ViT-B/16 CLIP K700 32f", 9, num_frames=32, num_classes=700, **B16)
paper("AIM ViT-L/14 CLIP K700 32f", 9, num_frames=32, num_classes=700, **L14)
paper("AIM ViT-B/16 CLIP Diving-48 32f", 3, num_frames=32, num_classes=48, **B16)
paper("AIM ViT-L/14 CLIP Diving-48 32f", 3, num_frames=32, num_classes=48, **L14)
paper("AIM ViT-B/16 CLIP SSv2 8f", 3, backbone="clip", num_classes=174, num_tadapter=2, adapter_scale=1.0)
paper("SSv2 abl. frozen space-only (IN-21K)", 3, adapters=[], **IN21K)
paper("SSv2 abl. finetuned space-only", 3, adapters=[], tune="all", **IN21K)
paper("SSv2 abl. TimeSformer (IN-21K, divided)", 3, adapters=[], tune="all", divided_space_time=True, **IN21K)
paper("SSv2 abl. + spatial", 3, adapters=["spatial"], **IN21K)
paper("SSv2 abl. + temporal", 3, adapters=["temporal", "spatial"], **IN21K)
paper("SSv2 abl. + joint (AIM)", 3, **IN21K)
SWINB = dict(patch_size=[2, 4, 4], num_frames=32, embed_dim=128, depths=[2, 2, 18, 2], num_heads=[4, 8, 16, 32])
paper("AIM Swin-B IN-21K K400 32f", 12, backbone="swin2d", window_size=7, **SWINB)
paper("VideoSwin-B IN-21K K400 32f (tune all)", 12, backbone="videoswin", window_size=[8, 7, 7], tune="all", adapters=[], **SWINB)


def sdpa_flop_jit(inputs, outputs):
    """aten::scaled_dot_product_attention (torch >= 2 inside nn.MultiheadAttention): the two
    batched products q·kᵀ and A·v that torch 1.10 ran as aten::bmm, which fvcore counted."""
    from fvcore.nn.jit_handles import get_shape
    q, k = get_shape(inputs[0]), get_shape(inputs[1])
    batch = math.prod(q[:-2])
    return 2 * batch * q[-2] * k[-2] * q[-1]


def count(cfg, with_flops):
    model = build_model(cfg)
    total = sum(p.numel() for p in model.parameters())
    tunable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    gflops = None
    if with_flops:
        from fvcore.nn import FlopCountAnalysis
        model.eval()
        r, t = cfg["model.input_resolution"], cfg["model.num_frames"]
        with torch.no_grad():
            fa = FlopCountAnalysis(model, torch.randn(1, 3, t, r, r))
            fa.set_op_handle("aten::scaled_dot_product_attention", sdpa_flop_jit)
            fa.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            gflops = fa.total() / 1e9
            unsupported = fa.unsupported_ops()
        print(f"   unsupported (not counted): {dict(unsupported)}", file=sys.stderr)
    return total, tunable, gflops


def run_counts(with_flops, only):
    rows, cache = [], {}
    for name, (views, ov) in PAPER.items():
        if only and only not in name:
            continue
        cfg = full_config(ov)
        # Rows differing only in num_classes (and tune) share a trace: the head adds width·K MACs.
        key = json.dumps({k: v for k, v in cfg.items() if k not in ("model.num_classes", "model.tune")})
        reuse = with_flops and key in cache
        total, tunable, gflops = count(cfg, with_flops and not reuse)
        if reuse:
            g0, k0 = cache[key]
            gflops = g0 + cfg["model.width"] * (cfg["model.num_classes"] - k0) / 1e9
        elif with_flops:
            cache[key] = (gflops, cfg["model.num_classes"])
        g = f"{gflops:.2f}" if gflops is not None else "-"
        gv = f"{math.floor(gflops * views)}" if gflops is not None else "-"
        row = f"| {name} | {total:,} | {tunable:,} | {g} | {views} | {gv} |"
        print(row, flush=True)
        rows.append(row)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default="", help="comma-separated case names (default: all)")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "Tests", "Fixtures"))
    ap.add_argument("--counts", action="store_true", help="print the reference counts table instead")
    ap.add_argument("--no-flops", action="store_true", help="with --counts: parameters only")
    ap.add_argument("--only", default="", help="with --counts: rows whose name contains this")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.counts:
        print("| config | total params | tunable params | GFLOPs/view | views | GFLOPs × views |")
        print("|---|---|---|---|---|---|")
        run_counts(not args.no_flops, args.only)
        return
    names = [c for c in args.cases.split(",") if c] or list(CASES)
    for n in names:
        if n not in CASES:
            sys.exit(f"unknown case {n!r}; known: {', '.join(CASES)}")
        run_case(n, os.path.normpath(args.out))


if __name__ == "__main__":
    main()
