#!/usr/bin/env bash
# `shunt proxy` on the emulated RSS NIC (scripts/proxy-testbed.sh): client, proxy and backend
# namespaces, XDP Toeplitz steering on the proxy's veths. Checks, with curl and wrk (short and
# keep-alive connections) through the proxy to nginx:
#   - every accepted socket and every backend socket had its packets delivered on the CPU of the
#     shard that owns it (SO_INCOMING_CPU, as the emulated NIC steered them);
#   - after a server's address changes at runtime (set-server), alignment still holds;
#   - with alignment off, some backend sockets are misaligned (the measurement can fail);
#   - the XDP program saw the flows (packet counts per flow and CPU).
# Usage: testbed_test.sh path/to/shunt.  Exit 0 pass, 1 fail, 77 skip.
SHUNT=$1
TEST_NAME=testbed
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/../../scripts/proxy-testbed.sh"

(($(nproc) >= 2)) || { echo "SKIP: needs 2 CPUs"; exit 77; }
TAG="t$$"
TB_DIR="$WORK/tb"
trap 'testbed_down "$TAG"; cleanup' EXIT
testbed_up "$TAG" "$SHUNT" 2
rc=$?
((rc == 77)) && { echo "SKIP: cannot create namespaces"; exit 77; }
((rc == 0)) || fail "testbed did not come up (rc $rc): $(cat "$TB_DIR/xdp.log" 2>/dev/null)"
NS=$TB_NS_SRV
mkdir -p "$WORK/www" && echo hello >"$WORK/www/small"
# Two nginx in the backend namespace, one per address.
start_nginx_at() {
    local name=$1 ip=$2 dir="$WORK/$1"
    mkdir -p "$dir"
    cat >"$dir/nginx.conf" <<CONF
user root;
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $dir; proxy_temp_path $dir; fastcgi_temp_path $dir;
    uwsgi_temp_path $dir; scgi_temp_path $dir;
    keepalive_requests 1000000;
    server { listen $ip:80; root $WORK/www; location = /name { return 200 "$name\n"; } }
}
CONF
    ip netns exec "$TB_NS_SRV" nginx -c "$dir/nginx.conf" >"$dir/stdout.log" 2>&1 &
    PIDS+=($!)
    wait_for 10 "nginx $name" ip netns exec "$TB_NS_SRV" bash -c "exec 3<>/dev/tcp/$ip/80"
}
start_nginx_at a "$TB_SRV_IP"
start_nginx_at b "$TB_SRV_IP2"

ADMIN="$WORK/admin.sock"
run_proxy() {
    rm -f "$WORK/proxy.log"
    ip netns exec "$TB_NS_PRX" "$SHUNT" proxy run --admin "$ADMIN" --cpus 0-1 --model "$TB_DIR/model.toml" \
        --listen "$TB_PRX_IP0:8080" --server "$TB_SRV_IP:80" "$@" >"$WORK/proxy.log" 2>&1 &
    PROXY_PID=$!
    wait_for 10 "proxy ready" grep -q "shunt proxy: ready" "$WORK/proxy.log"
}
NS=$TB_NS_PRX  # total() and the admin commands run in the proxy namespace
client() { ip netns exec "$TB_NS_CLI" "$@"; }
load() {
    local i
    for i in $(seq 1 20); do client curl -sS -m 5 -o /dev/null "http://$TB_PRX_IP0:8080/name" || fail "curl $i"; done
    client wrk -t2 -c8 -d1s -H "Connection: close" "http://$TB_PRX_IP0:8080/small" >"$WORK/wrk1.log" 2>&1 || fail wrk
    client wrk -t2 -c8 -d1s "http://$TB_PRX_IP0:8080/small" >"$WORK/wrk2.log" 2>&1 || fail wrk
    grep -qE "Socket errors|Non-2xx" "$WORK/wrk1.log" "$WORK/wrk2.log" && fail "wrk errors"
    return 0
}

run_proxy
load
log "aligned: in $(total aligned_in)/$(total misaligned_in) out $(total aligned_out)/$(total misaligned_out) (aligned/misaligned)"
(($(total misaligned_in) == 0 && $(total aligned_in) > 20)) || fail "accepted sockets not all aligned"
(($(total misaligned_out) == 0 && $(total aligned_out) > 20)) || fail "backend sockets not all aligned"
for cpu in 0 1; do
    n=$(stats_json | python3 -c "import json,sys; print(json.load(sys.stdin)['shards'][$cpu]['aligned_out'])")
    ((n > 0)) || fail "shard $cpu served nothing: the emulated NIC does not spread"
done

out_before=$(total aligned_out)
ip netns exec "$TB_NS_PRX" "$SHUNT" proxy set-server --admin "$ADMIN" "main/$TB_SRV_IP:80" "$TB_SRV_IP2:80" >/dev/null ||
    fail "set-server"
[[ $(client curl -sS -m 5 "http://$TB_PRX_IP0:8080/name") == b ]] || fail "not moved"
load
log "after the move: out $(total aligned_out)/$(total misaligned_out), retargets $(total retargets)"
(($(total misaligned_out) == 0 && $(total aligned_out) > out_before + 20)) || fail "alignment lost after the move"

flows=$(testbed_flows)
echo "$flows" | python3 -c "
import json,sys
f=json.load(sys.stdin)['flows']
back=[x for x in f if x['sport']==80]
front=[x for x in f if x['dport']==8080]
cpus={x['cpu'] for x in back}
print('[testbed] XDP saw', len(front), 'client flows and', len(back), 'backend flows on CPUs', sorted(cpus))
sys.exit(0 if len(back) > 20 and len(front) > 20 and cpus == {0, 1} else 1)" || fail "XDP flow counts"

kill "$PROXY_PID"; wait "$PROXY_PID"
run_proxy --no-align
load
log "alignment off: out $(total aligned_out)/$(total misaligned_out)"
(($(total misaligned_out) > 0)) || fail "kernel-chosen ports were never misaligned: the check cannot fail?"
log PASS
