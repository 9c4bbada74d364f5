#!/usr/bin/env bash
# End-to-end check of the RSS port allocator with real TCP connections.
#
# Two network namespaces created here (and only here) are joined by a veth pair that is created
# inside the client namespace, so no interface or address of the calling namespace is touched.
# A python3 server in the server namespace accepts and holds connections. From the client
# namespace we connect:
#   - with `shunt rss connect` (allocator + connect_aligned), IPv4 with IP_LOCAL_PORT_RANGE and
#     IPv6 with SO_REUSEADDR+bind, 8 connections for each of 4 queues;
#   - with socat binding ports printed by `shunt rss ports` (no allocator in the loop).
# Then the 4-tuples are read back with `ss -tn` in *both* namespaces, and for every established
# connection the reply tuple (server -> client, as the client's NIC would hash it) is hashed by
# `shunt rss hash` (the bit-serial reference) and must map to the queue that was asked for.
# veth has no RSS of its own; the model is the default one (Microsoft key, RETA 128, i % 4).
#
# Usage: netns_e2e.sh path/to/shunt.  Exit 0 = pass, 1 = fail, 77 = cannot create namespaces.
set -uo pipefail

SHUNT=${1:?usage: netns_e2e.sh path/to/shunt}
QUEUES=4
PER_QUEUE=8
SRV_PORT=8080
TAG="shrss$$"
NS_C="${TAG}-cli"
NS_S="${TAG}-srv"
VETH_C="${TAG}c"  # <= 15 characters
VETH_S="${TAG}s"
C4=10.201.0.1 S4=10.201.0.2 C6=fd00:201::1 S6=fd00:201::2
WORK=$(mktemp -d)
PIDS=()

log() { echo "netns_e2e: $*"; }
die() {
    echo "netns_e2e: FAIL: $*" >&2
    exit 1
}

cleanup() {
    # Everything started in our namespaces (server, clients, socat and its sleep), by pid.
    local p
    for ns in "$NS_C" "$NS_S"; do
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill "$p" 2>/dev/null; done
    done
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    ip netns del "$NS_C" 2>/dev/null
    ip netns del "$NS_S" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

[[ -x $SHUNT ]] || die "no shunt binary at $SHUNT"
for tool in ip ss python3 socat; do
    command -v "$tool" >/dev/null || die "$tool is required"
done

if ! ip netns add "$NS_C" 2>"$WORK/err"; then
    echo "netns_e2e: SKIP: cannot create network namespaces (need root/CAP_SYS_ADMIN): $(cat "$WORK/err")"
    exit 77
fi
ip netns add "$NS_S" || die "second namespace"

C() { ip netns exec "$NS_C" "$@"; }
S() { ip netns exec "$NS_S" "$@"; }

# The veth pair is born in the client namespace; its peer moves straight to the server namespace.
ip -n "$NS_C" link add "$VETH_C" type veth peer name "$VETH_S" netns "$NS_S" || die "veth"
ip -n "$NS_C" addr add "$C4/24" dev "$VETH_C"
ip -n "$NS_S" addr add "$S4/24" dev "$VETH_S"
ip -n "$NS_C" addr add "$C6/64" dev "$VETH_C" nodad
ip -n "$NS_S" addr add "$S6/64" dev "$VETH_S" nodad
for ns in "$NS_C" "$NS_S"; do ip -n "$ns" link set lo up; done
ip -n "$NS_C" link set "$VETH_C" up
ip -n "$NS_S" link set "$VETH_S" up

# What the client NIC would report: veth has no RSS key/RETA.
C "$SHUNT" rss nic "$VETH_C" --queues "$QUEUES" >"$WORK/nic" 2>&1 || die "rss nic: $(cat "$WORK/nic")"
grep -q "exposes no RSS key/RETA" "$WORK/nic" || die "rss nic did not say veth has no RSS: $(cat "$WORK/nic")"
log "$(grep 'exposes no' "$WORK/nic")"

# Server: accept on both families and hold every connection until killed.
S python3 -u - "$S4" "$S6" "$SRV_PORT" >"$WORK/server.log" 2>&1 <<'EOF' &
import selectors, socket, sys
sel = selectors.DefaultSelector()
for host, fam in ((sys.argv[1], socket.AF_INET), (sys.argv[2], socket.AF_INET6)):
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, int(sys.argv[3])))
    s.listen(256)
    sel.register(s, selectors.EVENT_READ)
print("listening", flush=True)
held = []
while True:
    for key, _ in sel.select():
        c, _ = key.fileobj.accept()
        held.append(c)
EOF
PIDS+=($!)
for _ in $(seq 50); do grep -q listening "$WORK/server.log" 2>/dev/null && break; sleep 0.1; done
grep -q listening "$WORK/server.log" || die "server did not start: $(cat "$WORK/server.log")"

# Clients through the allocator: one process per (family, queue), holding its connections.
expected=0
for q in $(seq 0 $((QUEUES - 1))); do
    C "$SHUNT" rss connect --local "$C4" --remote "$S4" --remote-port "$SRV_PORT" --queue "$q" \
        --queues "$QUEUES" --count "$PER_QUEUE" --hold 30 --exclude-in-use \
        >"$WORK/v4.$q" 2>"$WORK/v4.$q.err" &
    PIDS+=($!)
    C "$SHUNT" rss connect --local "$C6" --remote "$S6" --remote-port "$SRV_PORT" --queue "$q" \
        --queues "$QUEUES" --count "$PER_QUEUE" --hold 30 --no-port-range \
        >"$WORK/v6.$q" 2>"$WORK/v6.$q.err" &
    PIDS+=($!)
    expected=$((expected + 2 * PER_QUEUE))
