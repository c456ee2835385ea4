#!/usr/bin/env python3
"""Hand-run interchange check (issue 21): the `webdataset` package reads shards written by
`aim-data shard`. Needs `pip install webdataset` (bench/.venv has it); CI has no Python
packages, so this is not a test.

    bench/.venv/bin/python tools/check_webdataset_reads_shards.py DIR/train-manifest.json

Reads every sample of the manifest's shards through webdataset.WebDataset (its own tar
reader, brace pattern from the manifest) and checks, per sample: the keys webdataset groups
are exactly our keys, `cls` is the label, `json` names the source video, and the video bytes
are that file's bytes (SHA-256), when the source file is still there. Also checks the
manifest's per-shard SHA-256 with hashlib. Exit status 1 on any mismatch.
"""
import hashlib
import json
import os
import sys

import webdataset as wds


def main():
    manifest_path = sys.argv[1]
    folder = os.path.dirname(os.path.abspath(manifest_path))
    with open(manifest_path) as f:
        manifest = json.load(f)
    problems = []
    for shard in manifest["shards"]:
        with open(os.path.join(folder, shard["tar"]), "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        if digest != shard["sha256"]:
            problems.append(f"{shard['tar']}: sha256 {digest} != manifest {shard['sha256']}")
    pattern = os.path.join(folder, manifest["pattern"])
    samples = compared = 0
    video_exts = {"mp4", "m4v", "mov", "avi", "mkv", "webm", "flv", "mpg", "mpeg", "ts", "ogv", "wmv", "3gp", "gif"}
    for sample in wds.WebDataset(pattern, shardshuffle=False):
        samples += 1
        key = sample["__key__"]
        exts = [k for k in sample if not k.startswith("__")]
        videos = [k for k in exts if k in video_exts]
        if sorted(exts) != sorted(["cls", "json"] + videos) or len(videos) != 1:
            problems.append(f"{key}: members {exts}")
            continue
        meta = json.loads(sample["json"])
        if int(sample["cls"]) != meta["label"]:
            problems.append(f"{key}: cls {sample['cls']!r} != json label {meta['label']}")
        if os.path.exists(meta["path"]):
            with open(meta["path"], "rb") as f:
                if hashlib.sha256(f.read()).digest() != hashlib.sha256(sample[videos[0]]).digest():
                    problems.append(f"{key}: video bytes differ from {meta['path']}")
            compared += 1
    if samples != manifest["samples"]:
        problems.append(f"webdataset read {samples} samples, the manifest counts {manifest['samples']}")
    print(f"webdataset {wds.__version__ if hasattr(wds, '__version__') else '?'} read {samples} samples from "
          f"{len(manifest['shards'])} shard(s) ({pattern}); {compared} videos compared byte for byte with their "
          f"source files; shard SHA-256 checked with hashlib")
    for p in problems:
        print("MISMATCH:", p)
    print("OK" if not problems else f"{len(problems)} problem(s)")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
