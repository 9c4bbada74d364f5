#!/usr/bin/env bash
# The rds benchmark table, in one run, on the two-namespace testbed (scripts/rds-testbed.sh).
#   1. rds-stress workload (8 KiB requests, 256 B acks, 16 tasks, both directions) with every TCP
#      flow capped at 200 Mbit/s (HTB + u32 per port): 8 lanes vs 1 lane     target >= 7.5x
#   2. the same without a cap: the ratio (two shared cores bound it)
#   3. p99 round trip of 256 B ping-pong on one socket while another socket streams 1 MiB
#      messages, capped as in 1: 8 lanes vs 1 lane                           target <= 0.2x
#      (also measured uncapped, reported)
#   4. completed requests/s, one-way rds-stress workload, uncapped: shunt rds 8 lanes vs libzmq
#      DEALER/ROUTER over TCP, same request/ack sizes, tasks and requests in flight  target >= 2x
# Each figure is the median of RUNS runs (default 3) of SECS seconds (default 5). Beside every
# figure: CPU microseconds (user + system) per completed request, active / passive side; for
# the libzmq run, client / server (the server's from /proc, over the client's run).
# SHUNT=path runs another shunt binary (e.g. an older build, for a side-by-side comparison).
# Usage: bench/rds/run.sh [BUILD_DIR]   (root; default build/release)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build=${1:-$root/build/release}
shunt=${SHUNT:-$build/bin/shunt}
zmq=${ZMQ:-$build/bench/rds/rds_zmq_stress}
tb="$root/scripts/rds-testbed.sh"
runs=${RUNS:-3}
secs=${SECS:-5}
depth=${DEPTH:-2}
export SHUNT_TESTBED=${SHUNT_TESTBED:-rdsh-bench-$$}
export SHUNT_RUNDIR=$(mktemp -d /tmp/rdsh-bench-XXXXXX)
work=$SHUNT_RUNDIR
cleanup() { bash "$tb" down; rm -rf "$work"; }
trap cleanup EXIT
# Capped ports: the lane source ports of host a (9100-9131) and of host b (9132-9163), one HTB
# class each; the lane listener (16385) and the control port (4000) are outside the range, so
# each lane is classified by its own source port, on both sides of the veth.
bash "$tb" up --cap 200mbit --ports 9100-9163 > /dev/null 2>&1
a=$(bash "$tb" addr a); b=$(bash "$tb" addr b)

