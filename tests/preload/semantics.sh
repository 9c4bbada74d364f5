#!/usr/bin/env bash
# Kernel socket semantics under `shunt run` (semantics.py): EINTR during a blocking sendall(),
# a failed dup2 onto the connection, SO_RCVTIMEO, a forked child that writes or reads and exits
# before its parent goes on, urgent data, and connecting to one's own listener.
. "$(dirname "$0")/lib.sh"
require python3 ss
prog="$(dirname "$0")/semantics.py"
meet=$tmp/meet; mkdir -p "$meet"

port=$(free_port)
spawn server 1 "$py" "$prog" server "$port" "$meet"; spid=$last
wait_for_line "$tmp/server.out" listening 10
spawn client 1 "$py" "$prog" client "$port" "$meet"; cpid=$last
wait_for_line "$tmp/server.out" hold 30
expect_modes "$port" SMCD 1 1 "semantics pair"
touch "$meet/checked"
wait_gone "$cpid" 30 || fail "client did not finish"
wait "$cpid" || fail "client failed"
wait_gone "$spid" 10 || fail "server did not finish"
wait "$spid" || fail "server failed"
expect_in "$tmp/server.out" "the handler ran while it blocked"
expect_in "$tmp/server.out" "SO_RCVTIMEO: EAGAIN"
expect_in "$tmp/server.out" "fork: child and parent took turns"
expect_in "$tmp/server.out" "MSG_OOB: stream abcdef"
pass "signal during sendall, SO_RCVTIMEO, MSG_OOB ($(grep -o 'EAGAIN after [0-9.]* s' "$tmp/server.out"))"

run_bounded 20 1 "$py" "$prog" selfconnect > "$tmp/self.out" 2>&1 || fail "selfconnect failed"
expect_in "$tmp/self.out" "selfconnect ok"
pass "$(cat "$tmp/self.out")"
