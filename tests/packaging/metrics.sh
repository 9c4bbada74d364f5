#!/usr/bin/env bash
# Prometheus metrics: `promtool check metrics` accepts `shunt stats --prometheus` and a scrape
# of `shunt exporter`; counters of processes that exit stay in the exporter's host totals
# (a scrape after they are gone does not go backwards).
# Usage: metrics.sh SHUNT
shunt=${1:?shunt}
. "$(dirname "$0")/lib.sh"
require promtool curl python3 ss
export SHUNT_RUNDIR=$tmp/run

"$shunt" stats --prometheus > "$tmp/stats.prom" || fail "shunt stats --prometheus"
promtool check metrics < "$tmp/stats.prom" > "$tmp/promtool.out" 2>&1 || fail "promtool rejects shunt stats --prometheus"
grep -q '^shunt_connections_total{mode="smcd",role="client"} ' "$tmp/stats.prom" || fail "no shunt_connections_total"
pass "promtool check metrics accepts shunt stats --prometheus"

"$shunt" exporter --listen 127.0.0.1:0 --interval 0.1 > "$tmp/exporter.out" 2>&1 & pids+=("$!")
wait_for 10 grep -q "serving http://" "$tmp/exporter.out" || fail "exporter did not start"
url=$(sed -n 's/.*serving \(http:[^ ]*\).*/\1/p' "$tmp/exporter.out")
scrape() { curl -sS --max-time 5 "$url" > "$tmp/$1.prom" || fail "scrape $url"; }
# smcd SCRAPE: connections the scrape counts as SMCD (client + server).
smcd() { python3 - "$tmp/$1.prom" <<'PY'
import re, sys
print(sum(int(float(m.group(1))) for m in re.finditer(r'^shunt_connections_total\{mode="smcd",[^}]*\} (\S+)$', open(sys.argv[1]).read(), re.M)))
PY
}
scrape before
promtool check metrics < "$tmp/before.prom" > "$tmp/promtool.out" 2>&1 || fail "promtool rejects the exporter's scrape"
curl -sS -o /dev/null -w '%{http_code}' "${url%/metrics}/nothing" | grep -qx 404 || fail "unknown path is not 404"
pass "promtool check metrics accepts a scrape of shunt exporter ($url)"

# Two shunt cat processes with an SMCD connection held open by a fifo on the client's stdin.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkfifo "$tmp/in"
"$shunt" cat -l 127.0.0.1 "$port" > "$tmp/server.out" 2>&1 < /dev/null & server=$!; pids+=("$server")
wait_for 10 sh -c "ss -Hltn 'sport = :$port' | grep -q ." || fail "shunt cat -l does not listen"
"$shunt" cat 127.0.0.1 "$port" < "$tmp/in" > "$tmp/client.out" 2>&1 & client=$!; pids+=("$client")
exec 3> "$tmp/in"
echo hello >&3
wait_for 10 grep -q hello "$tmp/server.out" || fail "no data over the connection"
before=$(smcd before)
during_ok() { scrape during; [ "$(smcd during)" -ge $((before + 2)) ]; }
wait_for 10 during_ok || fail "the exporter does not count the live SMCD connection ($(smcd during) after $before)"
during=$(smcd during)
exec 3>&-   # EOF: client and server finish and exit
wait_for 10 sh -c "! kill -0 $client 2>/dev/null && ! kill -0 $server 2>/dev/null" || fail "shunt cat did not exit"
"$shunt" stats --json > "$tmp/live.out"
scrape after
[ "$(smcd after)" -ge "$during" ] || fail "host totals went backwards after the processes exited: $during -> $(smcd after)"
promtool check metrics < "$tmp/after.prom" > "$tmp/promtool.out" 2>&1 || fail "promtool rejects the scrape after exit"
pass "SMCD connections: $before before, $during during, $(smcd after) after both processes exited (kept)"