done

# Clients without the allocator: socat binds ports that `shunt rss ports` printed for queue 2.
SOCAT_Q=2
C "$SHUNT" rss ports --local "$C4" --remote "$S4" --remote-port "$SRV_PORT" --queue "$SOCAT_Q" \
    --queues "$QUEUES" --range 20000-29999 --count 3 --exclude-in-use >"$WORK/socat.ports" ||
    die "rss ports"
[[ $(wc -l <"$WORK/socat.ports") -eq 3 ]] || die "rss ports printed $(wc -l <"$WORK/socat.ports") ports"
while read -r p; do
    C socat -u SYSTEM:"sleep 30" "TCP:$S4:$SRV_PORT,bind=$C4:$p" 2>"$WORK/socat.$p.err" &
    PIDS+=($!)
    expected=$((expected + 1))
done <"$WORK/socat.ports"

# Wait for every connection to be established (both ends visible).
count_est() { "$@" ss -tnH state established "( sport = :$SRV_PORT or dport = :$SRV_PORT )" | wc -l; }
for _ in $(seq 100); do
    [[ $(count_est C) -ge $expected && $(count_est S) -ge $expected ]] && break
    sleep 0.1
done
for f in "$WORK"/v*.err; do
    [[ -s $f ]] && die "client error ($(basename "$f")): $(cat "$f")"
done

# Which queue did each local port ask for? From the clients' own output and the socat list.
declare -A want
for q in $(seq 0 $((QUEUES - 1))); do
    [[ $(wc -l <"$WORK/v4.$q") -eq $PER_QUEUE ]] || die "v4 queue $q: $(wc -l <"$WORK/v4.$q") connections"
    [[ $(wc -l <"$WORK/v6.$q") -eq $PER_QUEUE ]] || die "v6 queue $q: $(wc -l <"$WORK/v6.$q") connections"
    while read -r lip lport _; do want["$lip|$lport"]=$q; done <"$WORK/v4.$q"
    while read -r lip lport _; do want["$lip|$lport"]=$q; done <"$WORK/v6.$q"
done
while read -r p; do want["$C4|$p"]=$SOCAT_Q; done <"$WORK/socat.ports"

strip() { local a=${1%:*}; a=${a#[}; echo "${a%]}"; }

# Read back from the client namespace: Local = us, Peer = server.
C ss -tnH state established "( dport = :$SRV_PORT )" >"$WORK/ss.client"
# ... and from the server namespace: Peer = us. Both views must agree on the set of tuples.
S ss -tnH state established "( sport = :$SRV_PORT )" >"$WORK/ss.server"
awk '{print $3, $4}' "$WORK/ss.client" | sort >"$WORK/tuples.client"
awk '{print $4, $3}' "$WORK/ss.server" | sort >"$WORK/tuples.server"
cmp -s "$WORK/tuples.client" "$WORK/tuples.server" ||
    die "client and server namespaces see different 4-tuples: $(diff "$WORK/tuples.client" "$WORK/tuples.server")"

verified=0
per_queue=()
while read -r local peer; do
    lip=$(strip "$local") lport=${local##*:}
    rip=$(strip "$peer") rport=${peer##*:}
    key="$lip|$lport"
    [[ -n ${want[$key]+x} ]] || die "connection from $local was not opened by this test"
    # The reply packet as the client receives it: src = server, dst = us.
    got=$("$SHUNT" rss hash --src "$rip" --dst "$lip" --sport "$rport" --dport "$lport" \
        --queues "$QUEUES" | awk '/^queue/ {print $2}')
    [[ $got == "${want[$key]}" ]] ||
        die "reply $rip:$rport -> $lip:$lport hashes to queue $got, asked for ${want[$key]}"
    per_queue[$got]=$((${per_queue[$got]:-0} + 1))
    verified=$((verified + 1))
done <"$WORK/tuples.client"

[[ $verified -eq $expected ]] || die "verified $verified connections, expected $expected"

# The check itself can fail: a port printed for another queue must not pass for this one.
other=$("$SHUNT" rss ports --local "$C4" --remote "$S4" --remote-port "$SRV_PORT" --queue 1 \
    --queues "$QUEUES" --count 1)
q_other=$("$SHUNT" rss hash --src "$S4" --dst "$C4" --sport "$SRV_PORT" --dport "$other" \
    --queues "$QUEUES" | awk '/^queue/ {print $2}')
[[ $q_other == 1 ]] || die "self-check: port $other should map to queue 1, got $q_other"

log "methods used: $(cat "$WORK"/v4.* | awk '{print $NF}' | sort -u | tr '\n' ' ')(IPv4)," \
    "$(cat "$WORK"/v6.* | awk '{print $NF}' | sort -u | tr '\n' ' ')(IPv6)"
for q in $(seq 0 $((QUEUES - 1))); do log "queue $q: ${per_queue[$q]:-0} connections verified"; done
log "PASS: $verified real TCP connections over veth; every reply tuple maps to the queue asked for"
exit 0
