#!/usr/bin/env bash
# Only one end under `shunt run`: each program works exactly as over plain TCP, and the end that
# runs under shunt lists its connections in `shunt stat` as TCP with the fallback reason (a
# shunt server sees a client that never announced itself; a shunt client finds no shunt
# listener). Programs: the asyncio echo, iperf3, sockperf, redis-benchmark, nginx + curl.
. "$(dirname "$0")/lib.sh"
require python3 iperf3 sockperf redis-server redis-benchmark nginx curl ss sha256sum
echo_py="$(dirname "$0")/echo.py"
site=$tmp/nginx
mkdir -p "$site/html" "$site/logs" "$tmp/redis"
head -c 20000000 /dev/urandom > "$site/html/file.bin"
chmod -R a+rX "$site"
want=$(sha256sum < "$site/html/file.bin")

# start_server NAME ON PORT: the server of workload NAME on PORT.
start_server() {
  local port=$3
  case $1 in
    echo) spawn server "$2" "$py" "$echo_py" server 127.0.0.1 "$port" ;;
    iperf3) spawn server "$2" iperf3 -s -p "$port" ;;
    sockperf) spawn server "$2" sockperf sr --tcp -i 127.0.0.1 -p "$port" ;;
    redis) spawn server "$2" redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
             --dir "$tmp/redis" --daemonize no ;;
    nginx)
      { [ "$(id -u)" = 0 ] && echo "user root;"
        printf 'worker_processes 2;\ndaemon off;\npid %s/nginx.pid;\nerror_log %s/logs/error.log warn;\n' "$site" "$site"
        printf 'events { worker_connections 256; }\nhttp { access_log off; client_body_temp_path %s/body;\n' "$site"
        printf '  server { listen 127.0.0.1:%s; root %s/html; } }\n' "$port" "$site"; } > "$site/nginx.conf"
      spawn server "$2" nginx -p "$site" -c "$site/nginx.conf" -e "$site/logs/error.log" ;;
  esac
  wait_listen "$port"
}

# start_client NAME ON PORT: a client that keeps its connection(s) open for about 3 s; CONNS is
# how many connections it opens.
start_client() {
  local port=$3
  case $1 in
    echo) conns=1; spawn client "$2" "$py" "$echo_py" client 127.0.0.1 "$port" $((8 << 20)) --hold 2 ;;
    iperf3) conns=2; spawn client "$2" iperf3 -c 127.0.0.1 -p "$port" -t 3 ;;
    sockperf) conns=1; spawn client "$2" sockperf pp --tcp -i 127.0.0.1 -p "$port" -m 14 -t 3 ;;
    redis) conns=10; spawn client "$2" redis-benchmark -h 127.0.0.1 -p "$port" -c 10 -n 300000 -t set,get --csv ;;
    nginx) conns=1; spawn client "$2" curl -sS --limit-rate 8M -o "$tmp/file.dl" "http://127.0.0.1:$port/file.bin" ;;
  esac
}

check_client_output() {
  case $1 in
    echo) expect_in "$tmp/client.out" "echoed $((8 << 20)) bytes ok"; expect_in "$tmp/client.out" closed ;;
    iperf3) expect_in "$tmp/client.out" "receiver"; if grep -q "error" "$tmp/client.out"; then fail "iperf3 error"; fi ;;
    sockperf) expect_in "$tmp/client.out" "Summary: Latency is"; if grep -q ERROR "$tmp/client.out"; then fail "sockperf error"; fi ;;
    redis) expect_in "$tmp/client.out" '"GET","' ;;
    nginx) [ "$(sha256sum < "$tmp/file.dl")" = "$want" ] || fail "curl download differs" ;;
  esac
}

for prog in echo iperf3 sockperf redis nginx; do
  for side in server client; do
    port=$(free_port)
    son=0; con=0
    if [ "$side" = server ]; then son=1; else con=1; fi
    start_server "$prog" "$son" "$port"; spid=$last
    start_client "$prog" "$con" "$port"; cpid=$last
    sleep 1
    if [ "$side" = server ]; then
      expect_modes "$port" TCP "$conns" 0 "$prog, only the server under shunt run"
    else
      expect_modes "$port" TCP 0 "$conns" "$prog, only the client under shunt run"
    fi
    wait_gone "$cpid" 30 || fail "$prog client still running after 30 s"
    wait "$cpid" || fail "$prog client failed with only the $side under shunt run"
    check_client_output "$prog"
    kill -9 -- "-$spid"; wait "$spid" 2>/dev/null || true
    pass "$prog with only the $side under shunt run: $(grep -o 'fallbacks .*' "$tmp/reasons")"
  done
done
