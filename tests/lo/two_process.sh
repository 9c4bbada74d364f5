#!/usr/bin/env bash
# Two real processes over shunt lo: 1 GiB each way at once with every byte checked (each side
# half-closes and reads to EOF), 256 connections open at once with nothing leaked, an abort, and the fallbacks (separate rundirs, plain TCP
# peers on either side) carrying exactly the application's bytes.
set -euo pipefail
peer=${1:?lo_peer}; shunt=${2:?shunt}
. "$(dirname "$0")/lib.sh"
ulimit -n 8192
export SHUNT_RUNDIR=$tmp/run

# run_pair MODE [lo_peer options...]: server and client, both must succeed.
run_pair() {
  local mode=$1; shift
  rm -f "$tmp/port"
  "$peer" server --port-file "$tmp/port" --mode "$mode" "$@" > "$tmp/server.out" 2>&1 & local spid=$!
  pids+=("$spid")
  wait_for_file "$tmp/port"
  "$peer" client --port "$(cat "$tmp/port")" --mode "$mode" "$@" > "$tmp/client.out" 2>&1 || fail "client ($mode)"
  wait "$spid" || fail "server ($mode)"
}

run_pair duplex --bytes $((1 << 30))
for side in server client; do
  expect_in "$tmp/$side.out" "mode: SMCD"
  expect_in "$tmp/$side.out" "received 1073741824 bytes, all match"
  expect_in "$tmp/$side.out" "clean:"
done
pass "1 GiB each way at once over SMC-D, every byte checked"

run_pair many --conns 256
for side in server client; do
  expect_in "$tmp/$side.out" "mode: SMCD"
  expect_in "$tmp/$side.out" "256 connections exchanged"
  expect_in "$tmp/$side.out" "clean:"
done
[ "$(rundir_files "$SHUNT_RUNDIR")" -eq 0 ] || { find "$SHUNT_RUNDIR"; fail "rundir entries left"; }
pass "256 connections at once: no descriptor, mapping, buffer or rundir entry left"

run_pair abort
expect_in "$tmp/client.out" "closed with unread data"
expect_in "$tmp/server.out" "ended: reset"
pass "close with unread data is an abort: the peer's read fails with ECONNRESET"

# Separate rundirs: different hosts as far as shunt knows, so plain TCP, same bytes.
rm -f "$tmp/port"
SHUNT_RUNDIR=$tmp/a "$peer" server --port-file "$tmp/port" --mode duplex --bytes $((16 << 20)) > "$tmp/server.out" 2>&1 &
spid=$!; pids+=("$spid")
wait_for_file "$tmp/port"
SHUNT_RUNDIR=$tmp/b "$peer" client --port "$(cat "$tmp/port")" --mode duplex --bytes $((16 << 20)) > "$tmp/client.out" 2>&1 || fail client
wait "$spid" || fail server
expect_in "$tmp/server.out" "mode: TCP PEERNOSMC"
expect_in "$tmp/client.out" "mode: TCP PEERNOSMC"
expect_in "$tmp/client.out" "all match"
pass "separate rundirs fall back to TCP (PEERNOSMC) and carry every byte"

# A plain TCP server (python3) sees exactly what the shunt client sent, no CLC byte.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 "$(dirname "$0")/plain_server.py" 127.0.0.1 "$port" "$tmp/plain_server.bin" "plain reply" &
pids+=("$!")
wait_listen "$port"
printf 'hello plain server' | "$shunt" cat -v 127.0.0.1 "$port" > "$tmp/reply.out" 2> "$tmp/cat.out" || fail "shunt cat to python"
[ "$(cat "$tmp/plain_server.bin")" = "hello plain server" ] || fail "python server got '$(cat "$tmp/plain_server.bin")'"
[ "$(cat "$tmp/reply.out")" = "plain reply" ] || fail "reply was '$(cat "$tmp/reply.out")'"
expect_in "$tmp/cat.out" "TCP, fallback 0x03010000 PEERNOSMC"
pass "shunt client to a python3 TCP server: exactly the application's bytes"

# A plain TCP client (python3) talking to a shunt server.
rm -f "$tmp/port"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'shunt says hi' | "$shunt" cat -v -l 127.0.0.1 "$port" > "$tmp/srv_got.out" 2> "$tmp/srv.out" &
pids+=("$!"); spid=$!
wait_listen "$port"
got=$(python3 - "$port" <<'PY'
import socket, sys
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
c.sendall(b"python says hi"); c.shutdown(socket.SHUT_WR)
data = b""
while True:
    b = c.recv(65536)
    if not b: break
    data += b
print(data.decode())
PY
)
wait "$spid" || fail "shunt cat -l"
[ "$got" = "shunt says hi" ] || fail "python client got '$got'"
[ "$(cat "$tmp/srv_got.out")" = "python says hi" ] || fail "shunt server got '$(cat "$tmp/srv_got.out")'"
expect_in "$tmp/srv.out" "TCP, fallback 0x03010000 PEERNOSMC"
pass "python3 TCP client to a shunt server: exactly the application's bytes"
echo "two-process tests passed"
