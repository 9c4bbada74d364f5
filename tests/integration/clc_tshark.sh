#!/usr/bin/env bash
# Captures `shunt clc demo` on lo with tshark and checks, from tshark's own dissector, that the
# Proposal, Accept, Confirm and Decline carry the GID, CHID 0xFFFF, DMB tokens, EID and diagnosis
# code the demo reports, and that nothing is flagged malformed.
# Exit 77 (ctest SKIP) only where capturing is impossible here; a missing tshark is a failure.
set -euo pipefail
shunt=${1:?usage: clc_tshark.sh PATH_TO_SHUNT}
here=$(cd "$(dirname "$0")" && pwd)

tmp=$(mktemp -d)
trap 'stop_capture; rm -rf "$tmp"' EXIT
. "$here/capture.sh"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Warm up longer on each retry if the capture started late.
for warmup in 0.5 1.5 3; do
  port=$(free_port)
  start_capture "$port" "$tmp/cap.pcapng" "$warmup"
  "$shunt" clc demo --port "$port" --decline NOSMCD2DEV --json > "$tmp/demo.json"
  stop_capture
  n=$(tshark -r "$tmp/cap.pcapng" -Y smc 2>/dev/null | wc -l)
  [ "$n" -ge 5 ] && break
  echo "capture saw $n CLC messages of 5; retrying with a longer warm-up"
done

python3 "$here/check_clc_capture.py" "$tmp/cap.pcapng" "$tmp/demo.json"
