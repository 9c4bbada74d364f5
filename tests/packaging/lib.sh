# Shared helpers for the packaging tests: a scratch directory removed at exit, fail/pass.
set -euo pipefail
tmp=$(mktemp -d /tmp/shunt-packaging-test.XXXXXX)
chmod 755 "$tmp"
pids=()
cleanup_hooks=()
cleanup() {
  local h p
  for h in "${cleanup_hooks[@]}"; do eval "$h" || true; done
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
fail() {
  echo "FAIL: $*"
  local f
  for f in "$tmp"/*.out; do [ -f "$f" ] && { echo "--- $f"; tail -30 "$f"; }; done
  exit 1
}
t0=$(date +%s%3N)
# pass MESSAGE: a check passed; with the seconds since the previous one.
pass() { local t; t=$(date +%s%3N); printf "ok   %s (%d.%01d s)\n" "$*" $(((t - t0) / 1000)) $(((t - t0) % 1000 / 100)); t0=$t; }
require() { local p; for p in "$@"; do command -v "$p" >/dev/null || fail "$p is not installed (scripts/install-deps.sh)"; done; }
# wait_for SECONDS CMD...: until CMD succeeds; 1 once SECONDS have passed (wall clock, however
# long CMD itself takes).
wait_for() {
  local deadline=$(($(date +%s%3N) + $1 * 1000)); shift
  while :; do
    "$@" && return 0
    [ "$(date +%s%3N)" -lt "$deadline" ] || return 1
    sleep 0.05
  done
}