stress() {  # CAPPED(0/1) LANES [stress options...] -> JSON summary of the active side
  local capped=$1 lanes=$2; shift 2
  local pa pb
  if [ "$capped" = 1 ]; then pa=9100-9131; pb=9132-9163; else pa=20000-20999; pb=21000-21999; fi
  bash "$tb" exec b "$shunt" rds stress -r "$b" --lane-ports "$pb" --json > "$work/passive.json" 2> "$work/passive.err" &
  local p=$!
  listening b 4000 || true
  bash "$tb" exec a "$shunt" rds stress -r "$a" -s "$b" --lanes "$lanes" --lane-ports "$pa" -T "$secs" --json "$@" \
    2> "$work/active.err" | tail -1
  wait "$p" || true
}
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
zmq_run() {  # -> JSON, with the server's CPU per completed request added
  bash "$tb" exec b "$zmq" --server "tcp://$b:5555" -a 256 &
  local p=$!
  listening b 5555 || true
  local t0 j t1
  t0=$(ticks "$p")
  j=$(bash "$tb" exec a "$zmq" "tcp://$b:5555" -t 16 -d $((16 * depth)) -q 8192 -a 256 -T "$secs" | tail -1)
  t1=$(ticks "$p")
  python3 -c "
import json, os, sys
j = json.loads(sys.argv[1]); hz = os.sysconf('SC_CLK_TCK')
n = j['completed_per_s'] * j['seconds']
j['peer_cpu_us_per_req'] = (int(sys.argv[3]) - int(sys.argv[2])) / hz * 1e6 / n if n else 0
print(json.dumps(j))" "$j" "$t0" "$t1"
  kill "$p" 2>/dev/null || true
  for q in $(ip netns pids "$SHUNT_TESTBED-b"); do kill "$q" 2>/dev/null || true; done
  wait "$p" 2>/dev/null || true
}
listening() {  # HOST PORT: wait (up to 10 s) until something listens there; a loaded machine
  local i                  # can take longer than any fixed pause to start the passive side
  for i in $(seq 200); do
    bash "$tb" exec "$1" ss -ltnH "sport = :$2" | grep -q . && return 0
    sleep 0.05
  done
  return 1
}
ratio() { python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print(f'{a/b:.2f}' if b else 'inf')" "$1" "$2"; }

measure() {  # KEY CAPPED LANES [options]: RUNS runs, JSON summaries kept in $work/KEY.jsonl
  local key=$1; shift
  for _ in $(seq "$runs"); do
    local j
    j=$(stress "$@")
    echo "$key: $j" >> "$work/raw.txt"
    if [ -z "$j" ] || [ "$(python3 -c "import json,sys; print('error' in json.loads(sys.argv[1]))" "$j")" = True ]; then
      echo "run failed: $key: $j $(cat "$work/active.err")" >&2; exit 1
    fi
    echo "$j" >> "$work/$key.jsonl"
  done
}
med() {  # KEY FIELD: median over the runs
  python3 -c "
import json, statistics, sys
vals = [json.loads(l)[sys.argv[2]] for l in open(sys.argv[1]) if l.strip()]
print(round(statistics.median(vals), 1))" "$work/$1.jsonl" "$2"
}

rr=(-t 16 -d "$depth" -q 8K -a 256)
measure cap8 1 8 "${rr[@]}"
measure cap1 1 1 "${rr[@]}"
measure unc8 0 8 "${rr[@]}"
measure unc1 0 1 "${rr[@]}"
pp=(-t 1 -d 1 -q 256 -a 256 -o --stream 1M)
measure lat8 1 8 "${pp[@]}"
measure lat1 1 1 "${pp[@]}"
measure ulat8 0 8 "${pp[@]}"
measure ulat1 0 1 "${pp[@]}"
ow=(-t 16 -d "$depth" -q 8K -a 256 -o)
measure ow8 0 8 "${ow[@]}"
for _ in $(seq "$runs"); do
  j=$(zmq_run)
  echo "zmq: $j" >> "$work/raw.txt"
  echo "$j" >> "$work/zmq.jsonl"
done
cap8=$(med cap8 mb_per_s); cap1=$(med cap1 mb_per_s); unc8=$(med unc8 mb_per_s); unc1=$(med unc1 mb_per_s)
lat8=$(med lat8 rtt_p99_us); lat1=$(med lat1 rtt_p99_us); ulat8=$(med ulat8 rtt_p99_us); ulat1=$(med ulat1 rtt_p99_us)
p50_8=$(med lat8 rtt_p50_us); p50_1=$(med lat1 rtt_p50_us); up50_8=$(med ulat8 rtt_p50_us); up50_1=$(med ulat1 rtt_p50_us)
rds_mps=$(med ow8 completed_per_s); zmq_mps=$(med zmq completed_per_s)
echo
echo "shunt rds on the testbed (veth between two namespaces, 2 shared cores); medians of $runs runs of ${secs} s"
echo
cpu() {  # KEY: "active / passive" CPU us per completed request, and CPU %
  echo "$(med "$1" cpu_us_per_req) / $(med "$1" peer_cpu_us_per_req) us/req ($(med "$1" cpu_pct) / $(med "$1" peer_cpu_pct) %)"
}
echo "| benchmark | 8 lanes | CPU, 8 lanes | 1 lane / other | CPU, 1 lane / other | ratio | target |"
echo "|---|---:|---|---:|---|---:|---|"
echo "| rds-stress -t 16 -d $depth -q 8K -a 256, 200 Mbit/s per flow (MB/s) | $cap8 | $(cpu cap8) | $cap1 | $(cpu cap1) | $(ratio "$cap8" "$cap1")x | >= 7.5x |"
echo "| same, no cap (MB/s) | $unc8 | $(cpu unc8) | $unc1 | $(cpu unc1) | $(ratio "$unc8" "$unc1")x | report |"
echo "| same, no cap: completed requests/s (both sides) | $(med unc8 completed_total_per_s) | $(cpu unc8) | $(med unc1 completed_total_per_s) | $(cpu unc1) | | report |"
echo "| p99 rtt 256 B ping-pong beside a 1 MiB stream, 200 Mbit/s per flow (us) | $lat8 | $(cpu lat8) | $lat1 | $(cpu lat1) | $(ratio "$lat8" "$lat1")x | <= 0.2x |"
echo "| same, no cap (us) | $ulat8 | $(cpu ulat8) | $ulat1 | $(cpu ulat1) | $(ratio "$ulat8" "$ulat1")x | report |"
echo "| p50 rtt of the same ping-pong, 200 Mbit/s per flow / no cap (us) | $p50_8 / $up50_8 | | $p50_1 / $up50_1 | | $(ratio "$p50_8" "$p50_1")x / $(ratio "$up50_8" "$up50_1")x | report |"
echo "| requests/s, -o -t 16 -d $depth -q 8K -a 256: shunt rds 8 lanes vs libzmq DEALER/ROUTER | $rds_mps | $(cpu ow8) | $zmq_mps | $(med zmq cpu_us_per_req) / $(med zmq peer_cpu_us_per_req) us/req | $(ratio "$rds_mps" "$zmq_mps")x | >= 2x |"
echo
echo "raw runs:"
cat "$work/raw.txt"
