#!/usr/bin/env bash
# The issue #6 benchmark table, in one run, on the two-namespace testbed (scripts/rds-testbed.sh).
#   1. rds-stress workload (8 KiB requests, 256 B acks, 16 tasks, both directions) with every TCP
#      flow capped at 200 Mbit/s (HTB + u32 per port): 8 lanes vs 1 lane     target >= 7x
#   2. the same without a cap: the ratio (two shared cores bound it)
#   3. p99 round trip of 256 B ping-pong on one socket while another socket streams 1 MiB
#      messages, capped as in 1: 8 lanes vs 1 lane                           target <= 0.2x
#      (also measured uncapped, reported)
#   4. completed requests/s, one-way rds-stress workload, uncapped: shunt rds 8 lanes vs libzmq
#      DEALER/ROUTER over TCP, same request/ack sizes, tasks and requests in flight  target >= 1x
# Each figure is the median of RUNS runs (default 3) of SECS seconds (default 5).
# Usage: bench/rds/run.sh [BUILD_DIR]   (root; default build/release)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build=${1:-$root/build/release}
shunt="$build/bin/shunt"
zmq="$build/bench/rds/rds_zmq_stress"
tb="$root/scripts/rds-testbed.sh"
runs=${RUNS:-3}
secs=${SECS:-5}
depth=${DEPTH:-2}
export SHUNT_TESTBED=rdsh-bench-$$
export SHUNT_RUNDIR=$(mktemp -d /tmp/rdsh-bench-XXXXXX)
work=$SHUNT_RUNDIR
cleanup() { bash "$tb" down; rm -rf "$work"; }
trap cleanup EXIT
# Capped ports: the lane source ports of host a (9100-9131) and of host b (9132-9163), one HTB
# class each; the lane listener (16385) and the control port (4000) are outside the range, so
# each lane is classified by its own source port, on both sides of the veth.
bash "$tb" up --cap 200mbit --ports 9100-9163 > /dev/null
a=$(bash "$tb" addr a); b=$(bash "$tb" addr b)

stress() {  # CAPPED(0/1) LANES [stress options...] -> JSON summary of the active side
  local capped=$1 lanes=$2; shift 2
  local pa pb
  if [ "$capped" = 1 ]; then pa=9100-9131; pb=9132-9163; else pa=20000-20999; pb=21000-21999; fi
  bash "$tb" exec b "$shunt" rds stress -r "$b" --lane-ports "$pb" --json > "$work/passive.json" 2> "$work/passive.err" &
  local p=$!
  sleep 0.3
  bash "$tb" exec a "$shunt" rds stress -r "$a" -s "$b" --lanes "$lanes" --lane-ports "$pa" -T "$secs" --json "$@" \
    2> "$work/active.err" | tail -1
  wait "$p" || true
}
zmq_run() {  # -> JSON
  bash "$tb" exec b "$zmq" --server "tcp://$b:5555" -a 256 &
  local p=$!
  sleep 0.3
  bash "$tb" exec a "$zmq" "tcp://$b:5555" -t 16 -d $((16 * depth)) -q 8192 -a 256 -T "$secs" | tail -1
  kill "$p" 2>/dev/null || true
  for q in $(ip netns pids "$SHUNT_TESTBED-b"); do kill "$q" 2>/dev/null || true; done
  wait "$p" 2>/dev/null || true
}
get() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
median() { python3 -c "import statistics,sys; print(round(statistics.median(float(x) for x in sys.argv[1:]), 1))" "$@"; }
ratio() { python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print(f'{a/b:.2f}' if b else 'inf')" "$1" "$2"; }

measure() {  # NAME FIELD CAPPED LANES [options] : median of FIELD over runs, all values logged
  local name=$1 field=$2; shift 2
  local vals=()
  for _ in $(seq "$runs"); do
    local j
    j=$(stress "$@")
    echo "$name: $j" >> "$work/raw.txt"
    if [ -z "$j" ] || [ "$(python3 -c "import json,sys; print('error' in json.loads(sys.argv[1]))" "$j")" = True ]; then
      echo "run failed: $name: $j $(cat "$work/active.err")" >&2; exit 1
    fi
    vals+=("$(get "$j" "$field")")
  done
  echo "$name: ${vals[*]}" >&2
  median "${vals[@]}"
}

rr=(-t 16 -d "$depth" -q 8K -a 256)
cap8=$(measure "capped 8 lanes MB/s" mb_per_s 1 8 "${rr[@]}")
cap1=$(measure "capped 1 lane MB/s" mb_per_s 1 1 "${rr[@]}")
unc8=$(measure "uncapped 8 lanes MB/s" mb_per_s 0 8 "${rr[@]}")
unc1=$(measure "uncapped 1 lane MB/s" mb_per_s 0 1 "${rr[@]}")
pp=(-t 1 -d 1 -q 256 -a 256 -o --stream 1M)
lat8=$(measure "capped ping-pong p99 us, 8 lanes" rtt_p99_us 1 8 "${pp[@]}")
lat1=$(measure "capped ping-pong p99 us, 1 lane" rtt_p99_us 1 1 "${pp[@]}")
ulat8=$(measure "uncapped ping-pong p99 us, 8 lanes" rtt_p99_us 0 8 "${pp[@]}")
ulat1=$(measure "uncapped ping-pong p99 us, 1 lane" rtt_p99_us 0 1 "${pp[@]}")
ow=(-t 16 -d "$depth" -q 8K -a 256 -o)
rds_mps=$(measure "one-way 8 lanes requests/s" completed_per_s 0 8 "${ow[@]}")
zvals=()
for _ in $(seq "$runs"); do
  j=$(zmq_run)
  echo "zmq: $j" >> "$work/raw.txt"
  zvals+=("$(get "$j" completed_per_s)")
done
echo "zmq requests/s: ${zvals[*]}" >&2
zmq_mps=$(median "${zvals[@]}")

echo
echo "shunt rds on the testbed (veth between two namespaces, 2 shared cores); medians of $runs runs of ${secs} s"
echo
echo "| benchmark | 8 lanes | 1 lane / other | ratio | target |"
echo "|---|---:|---:|---:|---|"
echo "| rds-stress -t 16 -d $depth -q 8K -a 256, 200 Mbit/s per flow (MB/s) | $cap8 | $cap1 | $(ratio "$cap8" "$cap1")x | >= 7x |"
echo "| same, no cap (MB/s) | $unc8 | $unc1 | $(ratio "$unc8" "$unc1")x | report |"
echo "| p99 rtt 256 B ping-pong beside a 1 MiB stream, 200 Mbit/s per flow (us) | $lat8 | $lat1 | $(ratio "$lat8" "$lat1")x | <= 0.2x |"
echo "| same, no cap (us) | $ulat8 | $ulat1 | $(ratio "$ulat8" "$ulat1")x | report |"
echo "| requests/s, -o -t 16 -d $depth -q 8K -a 256: shunt rds 8 lanes vs libzmq DEALER/ROUTER | $rds_mps | $zmq_mps | $(ratio "$rds_mps" "$zmq_mps")x | >= 1.0x |"
echo
echo "raw runs:"
cat "$work/raw.txt"
