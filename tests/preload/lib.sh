# Shared helpers for the tests of `shunt run` with real, unmodified programs.
# Usage in a test:  . "$(dirname "$0")/lib.sh"   with $1 = the shunt binary, optional $2 = --plain.
# --plain (or SHUNT_TEST_NO_PRELOAD=1) runs every program without `shunt run`, to validate the
# scripts themselves: the SMCD expectations then become "shunt sees no connection at all".
set -euo pipefail
shunt=$(readlink -f "${1:?usage: $0 SHUNT [--plain]}")
plain=${SHUNT_TEST_NO_PRELOAD:-0}
[ "${2:-}" = --plain ] && plain=1
tmp=$(mktemp -d /tmp/shunt-preload-test.XXXXXX)
chmod 755 "$tmp"                 # nginx workers and other users' processes read under it
export SHUNT_RUNDIR=$tmp/run     # private: other tests on this host use their own
pids=()                          # process groups to kill at exit
# The system Python (a python3 on PATH may be a shell shim, e.g. pyenv's, that is not the
# program under test).
py=$(command -v /usr/bin/python3 || command -v python3)
mode_word() { [ "$plain" = 1 ] && echo plain || echo "shunt run"; }

cleanup() {
  local p
  for p in "${pids[@]}"; do kill -9 -- "-$p" 2>/dev/null || kill -9 "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
  echo "FAIL: $*"
  local f
  for f in "$tmp"/*.out; do [ -f "$f" ] && { echo "--- $f"; tail -20 "$f"; }; done
  exit 1
}
pass() { echo "ok   $* ($(mode_word))"; }
expect_in() { grep -q -- "$2" "$1" || fail "$1 lacks '$2'"; }
now_ms() { date +%s%3N; }

# A missing program is an error, never a skip.
require() { local p; for p in "$@"; do command -v "$p" >/dev/null || fail "$p is not installed (scripts/install-deps.sh)"; done; }

free_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET6); s.bind(("::",0)); print(s.getsockname()[1])'; }

# spawn NAME ON CMD...: starts CMD in its own process group (so a server's workers die with it),
# stdin from /dev/null, output in $tmp/NAME.out, under `shunt run` when ON=1 (and not --plain).
# The pid (= process group) is in $last.
spawn() {
  local name=$1 on=$2; shift 2
  if [ "$plain" = 1 ] || [ "$on" = 0 ]; then
    setsid "$@" </dev/null >"$tmp/$name.out" 2>&1 &
  else
    setsid "$shunt" run -- "$@" </dev/null >"$tmp/$name.out" 2>&1 &
  fi
  last=$!
  pids+=("$last")
}

# run_bounded SECONDS ON CMD...: runs CMD in the foreground (under shunt run when ON=1), killed
# after SECONDS; returns its status (124 on timeout). Its stdin is the caller's.
run_bounded() {
  local secs=$1 on=$2; shift 2
  if [ "$plain" = 1 ] || [ "$on" = 0 ]; then
    timeout -k 2 "$secs" "$@"
  else
    timeout -k 2 "$secs" "$shunt" run -- "$@"
  fi
}

# wait_listen PORT [SECONDS]: until something listens on TCP PORT.
wait_listen() {
  local port=$1 secs=${2:-10} i
  for i in $(seq $((secs * 20))); do
    [ -n "$(ss -Hltn "sport = :$port")" ] && return 0
    sleep 0.05
  done
  fail "nothing listens on port $port after ${secs}s"
}

# wait_gone PID SECONDS: until PID has exited (reaped by us if our child); 1 on timeout.
wait_gone() {
  local pid=$1 secs=$2 i
  for i in $(seq $((secs * 50))); do
    kill -0 "$pid" 2>/dev/null || return 0
    # a zombie child of ours counts as gone
    [ "$(ps -o stat= -p "$pid" 2>/dev/null | cut -c1)" = Z ] && return 0
    sleep 0.02
  done
  return 1
}

# wait_for_line FILE TEXT SECONDS
wait_for_line() {
  local i
  for i in $(seq $(($3 * 20))); do grep -qs -- "$2" "$1" && return 0; sleep 0.05; done
  fail "timeout waiting for '$2' in $1"
}

# expect_modes PORT WANT SERVER_MIN CLIENT_MIN [LABEL]
#   Reads `shunt stat --json` now and checks the connections to/from TCP PORT:
#   WANT=SMCD  every such connection is SMCD, at least SERVER_MIN server-side and CLIENT_MIN
#              client-side ones are listed (in --plain mode: no connection is listed at all);
#   WANT=TCP   the shunt side lists its connections (at least the MINs) as TCP with a fallback
#              reason and none is SMCD (in --plain mode: none listed).
#   The reasons seen are printed and left in $tmp/reasons.
expect_modes() {
  local port=$1 want=$2 smin=$3 cmin=$4 label=${5:-port $1}
  [ "$plain" = 1 ] && { want=none; smin=0; cmin=0; }
  "$shunt" stat --json > "$tmp/stat.json" || fail "shunt stat --json failed"
  python3 - "$tmp/stat.json" "$port" "$want" "$smin" "$cmin" "$label" > "$tmp/reasons" <<'PY' || { cat "$tmp/reasons"; "$shunt" stat > "$tmp/stat-table.out" 2>&1 || true; fail "shunt stat: $label"; }
import json, sys
conns = json.load(open(sys.argv[1]))
port, want, smin, cmin, label = int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
def port_of(a): return int(a.rsplit(":", 1)[1])
mine = [c for c in conns if (c["role"] == "server" and port_of(c["local"]) == port)
        or (c["role"] == "client" and port_of(c["peer"]) == port)]
srv = [c for c in mine if c["role"] == "server"]
cli = [c for c in mine if c["role"] == "client"]
modes = sorted(set(c["mode"] for c in mine))
reasons = sorted(set(f'{c["role"]}:{c["fallback_name"]}' for c in mine if c["mode"] != "SMCD"))
print(f"{label}: {len(srv)} server / {len(cli)} client connections, modes {modes}, fallbacks {reasons}")
ok = len(srv) >= smin and len(cli) >= cmin
if want == "none":
    ok = not mine
elif want == "SMCD":
    ok = ok and modes == ["SMCD"]
else:
    ok = ok and "SMCD" not in modes and all(c["fallback_name"] for c in mine)
if not ok:
    print(f"expected {want} (server >= {smin}, client >= {cmin}); got:")
    for c in mine:
        print("  ", c["pid"], c["command"], c["role"], c["local"], c["peer"], c["mode"], c["fallback_name"], c["state"])
    sys.exit(1)
PY
  cat "$tmp/reasons"
}

# dmb_fds PID: shared-memory buffers (memfd:shunt-dmb) PID still has open or mapped.
dmb_fds() {
  local n m
  n=$(ls -l "/proc/$1/fd" 2>/dev/null | grep -c 'memfd:shunt-dmb' || true)
  m=$(grep -c 'memfd:shunt-dmb' "/proc/$1/maps" 2>/dev/null || true)
  echo $((n + m))
}

# settle_dmbs PID SECONDS: until PID holds no DMB; fails after SECONDS.
settle_dmbs() {
  local i
  for i in $(seq $(($2 * 20))); do [ "$(dmb_fds "$1")" -eq 0 ] && return 0; sleep 0.05; done
  ls -l "/proc/$1/fd" | grep memfd || true
  fail "pid $1 still holds $(dmb_fds "$1") shunt-dmb descriptors/mappings $2 s after its peer died"
}

# Files in the rundir but the GID file: registrations and announcements.
rundir_files() { find "$SHUNT_RUNDIR" \( -type f -o -type s \) ! -name gid 2>/dev/null | wc -l; }
