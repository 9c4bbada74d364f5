#!/usr/bin/env bash
# An emulated RSS NIC for `shunt proxy` on a machine without one.
#
# Three network namespaces joined by veth pairs:
#
#   client ns                proxy ns                                backend ns
#   $TB_CLI_IF 10.210.1.1 -- $TB_PRX_IF0 10.210.1.2 | $TB_PRX_IF1 10.210.2.1 -- $TB_SRV_IF 10.210.2.2
#                            (XDP)                    (XDP)                      (+ 10.210.2.3)
#
# On both proxy-side veths an XDP program computes the Toeplitz hash of every TCP/IPv4 packet
# with the model's key, looks the CPU up in the model's RETA and queue -> CPU map, and redirects
# the packet through a cpumap to that CPU: what a NIC with one RX queue per CPU and pinned queue
# interrupts does. The same key and RETA are written to $TB_DIR/model.toml for the proxy, and the
# program counts packets per flow and CPU ($TB_DIR/flows.json when the loader is told to dump).
# TX checksum offload is turned off on all veths: redirected segments would otherwise carry
# partial checksums and be dropped by TCP.
#
# Use as a library (source it, call testbed_up / testbed_down) or from the shell:
#   scripts/proxy-testbed.sh up TAG [QUEUES]   prints the variables to eval; stays up
#   scripts/proxy-testbed.sh down TAG
# Needs root, iproute2, ethtool, and build/release/bin/shunt-rss-xdp (SHUNT_RSS_XDP to override).

testbed_names() {
    local tag=$1
    TB_TAG=$tag
    TB_NS_CLI="proxy-tb-$tag-cli"
    TB_NS_PRX="proxy-tb-$tag-prx"
    TB_NS_SRV="proxy-tb-$tag-srv"
    TB_CLI_IF="proxy${tag}c"   # interface names: at most 15 characters
    TB_PRX_IF0="proxy${tag}p"
    TB_PRX_IF1="proxy${tag}q"
    TB_SRV_IF="proxy${tag}s"
    TB_CLI_IP=10.210.1.1 TB_PRX_IP0=10.210.1.2 TB_PRX_IP1=10.210.2.1 TB_SRV_IP=10.210.2.2 TB_SRV_IP2=10.210.2.3
    TB_DIR=${TB_DIR:-/tmp/proxy-testbed-$tag}
}

