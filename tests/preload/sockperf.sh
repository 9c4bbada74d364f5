#!/usr/bin/env bash
# sockperf server and client under `shunt run`: ping-pong 14 B and throughput 64000 B. While
# each runs, both ends of its connection are SMCD in `shunt stat`; sockperf reports figures
# and no error (it exits 0 even when it cannot connect, so its output is checked).
. "$(dirname "$0")/lib.sh"
require sockperf ss python3
# --mps: sockperf sizes its sequence table for ~1M messages/s and fails beyond it
# ("_seqN > m_maxSequenceNo"), a rate shunt reaches.
for test in "pp -m 14 --mps 500000" "tp -m 64000"; do
  port=$(free_port)
  spawn server 1 sockperf sr --tcp -i 127.0.0.1 -p "$port"; spid=$last
  wait_listen "$port"
  # shellcheck disable=SC2086
  spawn client 1 sockperf $test --tcp -i 127.0.0.1 -p "$port" -t 3; cpid=$last
  sleep 1.5
  expect_modes "$port" SMCD 1 1 "sockperf $test"
  wait_gone "$cpid" 20 || fail "sockperf $test still running 20 s into a 3 s test"
  wait "$cpid" || fail "sockperf $test exited with an error"
  if grep -q "ERROR" "$tmp/client.out"; then fail "sockperf $test: $(grep ERROR "$tmp/client.out")"; fi
  if [ "${test%% *}" = pp ]; then
    line=$(grep -o 'Summary: Latency is [0-9.]* usec' "$tmp/client.out") || fail "no latency"
    grep -Eq 'ReceivedMessages=[1-9]' "$tmp/client.out" || fail "no messages came back"
  else
    line=$(grep -o 'BandWidth is [0-9.]* MBps' "$tmp/client.out") || fail "no bandwidth"
    python3 -c "import sys; assert float(sys.argv[1]) > 0" "$(echo "$line" | awk '{print $3}')" || fail "zero bandwidth"
  fi
  kill -9 -- "-$spid"; wait "$spid" 2>/dev/null || true
  pass "sockperf $test: $line"
done
