#!/usr/bin/env bash
# Issue #6 acceptance across two hosts (network namespaces on a veth, scripts/rds-testbed.sh):
# COUNT messages (10^5 by default; sizes log-uniform 1 B..1 MiB, ~7.8 GB) from 16 sockets to 16
# sockets with 8 lanes, every byte checksummed and every pair's order checked by rds_soak check.
#   soak.sh plain     as is
#   soak.sh reset     the sender kills a random lane every 100 ms
#   soak.sh restart   the receiving process stops (gracefully) after 40% and a new one starts:
#                     the sender must be told exactly which messages failed, and delivered +
#                     failed must be every message, each once
#   soak.sh inject    malformed frames are written onto random lanes every 100 ms: each hit lane
#                     must be closed with a logged error, and all traffic still arrive intact
# SHUNT_RDS_SOAK_COUNT overrides COUNT (the sanitizer builds use half, see CMakeLists.txt).
# Exit 77 only if network namespaces cannot be created here.
set -euo pipefail
mode=${1:?plain, reset, restart or inject}
bin=${2:?directory of rds_soak}
count=${SHUNT_RDS_SOAK_COUNT:-100000}
root="$(cd "$(dirname "$0")/../.." && pwd)"
tb="$root/scripts/rds-testbed.sh"
export SHUNT_TESTBED=rdsh-soak-$mode-$$
export SHUNT_RUNDIR=$(mktemp -d /tmp/rdsh-soak-XXXXXX)
work=$SHUNT_RUNDIR
cleanup() { bash "$tb" down; rm -rf "$work"; }
trap cleanup EXIT
if ! bash "$tb" up > /dev/null 2>&1; then
  bash "$tb" down; echo "SKIP: cannot create network namespaces here"; exit 77
fi
a=$(bash "$tb" addr a); b=$(bash "$tb" addr b)
soak="$bin/rds_soak"
recv() {  # LOG [extra options]
  local log=$1; shift
  bash "$tb" exec b "$soak" recv --ip "$b" --log "$log" "$@" 2>> "$work/recv.err" > "$work/recv.out" &
}
stop_receivers() {
  for p in $(ip netns pids "$SHUNT_TESTBED-b"); do kill -TERM "$p" 2>/dev/null || true; done
  for _ in $(seq 100); do [ -z "$(ip netns pids "$SHUNT_TESTBED-b")" ] && return; sleep 0.1; done
  echo "FAIL: receiver did not stop"; exit 1
}
send_opts=(--ip "$a" --to "$b" --count "$count" --log "$work/sent.log")
logs=("$work/recv1.log")
case "$mode" in
  plain|reset|inject)
    recv "$work/recv1.log"; sleep 0.3
    extra=()
    [ "$mode" = reset ] && extra=(--reset 100)
    [ "$mode" = inject ] && extra=(--inject 100)
    bash "$tb" exec a "$soak" send "${send_opts[@]}" "${extra[@]}" > "$work/send.json" 2> "$work/send.err" \
      || { cat "$work/send.json" "$work/send.err"; echo "FAIL: sender"; exit 1; }
    stop_receivers
    ;;
  restart)
    recv "$work/recv1.log" --stop-after $((count * 2 / 5)); first=$!
    sleep 0.3
    bash "$tb" exec a "$soak" send "${send_opts[@]}" > "$work/send.json" 2> "$work/send.err" &
    sender=$!
    wait "$first"
    recv "$work/recv2.log"
    logs+=("$work/recv2.log")
    wait "$sender" || { cat "$work/send.json" "$work/send.err"; echo "FAIL: sender"; exit 1; }
    stop_receivers
    ;;
  *) echo "unknown mode $mode"; exit 2 ;;
esac
cat "$work/send.json"
"$soak" check --sent "$work/sent.log" --recv "${logs[@]}"
field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$work/send.json" "$1"; }
case "$mode" in
  reset)
    [ "$(field resets)" -ge 5 ] || { echo "FAIL: only $(field resets) lane resets happened"; exit 1; }
    [ "$(field retransmits)" -ge 1 ] || { echo "FAIL: the resets caused no retransmission"; exit 1; } ;;
  restart)
    [ "$(field restarts)" = 1 ] || { echo "FAIL: the sender saw $(field restarts) peer restarts, not 1"; exit 1; }
    [ "$(field failed)" -ge 1 ] || { echo "FAIL: the restart failed no message (nothing was in flight?)"; exit 1; } ;;
  inject)
    n=$(field injected)
    [ "$n" -ge 1 ] || { echo "FAIL: no malformed frame was injected"; exit 1; }
    logged=$(grep -c "error: lane .* closed: malformed frame: unknown extension header" "$work/recv.err" || true)
    [ "$logged" -ge 1 ] || { cat "$work/recv.err"; echo "FAIL: no lane closed with a logged error"; exit 1; }
    echo "malformed frames injected: $n; lanes closed with a logged error: $logged" ;;
esac
echo "ok   rds soak $mode: $count messages"