# testbed_up TAG SHUNT [QUEUES]: namespaces, veths, model, XDP. Returns non-zero on failure
# (77 when namespaces cannot be made).
testbed_up() {
    local tag=$1 shunt=$2 queues=${3:-$(nproc)}
    testbed_names "$tag"
    local xdp=${SHUNT_RSS_XDP:-$(dirname "$shunt")/shunt-rss-xdp}
    mkdir -p "$TB_DIR"
    ip netns add "$TB_NS_CLI" 2>/dev/null || return 77
    ip netns add "$TB_NS_PRX" && ip netns add "$TB_NS_SRV" || return 1
    ip -n "$TB_NS_CLI" link add "$TB_CLI_IF" type veth peer name "$TB_PRX_IF0" netns "$TB_NS_PRX" || return 1
    ip -n "$TB_NS_SRV" link add "$TB_SRV_IF" type veth peer name "$TB_PRX_IF1" netns "$TB_NS_PRX" || return 1
    local ns dev
    for ns in "$TB_NS_CLI" "$TB_NS_PRX" "$TB_NS_SRV"; do
        ip -n "$ns" link set lo up
        ip netns exec "$ns" sysctl -qw net.ipv4.tcp_tw_reuse=1
        ip netns exec "$ns" sysctl -qw net.ipv4.ip_local_port_range="10000 60999"
    done
    ip -n "$TB_NS_CLI" addr add "$TB_CLI_IP/24" dev "$TB_CLI_IF"
    ip -n "$TB_NS_PRX" addr add "$TB_PRX_IP0/24" dev "$TB_PRX_IF0"
    ip -n "$TB_NS_PRX" addr add "$TB_PRX_IP1/24" dev "$TB_PRX_IF1"
    ip -n "$TB_NS_SRV" addr add "$TB_SRV_IP/24" dev "$TB_SRV_IF"
    ip -n "$TB_NS_SRV" addr add "$TB_SRV_IP2/24" dev "$TB_SRV_IF"
    for pair in "$TB_NS_CLI:$TB_CLI_IF" "$TB_NS_PRX:$TB_PRX_IF0" "$TB_NS_PRX:$TB_PRX_IF1" "$TB_NS_SRV:$TB_SRV_IF"; do
        ns=${pair%%:*} dev=${pair#*:}
        ip netns exec "$ns" ethtool -K "$dev" tx off >/dev/null 2>&1 || return 1
        # GRO on the peers: veth then runs its NAPI path, which native XDP on the other end uses.
        ip netns exec "$ns" ethtool -K "$dev" gro on >/dev/null 2>&1
        ip -n "$ns" link set "$dev" up
    done
    ip -n "$TB_NS_CLI" route add 10.210.2.0/24 via "$TB_PRX_IP0"
    ip -n "$TB_NS_SRV" route add 10.210.1.0/24 via "$TB_PRX_IP1"

    "$shunt" proxy model --queues "$queues" >"$TB_DIR/model.toml" || return 1
    ip netns exec "$TB_NS_PRX" "$xdp" attach --model "$TB_DIR/model.toml" --ifname "$TB_PRX_IF0" \
        --ifname "$TB_PRX_IF1" --stats "$TB_DIR/flows.json" >"$TB_DIR/xdp.log" 2>&1 &
    TB_XDP_PID=$!
    local deadline=$((SECONDS + 10))
    until grep -q ready "$TB_DIR/xdp.log" 2>/dev/null; do
        if ! kill -0 "$TB_XDP_PID" 2>/dev/null || ((SECONDS > deadline)); then
            cat "$TB_DIR/xdp.log" >&2
            return 1
        fi
        sleep 0.05
    done
}

# Asks the loader to write the flow counts now; waits for the file to change.
testbed_flows() {
    local before
    before=$(stat -c %Y.%s "$TB_DIR/flows.json" 2>/dev/null)
    rm -f "$TB_DIR/flows.json"
    kill -USR1 "$TB_XDP_PID"
    local deadline=$((SECONDS + 5))
    until [[ -s $TB_DIR/flows.json ]] || ((SECONDS > deadline)); do sleep 0.05; done
    cat "$TB_DIR/flows.json"
}

testbed_down() {
    local tag=$1 ns p
    testbed_names "$tag"
    [[ -n ${TB_XDP_PID:-} ]] && kill "$TB_XDP_PID" 2>/dev/null && wait "$TB_XDP_PID" 2>/dev/null
    for ns in "$TB_NS_CLI" "$TB_NS_PRX" "$TB_NS_SRV"; do
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill "$p" 2>/dev/null; done
    done
    sleep 0.2
    for ns in "$TB_NS_CLI" "$TB_NS_PRX" "$TB_NS_SRV"; do
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
        ip netns del "$ns" 2>/dev/null
    done
    return 0
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    set -uo pipefail
    cmd=${1:-} tag=${2:-}
    [[ -n $cmd && -n $tag ]] || { echo "usage: $0 up|down TAG [QUEUES]" >&2; exit 2; }
    case $cmd in
    up)
        root=$(cd "$(dirname "$0")/.." && pwd)
        testbed_up "$tag" "${SHUNT:-$root/build/release/bin/shunt}" "${3:-$(nproc)}" || { rc=$?; testbed_down "$tag"; exit $rc; }
        declare -p TB_NS_CLI TB_NS_PRX TB_NS_SRV TB_CLI_IP TB_PRX_IP0 TB_PRX_IP1 TB_SRV_IP TB_SRV_IP2 TB_DIR TB_XDP_PID
        disown -a  # the loader stays up; `down` stops it with the namespaces
        ;;
    down) testbed_down "$tag" ;;
    *) echo "usage: $0 up|down TAG [QUEUES]" >&2; exit 2 ;;
    esac
fi
