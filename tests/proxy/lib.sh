# Helpers for the proxy's integration tests (sourced). Each test runs in a network namespace of
# its own (loopback only), so ports never collide with anything else on the machine.
set -uo pipefail

SHUNT=${SHUNT:?set SHUNT to the shunt binary}
TEST_NAME=${TEST_NAME:-proxy}
NS="shproxy-$TEST_NAME-$$"
WORK=$(mktemp -d /tmp/shunt-proxy-test.XXXXXX)
chmod 755 "$WORK"
PIDS=()

log() { echo "[$TEST_NAME] $*"; }
fail() {
    echo "[$TEST_NAME] FAIL: $*" >&2
    for f in "$WORK"/*.log; do [[ -s $f ]] && { echo "--- $f"; tail -20 "$f"; }; done >&2
    exit 1
}

cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in $(ip netns pids "$NS" 2>/dev/null); do kill "$p" 2>/dev/null; done
    sleep 0.2
    for p in $(ip netns pids "$NS" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
    ip netns del "$NS" 2>/dev/null
    rm -rf "$WORK" "/etc/netns/$NS"
}
trap cleanup EXIT

# Runs a command inside the test's namespace.
inns() { ip netns exec "$NS" "$@"; }

make_netns() {
    if ! ip netns add "$NS" 2>"$WORK/netns.err"; then
        echo "[$TEST_NAME] SKIP: cannot create a network namespace: $(cat "$WORK/netns.err")"
        exit 77
    fi
    inns ip link set lo up
    # Closed proxy->server connections leave TIME_WAIT behind; let connect() reuse them.
    inns sysctl -qw net.ipv4.tcp_tw_reuse=1
    # Clients (curl, wrk) share this namespace with the proxy: keep their ephemeral ports out of
    # the proxy's default source port range (32768-60999), as on a proxy host whose clients are
    # elsewhere.
    inns sysctl -qw net.ipv4.ip_local_port_range="10000 29999"
}

# wait_for SECONDS DESCRIPTION CMD...: polls CMD every 50 ms until it succeeds.
wait_for() {
    local secs=$1 what=$2
    shift 2
    local deadline=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || fail "timed out after ${secs}s waiting for: $what"
        sleep 0.05
    done
}

port_open() { inns bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# start_nginx NAME PORT [IP]: an nginx serving $WORK/www on IP:PORT (default 127.0.0.1),
# access log $WORK/NAME.access
start_nginx() {
    local name=$1 port=$2 ip=${3:-127.0.0.1} dir="$WORK/$1"
    mkdir -p "$dir" "$WORK/www"
    cat >"$dir/nginx.conf" <<CONF
user root;
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 4096; }
http {
    access_log $WORK/$name.access;
    client_body_temp_path $dir; proxy_temp_path $dir; fastcgi_temp_path $dir;
    uwsgi_temp_path $dir; scgi_temp_path $dir;
    keepalive_requests 1000000;
    sendfile on;
    server {
        listen $ip:$port reuseport;
        root $WORK/www;
        location = /name { return 200 "$name\n"; }
    }
}
CONF
    ip netns exec "$NS" nginx -c "$dir/nginx.conf" >"$dir/stdout.log" 2>&1 &
    PIDS+=($!)
    eval "NGINX_PID_$name=$!"
    wait_for 10 "nginx $name on $ip:$port" inns bash -c "exec 3<>/dev/tcp/$ip/$port"
}

# start_proxy ARGS...: shunt proxy run in the namespace, log $WORK/proxy.log, admin $WORK/admin.sock
ADMIN="$WORK/admin.sock"
start_proxy() {
    rm -f "$WORK/proxy.log"  # wait for this start's "ready", not an earlier one
    ip netns exec "$NS" "$SHUNT" proxy run --admin "$ADMIN" "$@" >"$WORK/proxy.log" 2>&1 &
    PROXY_PID=$!
    PIDS+=($PROXY_PID)
    wait_for 10 "the proxy to be ready" grep -q "shunt proxy: ready" "$WORK/proxy.log"
}

stats_json() { inns "$SHUNT" proxy stats --admin "$ADMIN" --json; }
# total COUNTER: the sum over shards
total() { stats_json | python3 -c "import json,sys; print(json.load(sys.stdin)['total']['$1'])"; }
server_up() {
    stats_json | python3 -c "
import json,sys
s=[x for x in json.load(sys.stdin)['servers'] if x['name']=='$1']
sys.exit(0 if s and s[0]['up'] == ($2 == 1) else 1)"
}

# A NIC model for loopback: 2 queues, queue q on CPU q (ports come from the allocator; loopback
# has no RSS, so this exercises the port choice, not the packet steering).
write_model() { "$SHUNT" proxy model --queues 2 >"$WORK/model.toml"; }
