#!/usr/bin/env bash
# exec with an accelerated connection open, under `shunt run` on both ends.
#
# exec_handoff (exec_handoff.cpp) keeps 3 MiB in flight each way while its server execs: the
# bytes the old image had not read and those the client had not read yet must all arrive once,
# in order. The connection then goes on over TCP, and `shunt stat` lists the client's side as
# TCP with reason HANDOFF. A forked helper that execs /bin/true while the connection is
# FD_CLOEXEC must leave it accelerated. A server that execs after its client wrote and closed
# still reads every byte the client sent, then EOF. Then socat's EXEC:cat,nofork, which hands the accepted
# socket itself to cat, echoes 8 MiB whose sha256 must match.
. "$(dirname "$0")/lib.sh"
prog=$(readlink -f "${3:?usage: $0 SHUNT [--plain|-] EXEC_HANDOFF}")
require socat sha256sum ss

run_case() {
  local how=$1 io=$2 port
  port=$(free_port)
  spawn "server-$how-$io" 1 "$prog" server "$port" "$how"
  local spid=$last
  wait_listen "$port"
  LINGER_MS=2000 spawn "client-$how-$io" 1 "$prog" client "$port" "$io"
  local cpid=$last
  wait_for_line "$tmp/client-$how-$io.out" verified 30
  if [ "$how" = closed ]; then
    :  # the client is gone; the server checks every byte and the EOF
  elif [ "$how" = keep ]; then
    expect_modes "$port" SMCD 0 1 "exec of a helper ($io), the server done"
  else
    expect_modes "$port" TCP 0 1 "exec ($how, client waits by $io)"
    [ "$plain" = 1 ] || expect_in "$tmp/reasons" client:HANDOFF
  fi
  wait_gone "$cpid" 30 || fail "client ($how/$io) did not finish"
  wait "$cpid" || fail "client ($how/$io) failed"
  wait_gone "$spid" 30 || fail "server ($how/$io) did not finish"
  wait "$spid" || fail "server ($how/$io) failed"
  if [ "$how" = closed ]; then
    pass "exec_handoff: server execs after the client closed: all 400 KiB read, then EOF"
  else
    pass "exec_handoff $how, client $io: 3 MiB each way verified"
  fi
}

run_case exec block
run_case exec poll
run_case exec epoll
run_case fork epoll
run_case exec epoll-now
run_case spawn block
run_case keep poll
run_case closed close

port=$(free_port)
head -c $((8 << 20)) /dev/urandom > "$tmp/data"
want=$(sha256sum < "$tmp/data" | cut -d' ' -f1)
spawn socat-server 1 socat "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr" EXEC:cat,nofork
wait_listen "$port"
run_bounded 60 1 socat -b 65536 -t 5 - "TCP:127.0.0.1:$port" < "$tmp/data" > "$tmp/echoed" || fail "socat client failed"
got=$(sha256sum < "$tmp/echoed" | cut -d' ' -f1)
[ "$got" = "$want" ] || fail "socat EXEC:cat,nofork echoed $(stat -c %s "$tmp/echoed") bytes, sha256 differs"
pass "socat EXEC:cat,nofork: 8 MiB echoed by the exec'd cat"

# Python's subprocess: the child closes every descriptor but the ones it passes (close_range)
# before it execs cat on the connection; the connection's own descriptors must survive that
# for the hand-off to reach the client.
cat > "$tmp/spawn_cat.py" <<'PY'
import socket, subprocess, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1)
c, _ = s.accept()
subprocess.run(["cat"], stdin=c, stdout=c, check=True)
PY
cat > "$tmp/echo_check.py" <<'PY'
import os, socket, sys, threading
data = os.urandom(6 << 20)
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
def send():
    c.sendall(data); c.shutdown(socket.SHUT_WR)
t = threading.Thread(target=send); t.start()
got = bytearray()
while b := c.recv(1 << 16): got += b
t.join()
sys.exit(0 if bytes(got) == data else f"echoed {len(got)} bytes, not the {len(data)} sent")
PY
port=$(free_port)
spawn py-server 1 "$py" "$tmp/spawn_cat.py" "$port"
wait_listen "$port"
run_bounded 60 1 "$py" "$tmp/echo_check.py" "$port" || fail "python subprocess cat: echo failed"
pass "python subprocess.run(cat) on the connection: 6 MiB echoed"
