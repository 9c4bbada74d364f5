#!/usr/bin/env bash
# shunt proxy vs HAProxy 2.6 on the emulated RSS NIC (scripts/proxy-testbed.sh).
#
# wrk (client namespace) -> proxy (proxy namespace, 2 threads pinned to CPUs 0-1) -> nginx
# (backend namespace), HTTP/1.1 GET of a 6-byte file. Three proxies, alternated in every round:
#   shunt       shunt proxy with RSS-aligned backend ports (model from the testbed)
#   unaligned   the same proxy with --no-align (kernel-chosen backend ports)
#   haproxy     HAProxy 2.6 (Debian), mode tcp, nbthread 2, cpu-map 0-1, bind ... shards by-thread
# Two loads: wrk -H "Connection: close" (a TCP connection per request) and keep-alive.
# Medians over the rounds; CPU seconds (user+sys) of the proxy, nginx and wrk during each run, and
# requests per proxy CPU-second (robust when other work on the machine takes CPU time away).
# Alignment (shunt's counters: SO_INCOMING_CPU of each socket after the emulated NIC steered its
# packets) and the Toeplitz hashes per backend connection in steady state.
#
# Usage: bench/proxy/run.sh [--json] [--rounds N] [--seconds S] [--conns C]
# Needs root, nginx, wrk, haproxy, and a release build (build/release/bin/shunt, shunt-rss-xdp).
# The machine has 2 CPUs shared by client, proxy and server: the figures compare proxies on the
# same box; they are not what a proxy on its own cores would do.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
SHUNT=${SHUNT:-$ROOT/build/release/bin/shunt}
JSON=0 ROUNDS=3 SECS=5 CONNS=64
while (($#)); do
    case $1 in
    --json) JSON=1 ;;
    --rounds) ROUNDS=$2; shift ;;
    --seconds) SECS=$2; shift ;;
    --conns) CONNS=$2; shift ;;
    *) echo "usage: $0 [--json] [--rounds N] [--seconds S] [--conns C]" >&2; exit 2 ;;
    esac
    shift
done
for tool in nginx wrk haproxy; do command -v $tool >/dev/null || { echo "$tool is required" >&2; exit 1; }; done
[[ -x $SHUNT ]] || { echo "no $SHUNT: build the release preset first" >&2; exit 1; }

source "$ROOT/scripts/proxy-testbed.sh"
TAG="b$$"
WORK=$(mktemp -d /tmp/proxy-bench.XXXXXX)
chmod 755 "$WORK"
TB_DIR="$WORK/tb"
PROXY_PID=""
cleanup() {
    [[ -n $PROXY_PID ]] && kill "$PROXY_PID" 2>/dev/null
    testbed_down "$TAG"
    rm -rf "$WORK"
}
trap cleanup EXIT
say() { ((JSON)) && echo "$*" >&2 || echo "$*"; }

testbed_up "$TAG" "$SHUNT" 2 || { echo "testbed failed: $(cat "$TB_DIR/xdp.log" 2>/dev/null)" >&2; exit 1; }
mkdir -p "$WORK/www" "$WORK/nginx"
printf 'hello\n' >"$WORK/www/small"
cat >"$WORK/nginx/nginx.conf" <<CONF
user root;
worker_processes 2;
worker_cpu_affinity 01 10;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 65536; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx; proxy_temp_path $WORK/nginx; fastcgi_temp_path $WORK/nginx;
    uwsgi_temp_path $WORK/nginx; scgi_temp_path $WORK/nginx;
    keepalive_requests 100000000;
    server { listen $TB_SRV_IP:80 reuseport; root $WORK/www; }
}
CONF
ip netns exec "$TB_NS_SRV" nginx -c "$WORK/nginx/nginx.conf" >"$WORK/nginx/out.log" 2>&1 &
for _ in $(seq 100); do ip netns exec "$TB_NS_SRV" bash -c "exec 3<>/dev/tcp/$TB_SRV_IP/80" 2>/dev/null && break; sleep 0.05; done

cat >"$WORK/haproxy.cfg" <<CONF
global
    nbthread 2
    cpu-map auto:1/1-2 0-1
    maxconn 9000
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend front
    bind $TB_PRX_IP0:8080 shards by-thread
    default_backend back
backend back
    server s1 $TB_SRV_IP:80
CONF

