#!/usr/bin/env bash
# An asyncio echo server and client (unmodified Python) under `shunt run`, over 127.0.0.1,
# another loopback address (127.0.0.2), this host's first global address if it has one,
# `localhost` and ::1: the echoed bytes match and, while the connection is open, `shunt stat`
# lists both ends as SMCD.
. "$(dirname "$0")/lib.sh"
require python3 ss
echo_py="$(dirname "$0")/echo.py"
hosts=(127.0.0.1 127.0.0.2 localhost ::1)
global=$(ip -o -4 addr show scope global 2>/dev/null | awk '{split($4, a, "/"); print a[1]; exit}')
[ -n "$global" ] && hosts+=("$global")

for host in "${hosts[@]}"; do
  port=$(free_port)
  spawn server 1 "$py" "$echo_py" server "$host" "$port"; spid=$last
  wait_for_line "$tmp/server.out" listening 10
  spawn client 1 "$py" "$echo_py" client "$host" "$port" $((32 << 20)) --hold 2; cpid=$last
  wait_for_line "$tmp/client.out" "echoed" 30
  expect_in "$tmp/client.out" "echoed $((32 << 20)) bytes ok"
  expect_modes "$port" SMCD 1 1 "echo via $host"
  wait_gone "$cpid" 10 || fail "echo client via $host did not finish"
  wait "$cpid" || fail "echo client via $host failed"
  expect_in "$tmp/client.out" closed
  kill -9 -- "-$spid"; wait "$spid" 2>/dev/null || true
  pass "asyncio echo of 32 MiB via $host ($(grep -o 'connected.*' "$tmp/client.out"))"
done
