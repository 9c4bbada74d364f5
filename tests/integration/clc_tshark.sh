#!/usr/bin/env bash
# Captures `shunt clc demo` on lo with tshark and checks, from tshark's own dissector, that the
# Proposal, Accept, Confirm and Decline carry the GID, CHID 0xFFFF, DMB tokens, EID and diagnosis
# code the demo reports, and that nothing is flagged malformed.
# Exit 77 (ctest SKIP) only where capturing is impossible here; a missing tshark is a failure.
set -euo pipefail
shunt=${1:?usage: clc_tshark.sh PATH_TO_SHUNT}
here=$(cd "$(dirname "$0")" && pwd)

command -v tshark >/dev/null || { echo "FAIL: tshark is not installed (scripts/install-deps.sh installs it)"; exit 1; }

tmp=$(mktemp -d)
tshark_pid=
cleanup() {
  [ -n "$tshark_pid" ] && kill -INT "$tshark_pid" 2>/dev/null && wait "$tshark_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# dumpcap reports "Capturing on" a moment before packets flow; warm up longer on each retry.
for warmup in 0.5 1.5 3; do
  port=$(free_port)
  rm -f "$tmp/cap.pcapng" "$tmp/tshark.err"
  tshark -i lo -f "tcp port $port" -w "$tmp/cap.pcapng" -q 2>"$tmp/tshark.err" &
  tshark_pid=$!
  for _ in $(seq 100); do
    grep -q "Capturing on" "$tmp/tshark.err" && break
    if ! kill -0 "$tshark_pid" 2>/dev/null; then
      echo "SKIP: tshark cannot capture on lo here:"; cat "$tmp/tshark.err"; tshark_pid=; exit 77
    fi
    sleep 0.1
  done
  grep -q "Capturing on" "$tmp/tshark.err" || { echo "SKIP: tshark did not start capturing on lo"; exit 77; }
  sleep "$warmup"
  "$shunt" clc demo --port "$port" --decline NOSMCD2DEV --json > "$tmp/demo.json"
  sleep 1
  kill -INT "$tshark_pid"; wait "$tshark_pid" || true; tshark_pid=
  n=$(tshark -r "$tmp/cap.pcapng" -Y smc 2>/dev/null | wc -l)
  [ "$n" -ge 5 ] && break
  echo "capture saw $n CLC messages of 5; retrying with a longer warm-up"
done

python3 "$here/check_clc_capture.py" "$tmp/cap.pcapng" "$tmp/demo.json"