ADMIN="$WORK/admin.sock"
start_proxy() {
    local kind=$1
    rm -f "$WORK/proxy.log"
    case $kind in
    haproxy) ip netns exec "$TB_NS_PRX" haproxy -db -f "$WORK/haproxy.cfg" >"$WORK/proxy.log" 2>&1 & ;;
    shunt | unaligned)
        local extra=()
        [[ $kind == unaligned ]] && extra=(--no-align)
        ip netns exec "$TB_NS_PRX" "$SHUNT" proxy run --cpus 0-1 --model "$TB_DIR/model.toml" --admin "$ADMIN" \
            --listen "$TB_PRX_IP0:8080" --server "$TB_SRV_IP:80" --no-health "${extra[@]}" >"$WORK/proxy.log" 2>&1 &
        ;;
    esac
    PROXY_PID=$!
    for _ in $(seq 200); do
        ip netns exec "$TB_NS_CLI" bash -c "exec 3<>/dev/tcp/$TB_PRX_IP0/8080" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "$kind did not start: $(cat "$WORK/proxy.log")" >&2
    exit 1
}
stop_proxy() {
    kill "$PROXY_PID" 2>/dev/null
    wait "$PROXY_PID" 2>/dev/null
    PROXY_PID=""
    sleep 0.5
}
# user+sys clock ticks of a process and its threads
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
nginx_ticks() {
    local t=0 p
    for p in $(ip netns pids "$TB_NS_SRV"); do t=$((t + $(ticks "$p"))); done
    echo $t
}
stats() { ip netns exec "$TB_NS_PRX" "$SHUNT" proxy stats --admin "$ADMIN" --json; }
get() { python3 -c "import json,sys; d=json.load(sys.stdin); print(d['total']['$1'])" <<<"$2"; }

# run_wrk KIND MODE ROUND: one measurement, appended to $WORK/results
run_wrk() {
    local kind=$1 mode=$2 round=$3 hdr=()
    [[ $mode == close ]] && hdr=(-H "Connection: close")
    local before="" p0 n0
    [[ $kind != haproxy ]] && before=$(stats)
    p0=$(ticks "$PROXY_PID") n0=$(nginx_ticks)
    ip netns exec "$TB_NS_CLI" /usr/bin/time -f "%U %S" -o "$WORK/wrk.time" \
        taskset -c 0-1 wrk -t2 -c"$CONNS" -d"${SECS}s" "${hdr[@]}" "http://$TB_PRX_IP0:8080/small" >"$WORK/wrk.out" 2>&1
    local p1 n1 rps errs wcpu
    p1=$(ticks "$PROXY_PID") n1=$(nginx_ticks)
    rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk.out")
    errs=$(awk '/Socket errors/ {gsub(",",""); print $4+$6+$8+$10}' "$WORK/wrk.out")
    wcpu=$(awk '{print $1 + $2}' "$WORK/wrk.time")
    echo "$kind $mode $round ${rps:-0} ${errs:-0} $(((p1 - p0))) $(((n1 - n0))) $wcpu" >>"$WORK/results"
    if [[ $kind != haproxy ]]; then
        local after
        after=$(stats)
        echo "$kind $mode $round $(get aligned_in "$after") $(get misaligned_in "$after") $(get aligned_out "$after") \
$(get misaligned_out "$after") $(($(get toeplitz_hashes "$after") - $(get toeplitz_hashes "$before"))) \
$(($(get aligned_ports "$after") - $(get aligned_ports "$before"))) $(get port_exhausted "$after")" >>"$WORK/align"
    fi
    say "  round $round $kind $mode: ${rps:-0} req/s, errors ${errs:-0}, latency $(awk '/Latency/ {print $2, $4}' "$WORK/wrk.out")"
}

say "shunt proxy benchmark: ${ROUNDS} rounds x ${SECS}s, wrk -t2 -c${CONNS}, 2 CPUs shared by wrk, proxy and nginx (noisy machine)"
for round in $(seq 1 "$ROUNDS"); do
    for kind in shunt haproxy unaligned; do
        start_proxy "$kind"
        # a short warm-up so that every proxy starts from warm caches and pools
        ip netns exec "$TB_NS_CLI" wrk -t1 -c4 -d1s "http://$TB_PRX_IP0:8080/small" >/dev/null 2>&1
        for mode in close keepalive; do run_wrk "$kind" "$mode" "$round"; done
        stop_proxy
    done
done

python3 - "$WORK/results" "$WORK/align" "$JSON" "$SECS" <<'PY'
import json, statistics, sys
res = [l.split() for l in open(sys.argv[1])]
align = [l.split() for l in open(sys.argv[2])]
as_json = sys.argv[3] == "1"
tick = 100.0
def med(kind, mode, col):
    v = [float(r[col]) for r in res if r[0] == kind and r[1] == mode]
    return statistics.median(v) if v else 0.0
