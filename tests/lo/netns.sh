#!/usr/bin/env bash
# Two network namespaces joined by a veth pair, as two containers on one host would be.
# Sharing the rundir, their connections are accelerated; with separate rundirs they fall back to
# TCP. A loopback address in one namespace never reaches a listener registered by the other.
# Exit 77 only if namespaces cannot be created here.
set -euo pipefail
shunt=${1:?shunt}
. "$(dirname "$0")/lib.sh"

suffix=$$
nsa=shunt-lo-a-$suffix; nsb=shunt-lo-b-$suffix
net=10.$((200 + RANDOM % 50)).$((RANDOM % 250)).0
addr_a=${net%.0}.1; addr_b=${net%.0}.2
if ! ip netns add "$nsa" 2>/dev/null; then echo "SKIP: cannot create network namespaces (need root)"; exit 77; fi
ip netns add "$nsb"
netns_cleanup() {
  for ns in "$nsa" "$nsb"; do
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
  cleanup
}
trap netns_cleanup EXIT
ip -n "$nsa" link add va type veth peer name vb netns "$nsb"
ip -n "$nsa" addr add "$addr_a/24" dev va; ip -n "$nsa" link set va up; ip -n "$nsa" link set lo up
ip -n "$nsb" addr add "$addr_b/24" dev vb; ip -n "$nsb" link set vb up; ip -n "$nsb" link set lo up

# pair RUNDIR_B RUNDIR_A: a shunt cat server in B, a client in A; each sends a line.
pair() {
  local port=$((40000 + RANDOM % 20000))
  (echo "from B" | ip netns exec "$nsb" env SHUNT_RUNDIR="$1" "$shunt" cat -v -l 0.0.0.0 "$port" \
      > "$tmp/b.data" 2> "$tmp/b.out") &
  pids+=("$!")
  for _ in $(seq 100); do grep -qs listening "$tmp/b.out" && break; sleep 0.05; done
  echo "from A" | ip netns exec "$nsa" env SHUNT_RUNDIR="$2" "$shunt" cat -v "$addr_b" "$port" \
      > "$tmp/a.data" 2> "$tmp/a.out" || fail "client in A"
  wait "${pids[-1]}" || fail "server in B"
  [ "$(cat "$tmp/a.data")" = "from B" ] || fail "A got '$(cat "$tmp/a.data")'"
  [ "$(cat "$tmp/b.data")" = "from A" ] || fail "B got '$(cat "$tmp/b.data")'"
}

pair "$tmp/shared" "$tmp/shared"
expect_in "$tmp/a.out" "connected (SMCD)"
expect_in "$tmp/b.out" "connected (SMCD)"
pass "namespaces sharing a rundir: accelerated over the veth, bytes intact"

pair "$tmp/rb" "$tmp/ra"
expect_in "$tmp/a.out" "TCP, fallback 0x03010000 PEERNOSMC"
expect_in "$tmp/b.out" "TCP, fallback 0x03010000 PEERNOSMC"
pass "namespaces with separate rundirs: plain TCP, bytes intact"

# A listener registered from B on port P must not make A's own loopback service on P look
# like a shunt endpoint: A's plain server must see no CLC byte.
port=$((40000 + RANDOM % 20000))
(sleep 5 | ip netns exec "$nsb" env SHUNT_RUNDIR="$tmp/shared" "$shunt" cat -l 0.0.0.0 "$port" > /dev/null 2>&1) &
pids+=("$!")
ip netns exec "$nsa" python3 "$(dirname "$0")/plain_server.py" 127.0.0.1 "$port" "$tmp/plain.bin" &
pids+=("$!")
for ns in "$nsa" "$nsb"; do
  for _ in $(seq 200); do [ -n "$(ip netns exec "$ns" ss -Hltn "sport = :$port")" ] && break; sleep 0.05; done
done
echo -n "loopback in A" | ip netns exec "$nsa" env SHUNT_RUNDIR="$tmp/shared" "$shunt" cat -v 127.0.0.1 "$port" \
    > /dev/null 2> "$tmp/lo.out" || fail "client to A's loopback"
for _ in $(seq 100); do [ -s "$tmp/plain.bin" ] && break; sleep 0.05; done
[ "$(cat "$tmp/plain.bin")" = "loopback in A" ] || fail "A's plain server got '$(cat "$tmp/plain.bin")'"
expect_in "$tmp/lo.out" "PEERNOSMC"
pass "loopback in one namespace never reaches the other's listener"
echo "netns tests passed"
