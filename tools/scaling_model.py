#!/usr/bin/env python3
"""Step-time model of data-parallel AIM vs full finetuning on 1-16 nodes (issue 7, docs/SCALING.md).

Reads the figures measured by `aim-report efficiency` (report.csv: step, forward, backward time per
rank, bytes allreduced per step) and an allreduce bandwidth, and prints a markdown table of the
modelled step time for 8 ranks on one node and for 2-16 nodes at the stated network bandwidths.
Python 3 standard library only.

  tools/scaling_model.py --csv R2/report.csv [--compute-csv R1/report.csv] \
      (--intra-gbps 1.1 | --mpi-check mpi_check.txt) [--inter-gbps 12,3] [--nodes 1,2,4,8,16]
  tools/scaling_model.py --model AIM=10966672:9.46:4.92 --model "full FT=86107024:9.29:5.76" --intra-gbps 1.1

The model (see docs/SCALING.md):
  B = bytes allreduced per step (4 x tunable floats), k nodes, r ranks per node, N = k r.
  Hierarchical ring allreduce: reduce-scatter inside the node, ring allreduce of the shards across
  nodes, all-gather inside the node. Each rank's link carries 2(r-1)/r x B inside the node, each
  node's NIC carries 2(k-1)/k x B across nodes:
    comm = 2(r-1)/r x B / bw_intra + 2(k-1)/k x B / bw_inter
         + buckets x (2(r-1) alpha_intra + 2(k-1) alpha_inter)
  (k = 1: only the intra-node terms, i.e. a plain ring of r ranks.)
  Overlap (DDP buckets of <= 25 MiB launched during backward): at most the backward time hides
  communication, and the last bucket (the first layers' gradients) can only start after backward:
    exposed = max(comm x last_bucket_bytes / B, comm - backward)
    step    = compute + exposed,  efficiency = compute / step
  compute = the measured step time of one rank without communication (the 1-rank run), times
  --clips-per-rank (clips each rank processes per optimizer step; comm does not grow with it).
"""
import argparse
import csv
import math
import re
import sys


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--csv", help="report.csv of `aim-report efficiency` (bytes per step; compute too unless --compute-csv)")
    p.add_argument("--compute-csv", help="report.csv of a 1-rank run at the same per-rank batch: its step/backward "
                                         "times are the compute (no communication, no second rank on the cores)")
    p.add_argument("--model", action="append", default=[],
                   help="NAME=tunable_floats:step_s:backward_s (instead of, or in addition to, --csv)")
    p.add_argument("--intra-gbps", type=float, help="intra-node allreduce bus bandwidth per rank, GB/s")
    p.add_argument("--mpi-check", help="output of `mpirun -n R aim-mpi-check --bench`: takes the busbw of the largest "
                                       "MPI_Iallreduce+watchdog row as --intra-gbps")
    p.add_argument("--inter-gbps", default="12,3",
                   help="inter-node bandwidths per node, GB/s, comma-separated (default 12 = 100 Gb/s, 3 = 25 Gb/s)")
    p.add_argument("--alpha-intra-us", type=float, default=2.0, help="latency per ring step inside a node, µs (default 2)")
    p.add_argument("--alpha-inter-us", type=float, default=10.0, help="latency per ring step across nodes, µs (default 10)")
    p.add_argument("--ranks-per-node", type=int, default=8)
    p.add_argument("--nodes", default="1,2,4,8,16")
    p.add_argument("--bucket-mib", type=float, default=25.0, help="gradient bucket cap (dist.bucket_mb, default 25)")
    p.add_argument("--clips-per-rank", type=int, default=1, help="clips per rank per optimizer step (scales compute)")
    return p.parse_args(argv)


def short_name(label, tunable):
    l = label.lower()
    if "aim" in l:
        return "AIM"
    if "finetune" in l or "full" in l:
        return "full FT"
    return label


def read_csv(path):
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as e:
        sys.exit(f"scaling_model: cannot read {path}: {e}")
    if not rows:
        sys.exit(f"scaling_model: {path} has no rows")
    return rows


def models_from_args(a):
    models = []   # dicts: name, floats, bytes, step, backward, source
    if a.csv:
        rows = read_csv(a.csv)
        compute = {}
        if a.compute_csv:
            for r in read_csv(a.compute_csv):
                compute[r["config"]] = r
        for r in rows:
            floats = int(r["tunable_params"])
            b = int(r["allreduce_bytes_per_step"]) or 4 * floats
            c = compute.get(r["config"])
            if c is not None:
                step, back, src = float(c["step_time_s"]), float(c["backward_s"]), f"1-rank run ({c['threads']} thread)"
            else:
                # No 1-rank run: the multi-rank step minus the exposed wait.
                step = float(r["step_time_s"]) - float(r["allreduce_wait_s"])
                back, src = float(r["backward_s"]), f"{r['ranks']}-rank run minus wait ({r['threads']} thread)"
            models.append(dict(name=short_name(r["label"], floats), floats=floats, bytes=b, step=step, backward=back, source=src))
    for m in a.model:
        try:
            name, rest = m.split("=", 1)
            floats, step, back = rest.split(":")
            models.append(dict(name=name, floats=int(floats), bytes=4 * int(floats), step=float(step),
                               backward=float(back), source="given"))
        except ValueError:
            sys.exit(f"scaling_model: --model expects NAME=floats:step_s:backward_s, got '{m}'")
    if not models:
        sys.exit("scaling_model: give --csv or --model")
    return models


