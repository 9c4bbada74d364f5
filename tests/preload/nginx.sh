#!/usr/bin/env bash
# nginx (master listens, then forks 2 workers that accept) under `shunt run`, with wrk and curl
# under `shunt run`: wrk's 50 connections are SMCD on both sides and served by the workers
# (not the master), no error replies; curl fetches a 100 MB file, throttled while `shunt stat`
# looks at it and then at full speed, and its sha256 matches both times.
. "$(dirname "$0")/lib.sh"
require nginx wrk curl ss python3 sha256sum
port=$(free_port)
site=$tmp/nginx
mkdir -p "$site/html" "$site/logs"
head -c 611 /dev/zero | tr '\0' x > "$site/html/index.html"
head -c 100000000 /dev/urandom > "$site/html/big.bin"
chmod -R a+rX "$site"
want=$(sha256sum < "$site/html/big.bin")
# As root the workers stay root, so that they reach the rundir as the clients do (a worker as
# nobody, nginx's default, is not what this test is about).
{ [ "$(id -u)" = 0 ] && echo "user root;"
  cat <<CONF
worker_processes 2;
daemon off;
pid $site/nginx.pid;
error_log $site/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  # nginx closes a keep-alive connection after 1000 requests and wrk reconnects; the census
  # below counts the 50 connections, so none may be between close and reconnect.
  keepalive_requests 1000000000;
  client_body_temp_path $site/body; proxy_temp_path $site/proxy; fastcgi_temp_path $site/fastcgi;
  uwsgi_temp_path $site/uwsgi; scgi_temp_path $site/scgi;
  server { listen 127.0.0.1:$port; root $site/html; }
}
CONF
} > "$site/nginx.conf"
spawn nginx 1 nginx -p "$site" -c "$site/nginx.conf" -e "$site/logs/error.log"; master=$last
wait_listen "$port"
for _ in $(seq 100); do [ "$(pgrep -P "$master" | wc -l)" -ge 2 ] && break; sleep 0.05; done
[ "$(pgrep -P "$master" | wc -l)" -eq 2 ] || fail "nginx did not start 2 workers"

spawn wrk 1 wrk -t1 -c50 -d3s "http://127.0.0.1:$port/index.html"; wpid=$last
sleep 1.5
expect_modes "$port" SMCD 50 50 "wrk -c50"
if [ "$plain" = 0 ]; then
  python3 - "$tmp/stat.json" "$port" "$master" <<'PY' || fail "nginx connections not held by its workers"
import json, sys
port, master = int(sys.argv[2]), int(sys.argv[3])
srv = [c for c in json.load(open(sys.argv[1])) if c["role"] == "server" and c["local"].endswith(f":{port}")]
by_pid = {}
for c in srv: by_pid[c["pid"]] = by_pid.get(c["pid"], 0) + 1
print("server connections by nginx process:", by_pid)
assert master not in by_pid and by_pid, by_pid
PY
fi
wait_gone "$wpid" 20 || fail "wrk still running 20 s into a 3 s test"
wait "$wpid" || fail "wrk failed"
rps=$(grep -o 'Requests/sec: *[0-9.]*' "$tmp/wrk.out") || fail "wrk printed no Requests/sec"
if grep -q "Non-2xx" "$tmp/wrk.out"; then fail "wrk saw error replies"; fi
if grep -q "Socket errors" "$tmp/wrk.out"; then fail "wrk saw socket errors"; fi
pass "nginx + wrk -c50: $rps"

spawn curl 1 curl -sS --limit-rate 40M -o "$tmp/big.slow" "http://127.0.0.1:$port/big.bin"; cpid=$last
sleep 1
expect_modes "$port" SMCD 1 1 "curl (throttled)"
wait_gone "$cpid" 30 || fail "throttled curl still running after 30 s"
wait "$cpid" || fail "throttled curl failed"
[ "$(sha256sum < "$tmp/big.slow")" = "$want" ] || fail "throttled download differs"
run_bounded 30 1 curl -sS -o "$tmp/big.fast" -w '%{speed_download}\n' "http://127.0.0.1:$port/big.bin" > "$tmp/speed.out" </dev/null \
  || fail "curl failed"
[ "$(sha256sum < "$tmp/big.fast")" = "$want" ] || fail "download differs"
pass "curl 100 MB twice (throttled, then $(awk '{printf "%.0f MB/s", $1 / 1e6}' "$tmp/speed.out")), sha256 matches"
