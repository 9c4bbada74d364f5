#!/usr/bin/env bash
# The iperf3 server loops in select() on the dead test's data socket (ready: aborted) without
# ever sleeping, so peer death on its control socket must be noticed without sleeping too: the
# poll/select emulation watches each connection's TCP socket in every kernel look.
. "$(dirname "$0")/lib.sh"
require iperf3 python3

# An iperf3 client dies mid-test: the iperf3 server gives up on that test and runs the next.
port=$(free_port)
spawn server 1 iperf3 -s -p "$port"; spid=$last
wait_listen "$port"
spawn client 1 iperf3 -c 127.0.0.1 -p "$port" -t 30; cpid=$last
sleep 1.5
expect_modes "$port" SMCD 2 2 "iperf3 before the kill"
kill -9 -- "-$cpid"; wait "$cpid" 2>/dev/null || true
settle_dmbs "$spid" 10
run_bounded 20 1 iperf3 -c 127.0.0.1 -p "$port" -t 1 -J > "$tmp/second.out" || fail "second iperf3 test failed"
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert "error" not in j, j["error"]' "$tmp/second.out" \
  || fail "second iperf3 test: $(grep error "$tmp/second.out")"
kill -9 -- "-$spid"; wait "$spid" 2>/dev/null || true
pass "SIGKILL of an iperf3 client: the server released the buffers and ran the next test"
