#!/usr/bin/env python3
"""Hand-run interchange check (issue 21), the other direction: webdataset's own ShardWriter
writes an mmaction2 video list as shards in its usual layout (`<key>.cls`, `<key>.mp4` …, no
aim index), which `aim-data check` / the loader then read with `data.format: shards` (the
index is built on first open). Needs `pip install webdataset` (bench/.venv has it).

    bench/.venv/bin/python tools/write_webdataset_shards.py LIST ROOT OUT_DIR [maxcount]
"""
import os
import sys

import webdataset as wds


def main():
    listing, root, out = sys.argv[1], sys.argv[2], sys.argv[3]
    maxcount = int(sys.argv[4]) if len(sys.argv) > 4 else 5
    os.makedirs(out, exist_ok=True)
    with wds.ShardWriter(os.path.join(out, "wds-%06d.tar"), maxcount=maxcount) as sink:
        for i, line in enumerate(open(listing)):
            rel, label = line.split()
            ext = rel.rsplit(".", 1)[1].lower()
            with open(os.path.join(root, rel), "rb") as f:
                sink.write({"__key__": "%06d" % i, "cls": int(label), ext: f.read()})


if __name__ == "__main__":
    main()