def intra_bandwidth(a):
    if a.intra_gbps:
        return a.intra_gbps, "given (--intra-gbps)"
    if a.mpi_check:
        best = None
        try:
            text = open(a.mpi_check).read()
        except OSError as e:
            sys.exit(f"scaling_model: cannot read {a.mpi_check}: {e}")
        ranks = re.search(r"(\d+) ranks", text)
        for line in text.splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) == 8 and cells[0].startswith("MPI_Iallreduce"):
                try:
                    floats, busbw = int(cells[1]), float(cells[7])
                except ValueError:
                    continue
                if best is None or floats > best[0]:
                    best = (floats, busbw)
        if best is None:
            sys.exit(f"scaling_model: no MPI_Iallreduce row in {a.mpi_check}")
        n = ranks.group(1) if ranks else "?"
        return best[1], f"measured here: aim-mpi-check --bench, {n} ranks, {best[0] / 1e6:.0f}M floats, MPI_Iallreduce busbw"
    sys.exit("scaling_model: give --intra-gbps or --mpi-check")


def comm_seconds(nbytes, k, r, bw_intra, bw_inter, a_intra, a_inter, buckets):
    t = 0.0
    if r > 1:
        t += 2 * (r - 1) / r * nbytes / (bw_intra * 1e9) + buckets * 2 * (r - 1) * a_intra
    if k > 1:
        t += 2 * (k - 1) / k * nbytes / (bw_inter * 1e9) + buckets * 2 * (k - 1) * a_inter
    return t


def main(argv):
    a = parse_args(argv)
    models = models_from_args(a)
    bw_intra, bw_src = intra_bandwidth(a)
    inter = [float(x) for x in a.inter_gbps.split(",") if x]
    nodes = [int(x) for x in a.nodes.split(",") if x]
    r = a.ranks_per_node
    cap = a.bucket_mib * 1024 * 1024
    a_intra, a_inter = a.alpha_intra_us * 1e-6, a.alpha_inter_us * 1e-6

    print(f"Model inputs: {r} ranks per node; intra-node bus bandwidth {bw_intra:.2f} GB/s per rank ({bw_src}); "
          f"inter-node {', '.join(f'{x:g}' for x in inter)} GB/s per node; latency {a.alpha_intra_us:g} µs per ring step "
          f"inside a node, {a.alpha_inter_us:g} µs across nodes; buckets of ≤ {a.bucket_mib:g} MiB; "
          f"{a.clips_per_rank} clip(s) per rank per step.")
    print()
    print("| model | tunable floats | MB allreduced / step | compute s / step | of which backward s | source of compute |")
    print("|---|---:|---:|---:|---:|---|")
    for m in models:
        print(f"| {m['name']} | {m['floats']:,} | {m['bytes'] / 1e6:.1f} | {m['step'] * a.clips_per_rank:.2f} | "
              f"{m['backward'] * a.clips_per_rank:.2f} | {m['source']} |")
    if len(models) >= 2:
        lo, hi = min(models, key=lambda m: m["bytes"]), max(models, key=lambda m: m["bytes"])
        print()
        print(f"Communication ratio {hi['name']} ÷ {lo['name']}: {hi['bytes'] / lo['bytes']:.2f}× the bytes per step "
              f"({hi['floats'] / 1e6:.1f}M vs {lo['floats'] / 1e6:.1f}M floats), so {hi['bytes'] / lo['bytes']:.2f}× the bandwidth "
              "term of every row below.")
    print()
    print("| nodes × ranks | inter-node GB/s | model | comm s (allreduce alone) | exposed s (overlapped) | "
          "step s (overlapped) | efficiency | step s (blocking) | efficiency blocking |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
    for k in nodes:
        for bw in (inter if k > 1 else [None]):
            for m in models:
                compute = m["step"] * a.clips_per_rank
                backward = m["backward"] * a.clips_per_rank
                buckets = max(1, math.ceil(m["bytes"] / cap))
                last = m["bytes"] - (buckets - 1) * cap
                c = comm_seconds(m["bytes"], k, r, bw_intra, bw or 1.0, a_intra, a_inter, buckets)
                exposed = max(c * last / m["bytes"], c - backward)
                step, blocking = compute + exposed, compute + c
                print(f"| {k} × {r} | {'–' if bw is None else f'{bw:g}'} | {m['name']} | {c:.3f} | {exposed:.3f} | "
                      f"{step:.2f} | {compute / step:.1%} | {blocking:.2f} | {compute / blocking:.1%} |")
    print()
    print("Step time at which the allreduce alone would be 5 % of the step (comm ÷ 0.05), i.e. how fast a worker's "
          "compute may get before communication matters even without overlap:")
    print()
    print("| model | " + " | ".join(["1 node"] + [f"{k} nodes @ {bw:g} GB/s" for k in nodes if k > 1 for bw in inter]) + " |")
    print("|---|" + "---:|" * (1 + sum(len(inter) for k in nodes if k > 1)))
    for m in models:
        buckets = max(1, math.ceil(m["bytes"] / cap))
        cells = [comm_seconds(m["bytes"], 1, r, bw_intra, 1.0, a_intra, a_inter, buckets) / 0.05]
        cells += [comm_seconds(m["bytes"], k, r, bw_intra, bw, a_intra, a_inter, buckets) / 0.05
                  for k in nodes if k > 1 for bw in inter]
        print(f"| {m['name']} | " + " | ".join(f"{x:.2f} s" for x in cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
