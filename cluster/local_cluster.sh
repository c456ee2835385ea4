#!/usr/bin/env bash
# A multi-node Open MPI cluster on one Linux machine: N "hosts" as network namespaces joined by
# a bridge, so MPI traffic crosses a real TCP/IP network (veth + bridge) instead of shared memory.
#
#   cluster/local_cluster.sh up N                  create hosts aimh1..aimhN (10.231.0.1..N on eth0)
#   cluster/local_cluster.sh run -- MPIRUN_ARGS    mpirun from host 1 over all hosts, TCP only
#   cluster/local_cluster.sh exec I -- CMD...      run CMD on host I (inside its namespace)
#   cluster/local_cluster.sh link I down|up        pull / plug host I's network cable
#   cluster/local_cluster.sh pids I                processes on host I (pid and name)
#   cluster/local_cluster.sh status                hosts, addresses, links
#   cluster/local_cluster.sh down                  remove everything `up` made (idempotent)
#
# Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN: `ip netns`) and iproute2. Nothing outside the
# namespaces gets an address: the bridge aimbr0 has none, so traffic between the hosts never
# leaves them. Every host sees the same filesystem (as a cluster with a shared mount would).
# State (hostfile, host list, per-host TMPDIR) lives in /run/aim-local-cluster (up/down serialise
# on the empty file /run/aim-local-cluster.lock, which stays); `down` removes
# what that state names, kills processes left in the namespaces, and also sweeps aimh*/aimv*/
# aimbr0 leftovers if the state was lost.
#
# `run` adds: --hostfile (one slot per host), --map-by node (rank i on host i+1) and
# --bind-to none (the hosts share this machine's cores) unless given,
# the rsh agent cluster/netns_rsh.sh, --mca plm_rsh_no_tree_spawn 1, --mca pml ob1,
# --mca btl tcp,self and btl/oob_tcp_if_include 10.231.0.0/24 (no shared-memory path, only the
# namespaces' addresses), OOB keepalives that declare a silent daemon lost after 25 s (instead of
# 480 s), --allow-run-as-root as root, and -x of PATH, LD_LIBRARY_PATH, the
# OMPI_ALLOW_RUN_AS_ROOT pair, the thread settings (OPENBLAS_*, OMP_*) and every AIM_* variable.
# Environment: AIM_CLUSTER_STATE (default /run/aim-local-cluster), AIM_CLUSTER_DRY_RUN=1 (`run`
# prints the mpirun command instead of running it).
set -euo pipefail

NET=10.231.0            # the hosts' /24; host i is $NET.i
PREFIX=24
BRIDGE=aimbr0
NS_PREFIX=aimh          # namespace (= host) names aimh1..aimhN
VETH_PREFIX=aimv        # bridge-side veth ends aimv1..aimvN; the namespace side is eth0
MAX_HOSTS=32
STATE=${AIM_CLUSTER_STATE:-/run/aim-local-cluster}
LOCK=${STATE}.lock
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
AGENT=$HERE/netns_rsh.sh

die() { echo "local_cluster.sh: $*" >&2; exit 2; }
say() { echo "local_cluster.sh: $*" >&2; }
usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

preflight() {
    [[ "$(id -u)" == 0 ]] || die "needs root (ip netns needs CAP_NET_ADMIN and CAP_SYS_ADMIN)"
    command -v ip >/dev/null || die "ip not found: install iproute2 (make deps)"
}

# Serialises up/down so two callers never half-build the same cluster (bounded wait).
lock() {
    mkdir -p "$(dirname "$LOCK")"
    exec 9>"$LOCK"
    flock -w 60 9 || die "another local_cluster.sh up/down holds $LOCK for more than 60 s"
}

hosts_up() { [[ -r "$STATE/hosts" ]] && wc -l <"$STATE/hosts" || echo 0; }
ns_of() {
    local i=$1 n
    n=$(hosts_up)
    [[ "$i" =~ ^[1-9][0-9]*$ ]] && (( i <= n )) || die "host '$i' is not one of 1..$n (is the cluster up?)"
    echo "$NS_PREFIX$i"
}

