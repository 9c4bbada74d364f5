#!/usr/bin/env bash
# tshark decodes the live handshake of a real shunt connection (two shunt cat processes):
# Proposal, Accept and Confirm as SMC-Dv2 with CHID 0xFFFF and no malformed packet, and no
# application byte travels over TCP after the handshake.
set -euo pipefail
shunt=${1:?shunt}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/../integration/capture.sh"
trap 'stop_capture; cleanup' EXIT
export SHUNT_RUNDIR=$tmp/run

for warmup in 0.5 1.5 3; do
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  start_capture "$port" "$tmp/cap.pcapng" "$warmup"
  (echo "payload from the server" | "$shunt" cat -v -l 127.0.0.1 "$port" > "$tmp/s.data" 2> "$tmp/s.out") &
  pids+=("$!")
  for _ in $(seq 100); do grep -qs listening "$tmp/s.out" && break; sleep 0.05; done
  echo "payload from the client" | "$shunt" cat -v 127.0.0.1 "$port" > "$tmp/c.data" 2> "$tmp/c.out" || fail client
  wait "${pids[-1]}" || fail server
  stop_capture
  [ "$(tshark -r "$tmp/cap.pcapng" -Y smc 2>/dev/null | wc -l)" -ge 3 ] && break
done
expect_in "$tmp/c.out" "connected (SMCD)"
[ "$(cat "$tmp/s.data")" = "payload from the client" ] || fail "server got '$(cat "$tmp/s.data")'"

msgs=$(tshark -r "$tmp/cap.pcapng" -Y smc -T fields -e smc.clc_msg 2>/dev/null | tr '\n' ' ')
[ "$msgs" = "1 2 3 " ] || fail "CLC messages on the wire: '$msgs', expected Proposal Accept Confirm"
chids=$(tshark -r "$tmp/cap.pcapng" -Y smc.clc_msg==2 -T fields -e smc.accept.smc.chid 2>/dev/null)
[ "$chids" = "0xffff" ] || fail "Accept CHID '$chids'"
malformed=$(tshark -r "$tmp/cap.pcapng" -Y "_ws.malformed or _ws.expert.severity >= error" 2>/dev/null)
[ -z "$malformed" ] || fail "malformed packets: $malformed"
# After the three CLC messages, only the close (FIN) may cross TCP: payload went through memory.
payload=$(tshark -r "$tmp/cap.pcapng" -Y "tcp.len > 0 and not smc" 2>/dev/null | wc -l)
[ "$payload" -eq 0 ] || fail "$payload TCP segments carried application data"
pass "live handshake decodes as SMC-Dv2 Proposal/Accept/Confirm, CHID 0xffff, no malformed packet, no payload on TCP"
