#!/usr/bin/env bash
# SIGKILL of either side in the middle of a transfer: the survivor's read or write ends with EOF
# or ECONNRESET within a second, and afterwards nothing is left in /dev/shm, in the rundir, or in
# the survivor's descriptors and mappings (lo_peer checks the last two itself).
set -euo pipefail
peer=${1:?lo_peer}
. "$(dirname "$0")/lib.sh"
export SHUNT_RUNDIR=$tmp/run
shm_before=$(ls /dev/shm | wc -l)

for victim in server client; do
  if [ "$victim" = server ]; then smode=flood; cmode=drain; else smode=drain; cmode=flood; fi
  rm -f "$tmp/port"
  "$peer" server --port-file "$tmp/port" --mode "$smode" > "$tmp/server.out" 2>&1 & spid=$!; pids+=("$spid")
  wait_for_file "$tmp/port"
  "$peer" client --port "$(cat "$tmp/port")" --mode "$cmode" > "$tmp/client.out" 2>&1 & cpid=$!; pids+=("$cpid")
  for _ in $(seq 100); do grep -qs "mode:" "$tmp/client.out" && grep -qs "mode:" "$tmp/server.out" && break; sleep 0.05; done
  expect_in "$tmp/server.out" "mode: SMCD"
  expect_in "$tmp/client.out" "mode: SMCD"
  sleep 0.3  # mid-transfer
  if [ "$victim" = server ]; then vpid=$spid; survivor=$cpid; sfile=client.out; else vpid=$cpid; survivor=$spid; sfile=server.out; fi
  t0=$(now_ms)
  kill -9 "$vpid"
  wait "$vpid" 2>/dev/null || true
  # The survivor must notice and exit by itself.
  for _ in $(seq 100); do kill -0 "$survivor" 2>/dev/null || break; sleep 0.02; done
  t1=$(now_ms)
  if kill -0 "$survivor" 2>/dev/null; then fail "survivor still running 2 s after SIGKILL of the $victim"; fi
  wait "$survivor" || fail "survivor failed its checks"
  elapsed=$((t1 - t0))
  [ "$elapsed" -lt 1000 ] || fail "survivor took ${elapsed} ms"
  grep -Eq "ended: (eof|reset|Broken pipe)" "$tmp/$sfile" || fail "survivor ended oddly: $(cat "$tmp/$sfile")"
  expect_in "$tmp/$sfile" "clean:"
  [ "$(rundir_files "$SHUNT_RUNDIR")" -eq 0 ] || { find "$SHUNT_RUNDIR" -type f; fail "rundir entries left after the $victim died"; }
  [ "$(ls /dev/shm | wc -l)" -eq "$shm_before" ] || fail "/dev/shm changed"
  pass "SIGKILL of the $victim: survivor saw '$(grep -o 'ended: .*' "$tmp/$sfile")' after ${elapsed} ms, nothing left"
done
echo "kill tests passed"