# Runs "$@" until it succeeds, at most `tries` times 0.1 s apart.
retry() {
    local tries=$1; shift
    for ((k = 0; k < tries; k++)); do "$@" && return 0; sleep 0.1; done
    return 1
}

cmd_up() {
    local n=${1:-}
    [[ "$n" =~ ^[1-9][0-9]*$ ]] && (( n >= 1 && n <= MAX_HOSTS )) || die "up N: N must be 1..$MAX_HOSTS, got '${n}'"
    preflight; lock
    [[ -e "$STATE/created" ]] && die "a local cluster is already up ($(hosts_up) hosts, state in $STATE): run down first"
    local i
    for ((i = 1; i <= n; i++)); do
        ip netns list | grep -qw "$NS_PREFIX$i" && die "namespace $NS_PREFIX$i exists but is not in $STATE: run down first"
        ip link show "$VETH_PREFIX$i" >/dev/null 2>&1 && die "link $VETH_PREFIX$i exists but is not in $STATE: run down first"
    done
    ip link show "$BRIDGE" >/dev/null 2>&1 && die "link $BRIDGE exists but is not in $STATE: run down first"
    mkdir -p "$STATE"
    : >"$STATE/created"; : >"$STATE/hosts"; : >"$STATE/hostfile"
    # Record each object before making it, so a failure half-way leaves `down` a complete list.
    trap 'say "up failed at line $LINENO; removing what was made"; cmd_down_locked; exit 1' ERR
    echo "bridge $BRIDGE" >>"$STATE/created"
    ip link add "$BRIDGE" type bridge
    ip link set "$BRIDGE" up
    for ((i = 1; i <= n; i++)); do
        local ns=$NS_PREFIX$i veth=$VETH_PREFIX$i addr=$NET.$i
        echo "ns $ns" >>"$STATE/created"
        ip netns add "$ns"
        echo "veth $veth" >>"$STATE/created"
        ip link add "$veth" type veth peer name eth0 netns "$ns"
        ip link set "$veth" master "$BRIDGE" up
        # IPv4 only; a dead peer's unacknowledged TCP data fails after ~13 s (5 retransmissions)
        # instead of Linux's ~15 min (tcp_retries2=15), so mpirun cannot wait a quarter of an hour
        # on a daemon behind a pulled cable. Both are this namespace's own settings.
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 \
            net.ipv4.tcp_retries2=5
        ip -n "$ns" addr add "$addr/$PREFIX" dev eth0
        ip -n "$ns" link set lo up
        ip -n "$ns" link set eth0 up
        mkdir -p "$STATE/$ns/tmp"
        echo "$addr $ns" >>"$STATE/hosts"
        echo "$addr slots=1" >>"$STATE/hostfile"
    done
    trap - ERR
    # Every host reaches every other over TCP (a refused connection to port 9 proves the path).
    for ((i = 2; i <= n; i++)); do
        retry 50 reachable 1 "$i" || { say "host 1 cannot reach host $i ($NET.$i) over TCP; removing the cluster"; cmd_down_locked; exit 1; }
    done
    say "$n host(s) up: $(awk '{printf "%s=%s ", $2, $1}' "$STATE/hosts")(hostfile $STATE/hostfile)"
}

# True when host `from` gets an answer (accept or refusal) from host `to` on TCP port 9 within 1 s.
reachable() {
    local from=$NS_PREFIX$1 to=$NET.$2 out
    out=$(ip netns exec "$from" timeout 1 bash -c "exec 3<>/dev/tcp/$to/9" 2>&1) && return 0
    [[ "$out" == *"refused"* ]]
}

cmd_down() { preflight; lock; cmd_down_locked; }

