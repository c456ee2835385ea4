#!/bin/sh
# Open MPI "rsh agent" for cluster/local_cluster.sh: instead of ssh-ing to a host, enter the
# network namespace that plays it. Open MPI calls it as
#     netns_rsh.sh [ssh-style options] HOST COMMAND...
# HOST is a hostfile entry (an address such as 10.231.0.2, or a namespace name such as aimh2);
# COMMAND is the remote shell command line (orted and its arguments), run by sh as ssh would.
# As over ssh, the remote side starts with a small environment (PATH, HOME, LD_LIBRARY_PATH and a
# TMPDIR of that host's own): whatever the ranks need must come with mpirun -x.
set -eu
state=${AIM_CLUSTER_STATE:-/run/aim-local-cluster}
die() { echo "netns_rsh.sh: $*" >&2; exit 255; }

# Skip ssh-style options (-x, -l user, -p port, -o opt, …), as an ssh replacement must.
while [ $# -gt 0 ]; do
    case "$1" in
        -l|-p|-o|-i|-F|-E|-b|-c|-m|-J|-L|-R|-D|-W) [ $# -ge 2 ] || die "$1 needs a value"; shift 2 ;;
        --) shift; break ;;
        -*) shift ;;
        *) break ;;
    esac
done
[ $# -ge 2 ] || die "usage: netns_rsh.sh [options] HOST COMMAND..."
host=$1; shift
[ -r "$state/hosts" ] || die "no local cluster is up ($state/hosts missing): run cluster/local_cluster.sh up N"
# hosts: one line per host, "address namespace".
ns=$(awk -v h="$host" '$1 == h || $2 == h { print $2; exit }' "$state/hosts")
[ -n "$ns" ] || die "host '$host' is not one of this local cluster's hosts ($(awk '{printf "%s ", $1}' "$state/hosts"))"
mkdir -p "$state/$ns/tmp"
exec ip netns exec "$ns" env -i PATH="$PATH" HOME="${HOME:-/root}" LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}" \
    TMPDIR="$state/$ns/tmp" AIM_CLUSTER_HOST="$ns" sh -c "$*"
