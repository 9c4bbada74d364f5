#!/usr/bin/env bash
# The rds testbed: two namespaces joined by a veth carry TCP, and with --cap each flow on the
# capped ports is limited on its own: one iperf3 flow stays near the cap, and two flows on two
# capped ports together carry about twice as much (so the cap is per flow, not per link).
# Exit 77 only if namespaces cannot be created here.
set -euo pipefail
tb="$(cd "$(dirname "$0")/../.." && pwd)/scripts/rds-testbed.sh"
export SHUNT_TESTBED=rdsh-tbt-$$
cleanup() { bash "$tb" down; }
trap cleanup EXIT
if ! bash "$tb" up --cap 100mbit --ports 5201-5203 > /dev/null 2>&1; then
  bash "$tb" down; echo "SKIP: cannot create network namespaces here"; exit 77
fi
command -v iperf3 > /dev/null || { echo "FAIL: iperf3 missing (scripts/install-deps.sh installs it)"; exit 1; }
b=$(bash "$tb" addr b)
bash "$tb" exec b iperf3 -s -p 5201 -D -1 > /dev/null
bash "$tb" exec b iperf3 -s -p 5202 -D -1 > /dev/null
bash "$tb" exec b iperf3 -s -p 9000 -D -1 > /dev/null
sleep 0.5
mbps() { python3 -c 'import json,sys; print(int(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e6))'; }
one=$(bash "$tb" exec a iperf3 -c "$b" -p 5201 -t 2 -J | mbps)
uncapped=$(bash "$tb" exec a iperf3 -c "$b" -p 9000 -t 2 -J | mbps)
echo "capped flow: ${one} Mbit/s; uncapped port: ${uncapped} Mbit/s"
[ "$one" -ge 70 ] && [ "$one" -le 115 ] || { echo "FAIL: a 100mbit-capped flow ran at ${one} Mbit/s"; exit 1; }
[ "$uncapped" -ge 400 ] || { echo "FAIL: an uncapped flow ran at only ${uncapped} Mbit/s"; exit 1; }
bash "$tb" exec b iperf3 -s -p 5201 -D -1 > /dev/null
sleep 0.3
bash "$tb" exec a iperf3 -c "$b" -p 5201 -t 2 -J > /tmp/$SHUNT_TESTBED-1.json &
p1=$!
bash "$tb" exec a iperf3 -c "$b" -p 5202 -t 2 -J > /tmp/$SHUNT_TESTBED-2.json
wait "$p1"
two=$(( $(mbps < /tmp/$SHUNT_TESTBED-1.json) + $(mbps < /tmp/$SHUNT_TESTBED-2.json) ))
rm -f /tmp/$SHUNT_TESTBED-*.json
echo "two capped flows together: ${two} Mbit/s"
[ "$two" -ge 150 ] && [ "$two" -le 230 ] || { echo "FAIL: two capped flows carried ${two} Mbit/s"; exit 1; }
echo "ok   testbed: per-flow cap holds (${one} Mbit/s for one, ${two} for two), uncapped ${uncapped} Mbit/s"