cmd_down_locked() {
    local names=() links=() kind name
    if [[ -r "$STATE/created" ]]; then
        while read -r kind name; do
            case "$kind" in ns) names+=("$name") ;; veth|bridge) links+=("$name") ;; esac
        done <"$STATE/created"
    fi
    # Leftovers of a lost state file: our names only.
    while read -r name _; do [[ "$name" =~ ^${NS_PREFIX}[0-9]+$ ]] && names+=("$name"); done < <(ip netns list 2>/dev/null || true)
    while read -r name; do links+=("$name"); done < <(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' |
        grep -E "^(${VETH_PREFIX}[0-9]+|$BRIDGE)$" || true)
    mapfile -t names < <(printf '%s\n' "${names[@]}" | grep . | sort -u)
    mapfile -t links < <(printf '%s\n' "${links[@]}" | grep . | sort -u)
    local ns pids k
    for ns in "${names[@]}"; do
        ip netns list | grep -qw "$ns" || continue
        # Processes still on that host (ranks, orted, mpirun of a failed run): TERM, then KILL, bounded.
        for sig in TERM KILL; do
            pids=$(ip netns pids "$ns" 2>/dev/null || true)
            [[ -z "$pids" ]] && break
            say "$ns: sending SIG$sig to $(echo $pids)"
            kill -s "$sig" $pids 2>/dev/null || true
            for ((k = 0; k < 50; k++)); do [[ -z "$(ip netns pids "$ns" 2>/dev/null)" ]] && break; sleep 0.1; done
        done
        [[ -n "$(ip netns pids "$ns" 2>/dev/null)" ]] && say "$ns: processes $(ip netns pids "$ns" | tr '\n' ' ')survived SIGKILL (in uninterruptible sleep?)"
        ip netns del "$ns" 2>/dev/null || say "could not delete namespace $ns"
    done
    for name in "${links[@]}"; do
        ip link show "$name" >/dev/null 2>&1 && { ip link del "$name" 2>/dev/null || say "could not delete link $name"; }
    done
    rm -rf "$STATE"
    local left
    left=$( { ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^${NS_PREFIX}[0-9]+$"; \
              ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' | grep -E "^(${VETH_PREFIX}[0-9]+|$BRIDGE)$"; } || true)
    [[ -z "$left" ]] || die "down left behind: $(echo $left)"
    say "down: removed ${#names[@]} namespace(s) and ${#links[@]} link(s)"
}

cmd_run() {
    preflight
    [[ "${1:-}" == "--" ]] && shift
    [[ $# -gt 0 ]] || die "run: give mpirun's arguments after --, e.g. run -- -n 2 bin/aim-mpi-check"
    [[ -r "$STATE/hostfile" ]] || die "no local cluster is up: run '$0 up N' first"
    command -v mpirun >/dev/null || die "mpirun not found: install openmpi-bin (make deps)"
    local args=(--hostfile "$STATE/hostfile"
                --mca plm_rsh_agent "$AGENT" --mca plm_rsh_no_tree_spawn 1
                --mca pml ob1 --mca btl tcp,self
                --mca btl_tcp_if_include "$NET.0/$PREFIX" --mca oob_tcp_if_include "$NET.0/$PREFIX"
                --mca oob_tcp_keepalive_time 10 --mca oob_tcp_keepalive_intvl 5 --mca oob_tcp_keepalive_probes 3)
    [[ " $* " == *" --map-by "* ]] || args+=(--map-by node)
    # The hosts share this machine's cores, but each host's daemon sees all of them and would pin
    # its first rank to core 0: every rank on the same core. Let the kernel spread them instead.
    [[ " $* " == *" --bind-to "* ]] || args+=(--bind-to none)
    [[ "$(id -u)" == 0 ]] && args+=(--allow-run-as-root)
    local v
    for v in PATH LD_LIBRARY_PATH OMPI_ALLOW_RUN_AS_ROOT OMPI_ALLOW_RUN_AS_ROOT_CONFIRM OPENBLAS_NUM_THREADS OMP_NUM_THREADS \
             OMP_WAIT_POLICY OPENBLAS_THREAD_TIMEOUT OPENBLAS_CORETYPE $(compgen -e | grep -E '^AIM_' | grep -v '^AIM_CLUSTER_' || true); do
        [[ -n "${!v:-}" ]] && args+=(-x "$v")
    done
    # Every "host" sees all of this machine's cores and takes them: ranks × threads oversubscribe
    # the machine unless aim-train is told its share.
    local ranks="" prev=""
    for v in "$@"; do [[ "$prev" == "-n" || "$prev" == "-np" ]] && ranks=$v; prev=$v; done
    if [[ "$ranks" =~ ^[0-9]+$ ]] && (( ranks > 1 )) && [[ " $* " == *aim-train* && " $* " != *" --threads "* && " $* " != *" --threads="* ]]; then
        say "warning: the $ranks ranks share this machine's $(nproc --all) cores; give aim-train --threads $(( $(nproc --all) / ranks > 0 ? $(nproc --all) / ranks : 1 )) or each takes them all"
    fi
    local ns1=${NS_PREFIX}1 i n
    n=$(hosts_up)
    if [[ "${AIM_CLUSTER_DRY_RUN:-0}" != 1 ]]; then
        # An unreachable host would leave mpirun waiting for its daemon forever (Open MPI 4.1's
        # orte_startup_timeout does not cover a daemon that never calls back): refuse up front.
        for ((i = 2; i <= n; i++)); do
            retry 10 reachable 1 "$i" || die "host $i ($NET.$i) is unreachable from host 1 (link down? '$0 link $i up')"
        done
    fi
    if [[ "${AIM_CLUSTER_DRY_RUN:-0}" == 1 ]]; then
        printf '%q ' ip netns exec "$ns1" env TMPDIR="$STATE/$ns1/tmp" mpirun "${args[@]}" "$@"; echo
        return 0
    fi
    exec ip netns exec "$ns1" env TMPDIR="$STATE/$ns1/tmp" AIM_CLUSTER_HOST="$ns1" mpirun "${args[@]}" "$@"
}

cmd_exec() {
    preflight
    local ns; ns=$(ns_of "${1:-}"); shift
    [[ "${1:-}" == "--" ]] && shift
    [[ $# -gt 0 ]] || die "exec I -- CMD: no command given"
    exec ip netns exec "$ns" env TMPDIR="$STATE/$ns/tmp" AIM_CLUSTER_HOST="$ns" "$@"
}

cmd_link() {
    preflight
    local ns; ns=$(ns_of "${1:-}")
    local i=${ns#"$NS_PREFIX"} state=${2:-}
    [[ "$state" == up || "$state" == down ]] || die "link I down|up, got '${state}'"
    # The bridge end of the host's cable: the host's eth0 loses its carrier, as with a pulled cable.
    ip link set "$VETH_PREFIX$i" "$state"
    say "host $i ($ns, $NET.$i): link $state"
}

cmd_pids() {
    preflight
    local ns pid exe; ns=$(ns_of "${1:-}")
    # The executable's file name, not /proc/PID/comm (cut at 15 characters, and set by whatever
    # path a program was exec'd through).
    for pid in $(ip netns pids "$ns"); do
        exe=$(readlink "/proc/$pid/exe" 2>/dev/null) && echo "$pid ${exe##*/}"
    done
    return 0
}

cmd_status() {
    [[ -r "$STATE/hosts" ]] || { echo "no local cluster is up"; return 0; }
    local addr ns i
    while read -r addr ns; do
        i=${ns#"$NS_PREFIX"}
        printf '%s %s eth0 %s, cable %s, %d process(es)\n' "$ns" "$addr" \
            "$(ip -n "$ns" -br link show eth0 2>/dev/null | awk '{print $2}')" \
            "$(ip -br link show "$VETH_PREFIX$i" 2>/dev/null | awk '{print $2}')" \
            "$(ip netns pids "$ns" 2>/dev/null | wc -l)"
    done <"$STATE/hosts"
    echo "hostfile: $STATE/hostfile"
}

case "${1:-}" in
    up) shift; cmd_up "$@" ;;
    down) shift; cmd_down ;;
    run) shift; cmd_run "$@" ;;
    exec) shift; cmd_exec "$@" ;;
    link) shift; cmd_link "$@" ;;
    pids) shift; cmd_pids "$@" ;;
    status) cmd_status ;;
    -h|--help|help|"") usage ;;
    *) die "unknown command '$1' (up N | down | run -- ARGS | exec I -- CMD | link I down|up | pids I | status)" ;;
esac
