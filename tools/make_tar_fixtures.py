#!/usr/bin/env python3
"""Writes the tar fixtures of Tests/AIMDataTests/ShardTests.swift with Python's tarfile only
(no webdataset package): what a WebDataset writer produces, and the long-name conventions.

    python3 tools/make_tar_fixtures.py            # writes Tests/Fixtures/tar/*

- webdataset_layout.tar: two samples as webdataset.TarWriter lays them out (PAX format,
  members <key>.cls, <key>.json, <key>.mp4; keys without dots), no aim index beside it. The
  videos are 32x32, 8 frames, mpeg4 in MP4, frame i uniformly gray 10 + 5 i (the ffmpeg CLI
  makes them; the gray levels let the test check which frame decoded). The second key is 120
  characters, so its members need a pax 'path' record.
- gnu_longname.tar: GNU_FORMAT, one member with a 130-character name (././@LongLink, type L).
- ustar_prefix.tar: USTAR_FORMAT, one member whose 130-character name is split into the
  prefix and name fields.
Deterministic: mtime 0, uid/gid 0, no owner names.
"""
import io
import os
import subprocess
import tarfile
import tempfile

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Fixtures", "tar")


def tiny_video(path, start_gray):
    # 8 gray frames: a 1x1 lavfi color per frame would need a filter graph; a raw RGB stream is simpler.
    raw = b"".join(bytes([start_gray + 5 * i]) * (32 * 32 * 3) for i in range(8))
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
                    "-s", "32x32", "-r", "8", "-i", "-", "-c:v", "mpeg4", "-q:v", "10", "-g", "4",
                    "-map_metadata", "-1", "-fflags", "+bitexact", "-flags:v", "+bitexact", path],
                   input=raw, check=True)
    with open(path, "rb") as f:
        return f.read()


def add(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def main():
    os.makedirs(OUT, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        videos = [tiny_video(os.path.join(tmp, f"v{i}.mp4"), 10 + 40 * i) for i in range(2)]
    long_key = "k" * 112 + "_sample1"  # 120 characters
    with tarfile.open(os.path.join(OUT, "webdataset_layout.tar"), "w", format=tarfile.PAX_FORMAT) as t:
        for key, label, video in [("sample0", 3, videos[0]), (long_key, 1, videos[1])]:
            add(t, key + ".cls", str(label).encode())
            add(t, key + ".json", ('{"label": %d}' % label).encode())
            add(t, key + ".mp4", video)
    long_name = "dir_" + "n" * 120 + "/x.txt"  # 130 characters, the last part short enough for ustar's prefix split
    with tarfile.open(os.path.join(OUT, "gnu_longname.tar"), "w", format=tarfile.GNU_FORMAT) as t:
        add(t, long_name, b"gnu")
    with tarfile.open(os.path.join(OUT, "ustar_prefix.tar"), "w", format=tarfile.USTAR_FORMAT) as t:
        add(t, long_name, b"ustar")


if __name__ == "__main__":
    main()
