# Capture helpers for tests that check the wire with tshark. Source it; it needs $tmp.
# Exit 77 (ctest SKIP) only where capturing is impossible here; a missing tshark is a failure.
command -v tshark >/dev/null || { echo "FAIL: tshark is not installed (scripts/install-deps.sh installs it)"; exit 1; }
tshark_pid=

# start_capture PORT FILE WARMUP_SECONDS
start_capture() {
  rm -f "$2" "$tmp/tshark.err"
  tshark -i lo -f "tcp port $1" -w "$2" -q 2>"$tmp/tshark.err" &
  tshark_pid=$!
  for _ in $(seq 100); do
    grep -q "Capturing on" "$tmp/tshark.err" && break
    if ! kill -0 "$tshark_pid" 2>/dev/null; then
      echo "SKIP: tshark cannot capture on lo here:"; cat "$tmp/tshark.err"; tshark_pid=; exit 77
    fi
    sleep 0.1
  done
  grep -q "Capturing on" "$tmp/tshark.err" || { echo "SKIP: tshark did not start capturing on lo"; exit 77; }
  # dumpcap reports "Capturing on" a moment before packets flow.
  sleep "$3"
}

stop_capture() {
  sleep 1
  [ -n "$tshark_pid" ] && { kill -INT "$tshark_pid"; wait "$tshark_pid" || true; }
  tshark_pid=
}