rows = []
for mode in ("close", "keepalive"):
    for kind in ("shunt", "unaligned", "haproxy"):
        rows.append((mode, kind, med(kind, mode, 3), sum(int(r[4]) for r in res if r[0] == kind and r[1] == mode),
                     med(kind, mode, 5) / tick, med(kind, mode, 6) / tick, med(kind, mode, 7)))
out = print if not as_json else (lambda *a: print(*a, file=sys.stderr))
secs = float(sys.argv[4])
def per_cpu(kind, mode):
    # requests per CPU-second of the proxy, median over rounds: what a CPU-bound proxy would do
    v = [float(r[3]) * secs / (int(r[5]) / tick) for r in res if r[0] == kind and r[1] == mode and int(r[5]) > 0]
    return statistics.median(v) if v else 0.0
out(f"{'load':<10} {'proxy':<10} {'req/s':>10} {'errors':>7} {'proxy cpu s':>12} {'req/proxy cpu-s':>16} {'nginx cpu s':>12} {'wrk cpu s':>10}")
for r in rows:
    out(f"{r[0]:<10} {r[1]:<10} {r[2]:>10.0f} {r[3]:>7} {r[4]:>12.2f} {per_cpu(r[1], r[0]):>16.0f} {r[5]:>12.2f} {r[6]:>10.2f}")
def pct(a, b): return 100.0 * a / (a + b) if a + b else 0.0
def last(kind, mode):
    v = [a for a in align if a[0] == kind and a[1] == mode]
    return v[-1] if v else None
# Counters are cumulative per proxy start; each start's last line covers its whole run.
tot = {"shunt": [0, 0, 0, 0], "unaligned": [0, 0, 0, 0]}
hashes = conns = exhausted = 0
for a in align:
    if a[1] == "keepalive":
        for i in range(4): tot[a[0]][i] += int(a[3 + i])
    if a[0] == "shunt":
        hashes += int(a[7]); conns += int(a[8]); exhausted = max(exhausted, int(a[9]))
r = {
    "close_rps_shunt": med("shunt", "close", 3), "close_rps_haproxy": med("haproxy", "close", 3),
    "close_rps_unaligned": med("unaligned", "close", 3),
    "keepalive_rps_shunt": med("shunt", "keepalive", 3), "keepalive_rps_haproxy": med("haproxy", "keepalive", 3),
    "aligned_in_pct": pct(tot["shunt"][0], tot["shunt"][1]), "aligned_out_pct": pct(tot["shunt"][2], tot["shunt"][3]),
    "unaligned_out_pct": pct(tot["unaligned"][2], tot["unaligned"][3]),
    "trial_hashes_per_conn": hashes / conns if conns else 0.0,
    "close_cpu_s_shunt": med("shunt", "close", 5) / tick, "close_cpu_s_haproxy": med("haproxy", "close", 5) / tick,
    "close_cpu_s_unaligned": med("unaligned", "close", 5) / tick,
    "keepalive_cpu_s_shunt": med("shunt", "keepalive", 5) / tick,
    "keepalive_cpu_s_haproxy": med("haproxy", "keepalive", 5) / tick,
    "errors": sum(int(x[4]) for x in res), "port_exhausted": exhausted,
}
for kind in ("shunt", "unaligned", "haproxy"):
    for mode in ("close", "keepalive"):
        r[f"{mode}_req_per_cpu_s_{kind}"] = per_cpu(kind, mode)
out(f"close: shunt/haproxy {r['close_rps_shunt'] / max(r['close_rps_haproxy'], 1):.2f}x, "
    f"shunt/unaligned {r['close_rps_shunt'] / max(r['close_rps_unaligned'], 1):.2f}x; "
    f"keep-alive: shunt/haproxy {r['keepalive_rps_shunt'] / max(r['keepalive_rps_haproxy'], 1):.2f}x")
out(f"aligned sockets (SO_INCOMING_CPU after the emulated NIC): in {r['aligned_in_pct']:.1f}%, "
    f"out {r['aligned_out_pct']:.1f}%; kernel-chosen ports: out {r['unaligned_out_pct']:.1f}%; "
    f"Toeplitz hashes per backend connection: {r['trial_hashes_per_conn']:.3f}")
if as_json:
    print(json.dumps(r))
PY
