#!/usr/bin/env bash
# The Debian package: cpack builds shunt_<version>_amd64.deb; lintian reports no error; it
# depends on what dpkg-shlibdeps found; `dpkg -i` installs it; an unmodified program (Python's
# asyncio echo) under the installed `shunt run` connects over SMCD, as the installed `shunt
# stat` shows; the manual pages and /run/shunt are in place; `dpkg --purge` leaves none of
# its files. Needs root (it installs into /usr).
# Usage: deb.sh BUILD_DIR SOURCE_DIR
build=${1:?build dir}; src=${2:?source dir}
. "$(dirname "$0")/lib.sh"
require cpack lintian dpkg dpkg-deb python3 ss man
[ "$(id -u)" = 0 ] || fail "needs root to install the package"
if dpkg-query -W -f='${Status}' shunt 2>/dev/null | grep -q "ok installed"; then
  fail "a shunt package is already installed; remove it first (dpkg --purge shunt)"
fi

(cd "$build" && cpack -G DEB -B "$tmp/deb") > "$tmp/cpack.out" 2>&1 || fail "cpack -G DEB"
debs=("$tmp"/deb/shunt_*_amd64.deb)
[ "${#debs[@]}" = 1 ] && [ -f "${debs[0]}" ] || fail "cpack made: $(ls "$tmp/deb")"
deb=${debs[0]}
version=$(sed -n 's/.*kVersion = "\(.*\)".*/\1/p' "$build/include/shunt/version.hpp")
[ "$(basename "$deb")" = "shunt_${version}_amd64.deb" ] || fail "package named $(basename "$deb")"
depends=$(dpkg-deb -f "$deb" Depends)
[[ $depends == *libc6* && $depends == *libstdc++6* ]] || fail "Depends: $depends"
pass "$(basename "$deb"), Depends: $depends"

lintian --fail-on error --tag-display-limit 0 "$deb" > "$tmp/lintian.out" 2>&1 || fail "lintian reports errors"
pass "lintian: no errors ($(grep -c '^[WI]:' "$tmp/lintian.out" || true) warnings/info)"

cleanup_hooks+=("dpkg --purge shunt > /dev/null 2>&1")
# Another dpkg (an apt run elsewhere on the host) may hold the lock for a while.
install_deb() { dpkg -i "$deb" > "$tmp/dpkg-i.out" 2>&1 || { grep -q "lock" "$tmp/dpkg-i.out" && return 1; fail "dpkg -i"; }; }
wait_for 120 install_deb || fail "dpkg -i: dpkg stayed locked"
dpkg -L shunt > "$tmp/files"
for f in /usr/bin/shunt /usr/share/man/man1/shunt-run.1.gz /usr/share/bash-completion/completions/shunt \
         /usr/lib/tmpfiles.d/shunt.conf /usr/include/shunt/shunt.h; do
  grep -qx "$f" "$tmp/files" || fail "package lacks $f"
done
grep -q "/shunt/libshunt-preload.so$" "$tmp/files" || fail "package lacks libshunt-preload.so"
[ "$(man -w shunt-exporter)" = /usr/share/man/man1/shunt-exporter.1.gz ] || fail "man shunt-exporter not found"
if command -v systemd-tmpfiles > /dev/null; then
  [ "$(stat -c %a /run/shunt)" = 711 ] && [ "$(stat -c %a /run/shunt/conn)" = 1733 ] \
    || fail "/run/shunt modes $(stat -c %a /run/shunt) / conn $(stat -c %a /run/shunt/conn 2>/dev/null)"
fi
pass "installed: $(wc -l < "$tmp/files") paths; man shunt-exporter; /run/shunt 0711, conn 01733"

# A real program under the installed shunt run, default rundir (/run/shunt), no variables.
unset SHUNT_RUNDIR SHUNT_PRELOAD_LIB
py=$(command -v /usr/bin/python3 || command -v python3)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# A background job starts with SIGINT ignored; the server takes it back so that SIGINT ends it
# normally (closing its listener, which removes its rundir entry).
setsid /usr/bin/shunt run -- "$py" -c 'import runpy, signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")' "$src/tests/preload/echo.py" server 127.0.0.1 "$port" \
  > "$tmp/server.out" 2>&1 < /dev/null &
server=$!
pids+=("$server")
wait_for 10 sh -c "ss -Hltn 'sport = :$port' | grep -q ." || fail "echo server does not listen"
setsid /usr/bin/shunt run -- "$py" "$src/tests/preload/echo.py" client 127.0.0.1 "$port" 1000000 --hold 2 \
  > "$tmp/client.out" 2>&1 < /dev/null &
client=$!
pids+=("$client")
wait_for 10 grep -q "echoed 1000000 bytes ok" "$tmp/client.out" || fail "echo client"
/usr/bin/shunt stat --json > "$tmp/stat.json"
python3 - "$tmp/stat.json" "$port" <<'PY' || fail "shunt stat does not show SMCD for both ends"
import json, sys
port = int(sys.argv[2])
mine = [c for c in json.load(open(sys.argv[1]))
        if (c["role"] == "server" and c["local"].endswith(f":{port}")) or (c["role"] == "client" and c["peer"].endswith(f":{port}"))]
print(sorted((c["role"], c["mode"]) for c in mine))
sys.exit(0 if sorted((c["role"], c["mode"]) for c in mine) == [("client", "SMCD"), ("server", "SMCD")] else 1)
PY
pass "python asyncio echo under the installed shunt run: SMCD both ends (installed shunt stat)"
# Both end normally (the client after its hold, the server on SIGINT), so that their rundir
# entries go with them and the purge below can remove /run/shunt.
wait_for 10 sh -c "! kill -0 $client 2>/dev/null" || fail "echo client did not finish"
kill -INT "$server"
wait_for 10 sh -c "! kill -0 $server 2>/dev/null" || fail "echo server did not stop on SIGINT"
pids=()

dpkg --purge shunt > "$tmp/purge.out" 2>&1 || fail "dpkg --purge"
left=$(while read -r f; do if [ ! -d "$f" ] && [ -e "$f" ]; then echo "$f"; fi; done < "$tmp/files")
[ -z "$left" ] || fail "left after purge: $left"
! dpkg-query -W -f='${Status}' shunt 2>/dev/null | grep -q "installed" || fail "still installed after purge"
for d in /usr/include/shunt /usr/share/doc/shunt; do [ ! -e "$d" ] || fail "$d left after purge"; done
# /run/shunt goes too, unless a live process (a listener holding its entry's lock) uses it.
if [ -e /run/shunt ]; then
  live=$(find /run/shunt -mindepth 1 ! -type d ! -name gid 2>/dev/null | while read -r f; do
           if [ -S "$f" ] || ! flock -n "$f" true 2>/dev/null; then echo "$f"; fi; done)
  [ -n "$live" ] || fail "/run/shunt left after purge although nothing lives in it: $(find /run/shunt)"
  pass "dpkg --purge removed every file (/run/shunt kept: in use by $(echo "$live" | head -3 | tr '\n' ' '))"
else
  pass "dpkg --purge removed every file and /run/shunt"
fi
