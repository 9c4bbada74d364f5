#!/usr/bin/env bash
# iperf3 server and client under `shunt run`: one stream, reverse (-R) and four streams (-P 4).
# While each test runs, `shunt stat` lists the control and every data connection as SMCD on
# both sides; the JSON report has no error, the expected streams and bytes received.
. "$(dirname "$0")/lib.sh"
require iperf3 ss python3
for variant in "" "-R" "-P 4"; do
  streams=1; [ "$variant" = "-P 4" ] && streams=4
  port=$(free_port)
  spawn server 1 iperf3 -s -p "$port"; spid=$last
  wait_listen "$port"
  # shellcheck disable=SC2086
  spawn client 1 iperf3 -c 127.0.0.1 -p "$port" -t 3 -J $variant; cpid=$last
  sleep 1.5
  expect_modes "$port" SMCD $((streams + 1)) $((streams + 1)) "iperf3 $variant"
  wait_gone "$cpid" 20 || fail "iperf3 $variant client still running 20 s into a 3 s test"
  wait "$cpid" || fail "iperf3 $variant client failed"
  python3 - "$tmp/client.out" "$streams" "${variant:-}" <<'PY' || fail "iperf3 $variant report"
import json, sys
j = json.load(open(sys.argv[1])); streams = int(sys.argv[2]); reverse = sys.argv[3] == "-R"
assert "error" not in j, j.get("error")
ts = j["start"]["test_start"]
assert ts["num_streams"] == streams and bool(ts["reverse"]) == reverse, ts
r = j["end"]["sum_received"]
assert r["bytes"] > 100 << 20, r
print(f"iperf3 {sys.argv[3] or 'one stream'}: {r['bits_per_second'] / 1e9:.2f} Gbit/s, {r['bytes'] >> 20} MiB received")
PY
  kill -9 -- "-$spid"; wait "$spid" 2>/dev/null || true
  pass "iperf3 ${variant:-one stream}"
done
