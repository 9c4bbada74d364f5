#!/usr/bin/env bash
# shunt rds stress / ping / info across the two-namespace testbed: a 3 s rds-stress run with a
# lane killed every 200 ms prints per-second lines and a summary with nothing failed and the
# in-order checks passed; while a node runs, `shunt rds info` shows its peer and lanes, and
# `shunt rds ping` gets answers. Exit 77 only if namespaces cannot be created here.
set -euo pipefail
shunt=${1:?path to the shunt binary}
root="$(cd "$(dirname "$0")/../.." && pwd)"
tb="$root/scripts/rds-testbed.sh"
export SHUNT_TESTBED=rdsh-tools-$$
export SHUNT_RUNDIR=$(mktemp -d /tmp/rdsh-tools-XXXXXX)
work=$SHUNT_RUNDIR
cleanup() { bash "$tb" down; rm -rf "$work"; }
trap cleanup EXIT
if ! bash "$tb" up > /dev/null 2>&1; then
  bash "$tb" down; echo "SKIP: cannot create network namespaces here"; exit 77
fi
a=$(bash "$tb" addr a); b=$(bash "$tb" addr b)
bash "$tb" exec b "$shunt" rds stress -r "$b" > "$work/passive.out" 2>&1 &
passive=$!
sleep 0.3
bash "$tb" exec a "$shunt" rds stress -r "$a" -s "$b" -t 4 -d 2 -q 8K -a 256 -T 3 --lanes 5 --reset 200 --peer-queues 5 \
  > "$work/active.out" 2> "$work/active.err" &
active=$!
sleep 1.5
bash "$tb" exec a "$shunt" rds info > "$work/info.out"
bash "$tb" exec a "$shunt" rds info --json > "$work/info.json"
wait "$active" || { cat "$work/active.out" "$work/active.err"; echo "FAIL: stress"; exit 1; }
wait "$passive" || { cat "$work/passive.out"; echo "FAIL: passive stress"; exit 1; }
cat "$work/active.out" "$work/info.out"
lines=$(grep -cE '^ +4 +[0-9]+ +[0-9]+ ' "$work/active.out" || true)
[ "$lines" -ge 2 ] || { echo "FAIL: $lines per-second lines"; exit 1; }
grep -qE "summary: [0-9]+ tx/s, [0-9]+ rx/s, .* MB/s, rtt .* us .*cpu .*resets [1-9][0-9]*, .*failed 0" "$work/active.out" \
  || { echo "FAIL: summary"; exit 1; }
python3 - "$work/info.json" "$b" <<'PY'
import json, sys
nodes = json.load(open(sys.argv[1]))
assert len(nodes) == 1, nodes
peer = nodes[0]["peers"][0]
assert peer["ip"] == sys.argv[2] and peer["lanes"] == 5, peer
assert len(peer["lane"]) == 5, peer
assert sum(l["tx_frames"] for l in peer["lane"]) > 0
# --peer-queues 5: the lanes opened here put their forward traffic on peer queue = lane index.
mine = [l for l in peer["lane"] if l["state"] == "up" and l["opened_here"]]
assert mine and all(l["peer_rx_queue"] == l["index"] for l in mine), peer["lane"]
PY
# ping needs a node that is up on b: a soak receiver is one.
bash "$tb" exec b "$(dirname "$shunt")/../tests/rds/rds_soak" recv --ip "$b" --log "$work/r.log" > /dev/null 2>&1 &
sleep 0.3
bash "$tb" exec a "$shunt" rds ping "$b" -I "$a" -c 3 -i 0.1 | tee "$work/ping.out"
[ "$(grep -c usec "$work/ping.out")" = 3 ] || { echo "FAIL: ping"; exit 1; }
echo "ok   rds tools: stress with lane resets, info, ping"
