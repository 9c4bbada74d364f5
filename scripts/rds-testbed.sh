#!/usr/bin/env bash
# Two hosts on this machine for shunt rds: network namespaces joined by a veth pair, with an
# optional rate cap per TCP flow (HTB, one class per port, u32 filters; netem is not in this
# kernel). Addresses are private to the namespaces this script creates; nothing else is touched.
#
#   scripts/rds-testbed.sh up [--cap RATE --ports LO-HI]   create hosts "a" and "b"
#   scripts/rds-testbed.sh exec a|b COMMAND...              run a command on a host
#   scripts/rds-testbed.sh addr a|b                         print a host's address
#   scripts/rds-testbed.sh down                             remove everything
#
# With --cap, every TCP flow whose source or destination port is in LO-HI gets its own class
# capped at RATE (e.g. 200mbit) on both sides of the link, so each lane of an rds connection is
# limited on its own, as one flow of a real network path would be.
# SHUNT_TESTBED names the pair (default "shunt-tb"), so tests can run several at once.
set -euo pipefail
name=${SHUNT_TESTBED:-shunt-tb}
ns_a=$name-a; ns_b=$name-b
addr_a=10.77.0.1; addr_b=10.77.0.2

die() { echo "rds-testbed: $*" >&2; exit 1; }

cap_flows() {  # NS DEV RATE LO HI
  local ns=$1 dev=$2 rate=$3 lo=$4 hi=$5 class=10
  ip netns exec "$ns" tc qdisc add dev "$dev" root handle 1: htb default 1
  ip netns exec "$ns" tc class add dev "$dev" parent 1: classid 1:1 htb rate 100gbit
  for port in $(seq "$lo" "$hi"); do
    ip netns exec "$ns" tc class add dev "$dev" parent 1: classid 1:$class htb rate "$rate" ceil "$rate"
    # Match either end of the flow: IPv4 TCP source port (offset 20) or destination port (22).
    ip netns exec "$ns" tc filter add dev "$dev" parent 1: protocol ip prio 1 u32 \
      match ip protocol 6 0xff match ip sport "$port" 0xffff flowid 1:$class
    ip netns exec "$ns" tc filter add dev "$dev" parent 1: protocol ip prio 1 u32 \
      match ip protocol 6 0xff match ip dport "$port" 0xffff flowid 1:$class
    class=$((class + 1))
  done
}

cmd=${1:-}; shift || true
case "$cmd" in
  up)
    cap=""; ports=""
    while [ $# -gt 0 ]; do
      case "$1" in
        --cap) cap=$2; shift 2 ;;
        --ports) ports=$2; shift 2 ;;
        *) die "unknown option $1" ;;
      esac
    done
    ip netns add "$ns_a" || die "cannot create network namespaces (root needed)"
    ip netns add "$ns_b"
    ip -n "$ns_a" link add veth-a type veth peer name veth-b netns "$ns_b"
    ip -n "$ns_a" addr add "$addr_a/24" dev veth-a
    ip -n "$ns_b" addr add "$addr_b/24" dev veth-b
    for ns in "$ns_a" "$ns_b"; do ip -n "$ns" link set lo up; done
    ip -n "$ns_a" link set veth-a up; ip -n "$ns_b" link set veth-b up
    if [ -n "$cap" ]; then
      [ -n "$ports" ] || die "--cap needs --ports LO-HI"
      lo=${ports%-*}; hi=${ports#*-}
      [ $((hi - lo)) -lt 256 ] || die "at most 256 capped ports"
      cap_flows "$ns_a" veth-a "$cap" "$lo" "$hi"
      cap_flows "$ns_b" veth-b "$cap" "$lo" "$hi"
    fi
    echo "hosts up: a=$addr_a ($ns_a) b=$addr_b ($ns_b)${cap:+, $cap per flow on ports $ports}"
    ;;
  exec)
    host=${1:?a or b}; shift
    [ "$host" = a ] && ns=$ns_a || ns=$ns_b
    exec ip netns exec "$ns" "$@"
    ;;
  addr)
    [ "${1:?a or b}" = a ] && echo "$addr_a" || echo "$addr_b"
    ;;
  down)
    for ns in "$ns_a" "$ns_b"; do
      for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
      ip netns del "$ns" 2>/dev/null || true
    done
    ;;
  *)
    sed -n '2,15p' "$0"; exit 2 ;;
esac
