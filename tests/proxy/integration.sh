#!/usr/bin/env bash
# Integration tests of `shunt proxy` on loopback inside a private network namespace.
# Usage: integration.sh path/to/shunt CASE
#   http       curl (short connections) and wrk (keep-alive and Connection: close) to two nginx
#              backends, a 100 MB download with matching sha256, both balance modes
#   halfclose  socat client shuts its write side; the backend (wc -c) only answers after EOF
#   health     a backend killed: checks take it out, nothing is sent to it while down; restarted:
#              back in
#   retarget   `shunt proxy set-server` moves a server at runtime; traffic follows, ports stay
#              aligned
#   exhaust    a tiny source port range runs out: clear error, counter, no crash, recovers
#   badconfig  malformed configuration files: error with file:line, exit status 1
#   stop       SIGTERM while a download runs: no new connections, the download completes
#   dns        a server named by DNS (/etc/hosts of the namespace) moves: re-resolved, traffic
#              follows, pools retargeted
#   reload     a new process takes over the listeners under wrk load: zero failed requests
# Exit 0 pass, 1 fail, 77 skip (no netns).
SHUNT=$1
TEST_NAME=$2
source "$(dirname "$0")/lib.sh"

case_http() {
    make_netns
    write_model
    mkdir -p "$WORK/www"
    head -c 100M /dev/urandom >"$WORK/www/big"
    echo "hello" >"$WORK/www/small"
    start_nginx a 9001
    start_nginx b 9002
    start_proxy --listen 127.0.0.1:8080 --server 127.0.0.1:9001 --server 127.0.0.1:9002 \
        --model "$WORK/model.toml" --cpus 0-1
    grep -q "NIC model: file" "$WORK/proxy.log" || fail "model not reported"
    local i out
    for i in $(seq 1 20); do
        out=$(inns curl -sS --max-time 5 http://127.0.0.1:8080/name) || fail "curl $i"
        echo "$out" >>"$WORK/names"
    done
    [[ $(grep -c '^a$' "$WORK/names") -eq 10 && $(grep -c '^b$' "$WORK/names") -eq 10 ]] ||
        fail "round robin: $(sort "$WORK/names" | uniq -c | tr '\n' ' ')"
    inns wrk -t2 -c16 -d2s http://127.0.0.1:8080/small >"$WORK/wrk-ka.log" 2>&1 || fail "wrk keep-alive"
    inns wrk -t2 -c16 -d2s -H "Connection: close" http://127.0.0.1:8080/small >"$WORK/wrk-close.log" 2>&1 ||
        fail "wrk close"
    for f in wrk-ka wrk-close; do
        grep -q "requests in" "$WORK/$f.log" || fail "$f: no result"
        grep -qE "Socket errors|Non-2xx" "$WORK/$f.log" && fail "$f: errors: $(grep -E 'Socket|Non-2xx' "$WORK/$f.log")"
        log "$f: $(grep Requests/sec "$WORK/$f.log")"
    done
    local want got
    want=$(sha256sum <"$WORK/www/big" | cut -d' ' -f1)
    got=$(inns curl -sS --max-time 60 http://127.0.0.1:8080/big | sha256sum | cut -d' ' -f1)
    [[ $want == "$got" ]] || fail "100 MB download: sha256 $got, want $want"
    log "100 MB download sha256 ok"
    local ports kernel exhausted
    ports=$(total aligned_ports) kernel=$(total kernel_ports) exhausted=$(total port_exhausted)
    log "aligned_ports=$ports kernel_ports=$kernel port_exhausted=$exhausted bytes_out=$(total bytes_out)"
    ((ports > 20 && kernel == 0 && exhausted == 0)) || fail "port counters"
    inns "$SHUNT" proxy stats --admin "$ADMIN" --prometheus | grep -q '^shunt_proxy_sessions_total{cpu="0"}' ||
        fail "prometheus text"
    kill "$PROXY_PID"; wait "$PROXY_PID" || fail "proxy exit status"

    # leastconn, buffer forwarding, no model (unaligned, and it says so)
    start_proxy --listen 127.0.0.1:8081 --server 127.0.0.1:9001 --server 127.0.0.1:9002 \
        --balance leastconn --no-splice --cpus 0-1
    grep -q "not RSS-aligned" "$WORK/proxy.log" || fail "no model: not said"
    got=$(inns curl -sS --max-time 60 http://127.0.0.1:8081/big | sha256sum | cut -d' ' -f1)
    [[ $want == "$got" ]] || fail "buffer mode download: sha256 $got"
    inns wrk -t2 -c16 -d1s http://127.0.0.1:8081/small >"$WORK/wrk-lc.log" 2>&1 || fail "wrk leastconn"
    grep -qE "Socket errors|Non-2xx" "$WORK/wrk-lc.log" && fail "leastconn errors"
    (($(total kernel_ports) > 0 && $(total aligned_ports) == 0)) || fail "unaligned counters"
}

case_halfclose() {
    make_netns
    write_model
    ip netns exec "$NS" socat TCP-LISTEN:9100,bind=127.0.0.1,reuseaddr,fork SYSTEM:'wc -c' &
    PIDS+=($!)
    wait_for 10 "socat backend" port_open 9100
    start_proxy --listen 127.0.0.1:8080 --server 127.0.0.1:9100 --model "$WORK/model.toml" --cpus 0-1
    local out
    # socat shuts its write side at EOF of stdin and waits (-t) for the answer; wc -c answers only
    # after its EOF, so the answer arrives only if the proxy carried the half-close through.
    out=$(printf 'hello world' | inns timeout 10 socat -t 8 - TCP:127.0.0.1:8080) || fail "socat"
    [[ $(echo "$out" | tr -d ' ') == 11 ]] || fail "half-close: answer '$out', want 11"
    head -c 3000000 /dev/zero >"$WORK/zeros"
    out=$(inns timeout 20 socat -t 15 - TCP:127.0.0.1:8080 <"$WORK/zeros") || fail "socat 3 MB"
    [[ $(echo "$out" | tr -d ' ') == 3000000 ]] || fail "half-close after 3 MB: '$out'"
    log "half-close carried through both ways"
}

case_health() {
    make_netns
    write_model
    start_nginx a 9001
    start_nginx b 9002
    start_proxy --listen 127.0.0.1:8080 --server 127.0.0.1:9001 --server 127.0.0.1:9002 \
        --model "$WORK/model.toml" --cpus 0-1 --health-interval 200ms
    local i
    for i in $(seq 1 10); do inns curl -sS --max-time 5 -o /dev/null http://127.0.0.1:8080/name || fail "curl"; done
    kill "$NGINX_PID_b"
    wait "$NGINX_PID_b" 2>/dev/null
    wait_for 10 "server b marked down" server_up 127.0.0.1:9002 0
    grep -q "127.0.0.1:9002.*DOWN" "$WORK/proxy.log" || fail "no DOWN message"
    local errs_before=$(total connect_errors)
    for i in $(seq 1 20); do
        [[ $(inns curl -sS --max-time 5 http://127.0.0.1:8080/name) == a ]] || fail "request $i while b is down"
    done
    (($(total connect_errors) == errs_before)) || fail "connections were sent to the down server"
    local before=$(wc -l <"$WORK/b.access")
    start_nginx b 9002
    wait_for 10 "server b back up" server_up 127.0.0.1:9002 1
    for i in $(seq 1 20); do inns curl -sS --max-time 5 -o /dev/null http://127.0.0.1:8080/name || fail "curl after"; done
    (($(wc -l <"$WORK/b.access") > before)) || fail "b got no requests after coming back"
    log "down after kill, nothing sent while down, back after restart"
}

case_retarget() {
    make_netns
    write_model
    start_nginx a 9001
    start_nginx b 9002
    start_proxy --listen 127.0.0.1:8080 --server 127.0.0.1:9001 --model "$WORK/model.toml" --cpus 0-1
    [[ $(inns curl -sS --max-time 5 http://127.0.0.1:8080/name) == a ]] || fail "before the move"
    inns "$SHUNT" proxy set-server --admin "$ADMIN" main/127.0.0.1:9001 127.0.0.1:9002 || fail "set-server"
    inns "$SHUNT" proxy set-server --admin "$ADMIN" main/nope 127.0.0.1:9002 >/dev/null && fail "unknown server accepted"
    local i
    for i in $(seq 1 10); do
        [[ $(inns curl -sS --max-time 5 http://127.0.0.1:8080/name) == b ]] || fail "request $i after the move"
    done
    (($(total retargets) >= 2)) || fail "retargets counter: $(total retargets)"
    (($(total kernel_ports) == 0 && $(total port_exhausted) == 0)) || fail "ports after the move"
    log "moved; retargets=$(total retargets) toeplitz_hashes=$(total toeplitz_hashes) for $(total sessions_total) sessions"
}

case_exhaust() {
    make_netns
    write_model
    ip netns exec "$NS" socat TCP-LISTEN:9100,bind=127.0.0.1,reuseaddr,fork SYSTEM:'sleep 30' &
    PIDS+=($!)
    wait_for 10 "socat backend" port_open 9100
    start_proxy --listen 127.0.0.1:8080 --server 127.0.0.1:9100 --model "$WORK/model.toml" --cpus 0-1 \
        --port-range 41000-41015 --no-health
    # 40 held connections for 16 source ports over 2 CPUs: some must be refused.
    ip netns exec "$NS" python3 - <<'PY' >"$WORK/held.log" 2>&1 &
import socket, time
held = []
for i in range(40):
    s = socket.create_connection(("127.0.0.1", 8080), timeout=5)
    held.append(s)
time.sleep(20)
PY
    HELD_PID=$!
    PIDS+=($HELD_PID)
    wait_for 10 "port_exhausted > 0" bash -c "(( \$(SHUNT=$SHUNT; ip netns exec $NS $SHUNT proxy stats --admin $ADMIN --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"total\"][\"port_exhausted\"])') > 0 ))"
    grep -q "no RSS-aligned source port left" "$WORK/proxy.log" || fail "no clear error message"
    kill -0 "$PROXY_PID" || fail "proxy died"
    local held=$(total ports_held) pool=$(total pool_ports)
    log "port_exhausted=$(total port_exhausted) ports_held=$held pool_ports=$pool kernel_ports=$(total kernel_ports)"
    ((held <= pool && $(total kernel_ports) == 0)) || fail "more ports held than pooled, or a kernel port used"
    kill "$HELD_PID"
    wait_for 10 "ports returned" bash -c "(( \$(ip netns exec $NS $SHUNT proxy stats --admin $ADMIN --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"total\"][\"ports_held\"])') == 0 ))"
    inns bash -c "exec 3<>/dev/tcp/127.0.0.1/8080" || fail "no service after the ports came back"
}

case_badconfig() {
    local f="$WORK/bad.toml" out
    printf '[global]\nmax_connections = 10\n\n[[backend]\nname = "x"\n' >"$f"
    out=$("$SHUNT" proxy check "$f" 2>&1) && fail "syntax error accepted"
    [[ $out == *"bad.toml:4:"* ]] || fail "syntax error: '$out'"
    printf '[[backend]]\nname = "web"\nservers = ["10.0.0.1:80"]\n\n[[frontend]]\nlisten = "0.0.0.0:80"\nbackend = "wbe"\n' >"$f"
    out=$("$SHUNT" proxy run -c "$f" 2>&1) && fail "unknown backend accepted"
    [[ $out == *"bad.toml:7:"*wbe* ]] || fail "unknown backend: '$out'"
    printf '[timeouts]\nconect = "5s"\n' >"$f"
    out=$("$SHUNT" proxy check "$f" 2>&1) && fail "unknown key accepted"
    [[ $out == *"bad.toml:2:"*conect* ]] || fail "unknown key: '$out'"
    printf '[[backend]]\nname = "w"\nservers = ["10.0.0.1:80"]\n[[frontend]]\nlisten = "0.0.0.0:80"\nbackend = "w"\n' >"$f"
    "$SHUNT" proxy check "$f" >/dev/null || fail "a good file rejected"
    printf 'queues = 2\nkey = "zz"\n' >"$WORK/m.toml"
    out=$("$SHUNT" proxy run -c "$f" --model "$WORK/m.toml" 2>&1) && fail "bad model accepted"
    [[ $out == *"m.toml:2:"* ]] || fail "bad model: '$out'"
    log "errors name file:line"
}

case_stop() {
    make_netns
    write_model
    mkdir -p "$WORK/www"
    head -c 50M /dev/urandom >"$WORK/www/big"
    start_nginx a 9001
    start_proxy --listen 127.0.0.1:8080 --server 127.0.0.1:9001 --model "$WORK/model.toml" --cpus 0-1 --grace 20s
    # A slow download (1 MB/s) is in flight when the proxy is told to stop.
    ip netns exec "$NS" curl -sS --max-time 60 --limit-rate 10M -o "$WORK/got" http://127.0.0.1:8080/big &
    local curl_pid=$!
    wait_for 10 "download started" test -s "$WORK/got"
    kill -TERM "$PROXY_PID"
    wait_for 5 "drain message" grep -q "draining" "$WORK/proxy.log"
    wait_for 5 "listeners closed" inns bash -c "! exec 3<>/dev/tcp/127.0.0.1/8080"
    kill -0 "$curl_pid" 2>/dev/null || fail "the download ended before the stop"
    wait "$curl_pid" || fail "download cut by the stop"
    cmp -s "$WORK/got" "$WORK/www/big" || fail "download differs"
    wait "$PROXY_PID" || fail "proxy exit status"
    log "graceful stop: in-flight download completed, new connections refused"
}

case_reload() {
    make_netns
    write_model
    start_nginx a 9001
    local args=(--listen 127.0.0.1:8080 --server 127.0.0.1:9001 --model "$WORK/model.toml" --cpus 0-1)
    start_proxy "${args[@]}"
    local old=$PROXY_PID
    inns wrk -t2 -c16 -d4s -H "Connection: close" http://127.0.0.1:8080/name >"$WORK/wrk-close.log" 2>&1 &
    local wrk_close=$!
    inns wrk -t1 -c4 -d4s http://127.0.0.1:8080/name >"$WORK/wrk-ka.log" 2>&1 &
    local wrk_ka=$!
    sleep 1  # let the load run for a while before the reload (a wrk duration, not a wait)
    mv "$WORK/proxy.log" "$WORK/old.log"
    start_proxy "${args[@]}" --takeover "$ADMIN"
    grep -q "took over the listeners" "$WORK/proxy.log" || fail "no takeover"
    wait "$old" || fail "old process exit status"
    grep -q "handed over" "$WORK/old.log" || fail "old process did not hand over"
    wait "$wrk_close"; wait "$wrk_ka"
    local f
    for f in wrk-close wrk-ka; do
        grep -q "requests in" "$WORK/$f.log" || fail "$f: no result"
        grep -qE "Socket errors|Non-2xx" "$WORK/$f.log" && fail "$f during the reload: $(grep -E 'Socket|Non-2xx' "$WORK/$f.log")"
        log "$f: $(grep 'requests in' "$WORK/$f.log")"
    done
    (($(total sessions_total) > 0)) || fail "the new process served nothing"
    [[ $(inns curl -sS --max-time 5 http://127.0.0.1:8080/name) == a ]] || { inns "$SHUNT" proxy stats --admin "$ADMIN" | grep -vE " 0 +0 +0$"; inns ss -tan | grep -c TIME-WAIT; fail "no service after the reload"; }
    log "reload under load: zero failed requests"
}

case_dns() {
    make_netns
    write_model
    # `ip netns exec` mounts /etc/netns/NS/hosts over /etc/hosts; rewritten in place later.
    mkdir -p "/etc/netns/$NS"
    echo "127.0.0.1 web.test" >"/etc/netns/$NS/hosts"
    start_nginx a 9001 127.0.0.1
    start_nginx b 9001 127.0.0.2
    start_proxy --listen 127.0.0.1:8080 --server web.test:9001 --model "$WORK/model.toml" --cpus 0-1 \
        --resolve-interval 200ms
    [[ $(inns curl -sS --max-time 5 http://127.0.0.1:8080/name) == a ]] || fail "before the change"
    echo "127.0.0.2 web.test" >"/etc/netns/$NS/hosts"
    wait_for 10 "traffic to follow the new address" \
        bash -c "[[ \$(ip netns exec $NS curl -sS --max-time 5 http://127.0.0.1:8080/name) == b ]]"
    grep -q "now resolves to 127.0.0.2:9001" "$WORK/proxy.log" || fail "no message"
    (($(total retargets) >= 2 && $(total kernel_ports) == 0)) || fail "retargets $(total retargets)"
    log "re-resolved; retargets=$(total retargets)"
}

"case_$TEST_NAME"
log "PASS"
