#!/usr/bin/env bash
# socat as an inetd-style server under `shunt run`: `TCP-LISTEN:…,fork EXEC:cat` accepts, forks a
# child per connection (the parent closes its copy at once) and the child forks again to exec
# cat. Each connection echoes 8 MiB whose sha256 must match, while `shunt stat` lists both ends
# as SMCD. Before the parent listed its child as a holder inside fork(), the parent's close could
# win the race against the child's own atfork handler and close the connection under the child
# (the client read EOF at once).
. "$(dirname "$0")/lib.sh"
require socat sha256sum ss
port=$(free_port)
head -c $((8 << 20)) /dev/urandom > "$tmp/data"
want=$(sha256sum < "$tmp/data" | cut -d' ' -f1)

spawn server 1 socat "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork" EXEC:cat
wait_listen "$port"
for i in 1 2 3 4 5; do
  # The client keeps its stdin (and so the connection) open 2 s after the data, for the census.
  spawn client 1 bash -c "(cat '$tmp/data'; sleep 2) | socat -b 65536 - TCP:127.0.0.1:$port > '$tmp/echoed'"
  cpid=$last
  sleep 1
  expect_modes "$port" SMCD 1 1 "socat fork+exec echo, connection $i"
  wait_gone "$cpid" 30 || fail "socat client $i did not finish"
  wait "$cpid" || fail "socat client $i failed"
  got=$(sha256sum < "$tmp/echoed" | cut -d' ' -f1)
  [ "$got" = "$want" ] || fail "connection $i: echoed $(stat -c %s "$tmp/echoed") bytes, sha256 differs"
done
pass "socat fork+exec cat: 5 connections echoed 8 MiB each"
