#!/usr/bin/env bash
# Launch an aim-swift tool data-parallel with Open MPI, one rank per process, K ranks per node,
# each rank pinned to cores/K cores and using that many OpenBLAS threads.
#
#   cluster/mpirun.sh -n RANKS [--hostfile F] [--ranks-per-node K] [--cores-per-node C]
#                     [--iface IF] [--dry-run] -- bin/aim-train --config CONFIG [...]
#
# -n RANKS            total ranks (processes)
# --hostfile F        Open MPI hostfile (see cluster/hostfile.example); without it, this node only
# --ranks-per-node K  ranks on each node (default: RANKS on one node, else the first host's slots=)
# --cores-per-node C  cores of each node (default: nproc here; nodes are assumed alike)
# --iface IF          network interface(s) for MPI traffic, e.g. eth0 or 10.0.0.0/24
# --dry-run           print the mpirun command instead of running it
set -euo pipefail

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
die() { echo "cluster/mpirun.sh: $*" >&2; exit 2; }

ranks="" hostfile="" per_node="" cores="" iface="" dry=0
# An option's value: present, and not the next option (`--iface --dry-run` took --dry-run as
# the interface and launched for real; `-n` at the end stopped with no word).
value() {
  if [[ $# -lt 2 || -z "$2" || "$2" == -* ]]; then echo "cluster/mpirun.sh: $1 needs a value" >&2; exit 2; fi
  printf '%s' "$2"
}
while [[ $# -gt 0 ]]; do
  case "$1" in
    -n|--np) ranks=$(value "$@") || exit 2; shift 2 ;;
    --hostfile) hostfile=$(value "$@") || exit 2; shift 2 ;;
    --ranks-per-node) per_node=$(value "$@") || exit 2; shift 2 ;;
    --cores-per-node) cores=$(value "$@") || exit 2; shift 2 ;;
    --iface) iface=$(value "$@") || exit 2; shift 2 ;;
    --dry-run) dry=1; shift ;;
    -h|--help) usage ;;
    --) shift; break ;;
    *) die "unknown option '$1' (the command to run goes after --)" ;;
  esac
done
[[ $# -gt 0 ]] || die "no command given: put it after --, e.g. -- bin/aim-train --config configs/k400/aim_vitb16_clip_8f.yaml"
[[ "$ranks" =~ ^[1-9][0-9]*$ ]] || die "-n RANKS must be a positive integer, got '${ranks}'"
command -v mpirun >/dev/null || die "mpirun not found: install openmpi-bin (make deps)"

if [[ -n "$hostfile" ]]; then
  [[ -r "$hostfile" ]] || die "hostfile '$hostfile' is not readable"
  if [[ -z "$per_node" ]]; then
    # slots=N, not the max_slots=N beside it.
    per_node=$(grep -v '^\s*#' "$hostfile" | grep -oE '(^|[[:space:]])slots=[0-9]+' | head -1 | cut -d= -f2 || true)
    [[ -n "$per_node" ]] || die "hostfile '$hostfile' has no slots=N on its first host: pass --ranks-per-node K"
  fi
else
  per_node="${per_node:-$ranks}"
fi
[[ "$per_node" =~ ^[1-9][0-9]*$ ]] || die "--ranks-per-node must be a positive integer, got '$per_node'"
# Fewer ranks than a node's slots: those ranks share its cores.
(( per_node <= ranks )) || per_node=$ranks
# The node's cores: GNU nproc answers OMP_NUM_THREADS when it is set (a module's 1 would give
# every rank one thread on an idle node).
cores="${cores:-$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)}"
[[ "$cores" =~ ^[1-9][0-9]*$ ]] || die "--cores-per-node must be a positive integer, got '$cores'"

# Threads per rank = cores ÷ ranks per node; OpenBLAS threads × ranks must not exceed the cores.
threads=$(( cores / per_node )); (( threads >= 1 )) || threads=1
args=(-n "$ranks")
[[ -n "$hostfile" ]] && args+=(--hostfile "$hostfile")
if (( per_node <= cores )); then
  # Each rank owns `threads` consecutive cores (PE=…), so its BLAS threads stay on them.
  args+=(--map-by "ppr:${per_node}:node:PE=${threads}" --bind-to core)
else
  args+=(--map-by "ppr:${per_node}:node" --oversubscribe --bind-to none)
fi
if [[ -n "$iface" ]]; then
  args+=(--mca btl_tcp_if_include "$iface" --mca oob_tcp_if_include "$iface")
fi
[[ "$(id -u)" == 0 ]] && args+=(--allow-run-as-root)

export OPENBLAS_NUM_THREADS="$threads" OMP_NUM_THREADS="$threads"
# OpenBLAS's own threads (rarely woken: our loops run its products) sleep right after a call.
export OPENBLAS_THREAD_TIMEOUT="${OPENBLAS_THREAD_TIMEOUT:-4}"
args+=(-x OPENBLAS_NUM_THREADS -x OMP_NUM_THREADS -x OPENBLAS_THREAD_TIMEOUT -x PATH)
[[ -n "${OMP_WAIT_POLICY:-}" ]] && args+=(-x OMP_WAIT_POLICY)
for v in LD_LIBRARY_PATH AIM_COLLECTIVE_TIMEOUT AIM_DISTRIBUTED; do
  [[ -n "${!v:-}" ]] && args+=(-x "$v")
done

echo "cluster/mpirun.sh: $ranks ranks, $per_node per node, $threads threads per rank (cores per node: $cores)" >&2
if (( dry )); then
  printf '%q ' mpirun "${args[@]}" "$@"; echo
  exit 0
fi
exec mpirun "${args[@]}" "$@"
