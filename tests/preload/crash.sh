#!/usr/bin/env bash
# SIGKILL of a program under `shunt run` in the middle of a transfer, with its peer also under
# `shunt run`: the survivor does not hang (bounded time), drops the shared buffers of the dead
# connection while it lives on (no memfd:shunt-dmb left open or mapped in /proc/<pid>), keeps
# serving, and nothing is left in the rundir once it has swept / exited.
. "$(dirname "$0")/lib.sh"
require python3 redis-server redis-benchmark redis-cli ss
echo_py="$(dirname "$0")/echo.py"
conn_entries() { find "$SHUNT_RUNDIR/conn" -mindepth 1 2>/dev/null | wc -l; }

# 1. The echo server dies: the streaming client sees the end within 5 s, releases its buffers
#    while it lives on, and after it exits the rundir is empty.
port=$(free_port)
spawn server 1 "$py" "$echo_py" server 127.0.0.1 "$port"; spid=$last
wait_for_line "$tmp/server.out" listening 10
spawn client 1 "$py" "$echo_py" client 127.0.0.1 "$port" 0 --stream --hold 3; cpid=$last
wait_for_line "$tmp/client.out" connected 10
sleep 0.5
expect_modes "$port" SMCD 1 1 "echo before the kill"
t0=$(now_ms); kill -9 -- "-$spid"; wait "$spid" 2>/dev/null || true
wait_for_line "$tmp/client.out" "ended:" 5
elapsed=$(($(now_ms) - t0))
settle_dmbs "$cpid" 2
wait_gone "$cpid" 10 || fail "echo client still running after its hold"
wait "$cpid" || fail "echo client failed"
[ "$(rundir_files)" -eq 0 ] || { find "$SHUNT_RUNDIR" ! -type d; fail "rundir entries left after the server died"; }
pass "SIGKILL of the echo server: client saw '$(grep -o 'ended: [A-Za-z]*' "$tmp/client.out")' after ${elapsed} ms, released its buffers, rundir empty"

# 2. The echo client dies: the server drops that connection's buffers, announcements go, and the
#    next client is served (SMCD).
port=$(free_port)
spawn server 1 "$py" "$echo_py" server 127.0.0.1 "$port"; spid=$last
wait_for_line "$tmp/server.out" listening 10
spawn client 1 "$py" "$echo_py" client 127.0.0.1 "$port" 0 --stream; cpid=$last
wait_for_line "$tmp/client.out" connected 10
sleep 0.5
expect_modes "$port" SMCD 1 1 "echo before the kill"
kill -9 -- "-$cpid"; wait "$cpid" 2>/dev/null || true
settle_dmbs "$spid" 2
[ "$(conn_entries)" -eq 0 ] || { find "$SHUNT_RUNDIR" ! -type d; fail "announcements left after the client died"; }
spawn client 1 "$py" "$echo_py" client 127.0.0.1 "$port" $((1 << 20)) --hold 1; cpid=$last
wait_for_line "$tmp/client.out" "echoed" 10
expect_modes "$port" SMCD 1 1 "echo after the kill"
wait_gone "$cpid" 10 || fail "second echo client did not finish"; wait "$cpid" || fail "second echo client failed"
kill -9 -- "-$spid"; wait "$spid" 2>/dev/null || true
pass "SIGKILL of the echo client: server released the buffers and served the next client"

# 3. redis-benchmark dies mid-run: redis-server releases all 50 connections' buffers and answers.
port=$(free_port)
spawn server 1 redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$tmp" --daemonize no; spid=$last
wait_listen "$port"
spawn bench 1 redis-benchmark -h 127.0.0.1 -p "$port" -c 50 -n 10000000 -t set --csv; bpid=$last
for _ in $(seq 40); do [ "$(ss -Htn state established "dport = :$port" | wc -l)" -ge 50 ] && break; sleep 0.05; done
expect_modes "$port" SMCD 50 50 "redis-benchmark before the kill"
kill -9 -- "-$bpid"; wait "$bpid" 2>/dev/null || true
settle_dmbs "$spid" 10
[ "$(run_bounded 10 1 redis-cli -h 127.0.0.1 -p "$port" PING </dev/null)" = PONG ] || fail "redis-server does not answer after the kill"
[ "$(conn_entries)" -eq 0 ] || { find "$SHUNT_RUNDIR" ! -type d; fail "announcements left after redis-benchmark died"; }
kill -9 -- "-$spid"; wait "$spid" 2>/dev/null || true
pass "SIGKILL of redis-benchmark (50 connections): redis-server released every buffer and answers PING"

