# Shared helpers for the lo integration scripts.
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; for f in "$tmp"/*.out; do [ -f "$f" ] && { echo "--- $f"; cat "$f"; }; done; exit 1; }
pass() { echo "ok   $*"; }
wait_for_file() { for _ in $(seq 200); do [ -s "$1" ] && return 0; sleep 0.05; done; fail "timeout waiting for $1"; }
expect_in() { grep -q -- "$2" "$1" || fail "$1 lacks '$2'"; }
rundir_files() { find "$1" -type f ! -name gid 2>/dev/null | wc -l; }
now_ms() { date +%s%3N; }
# wait_listen PORT: until something listens on TCP PORT (10 s at most).
wait_listen() { for _ in $(seq 200); do [ -n "$(ss -Hltn "sport = :$1")" ] && return 0; sleep 0.05; done; fail "nothing listens on port $1"; }
