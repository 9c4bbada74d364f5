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

"$shunt" exporter --listen 127.0.0.1:0 --interval 0.2 > "$tmp/exporter.out" 2>&1 & pids+=("$!")
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

# rds: two nodes (127.0.0.1, 127.0.0.2) with 4 lanes, one reset every 100 ms: the lanes are
# listed while they run and the retransmits they counted stay after they exit.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ctl=$(free_port); lanes=$(free_port)
"$shunt" rds stress -r 127.0.0.2 -p "$ctl" --lane-port "$lanes" > "$tmp/rds-passive.out" 2>&1 & passive=$!; pids+=("$passive")
wait_for 10 sh -c "ss -Hltn 'sport = :$ctl' | grep -q ." || fail "rds stress passive side does not listen"
"$shunt" rds stress -r 127.0.0.1 -s 127.0.0.2 -p "$ctl" --lane-port "$lanes" -t 2 -T 2 --lanes 4 --reset 100 \
  > "$tmp/rds-active.out" 2>&1 & active=$!; pids+=("$active")
node=127.0.0.1:$lanes
# value SCRAPE METRIC: the value of METRIC{node="$node"...} in SCRAPE (0 when absent).
value() { python3 - "$tmp/$1.prom" "$2" "$node" <<'PY'
import re, sys
text, metric, node = open(sys.argv[1]).read(), sys.argv[2], sys.argv[3]
print(sum(int(float(m.group(1))) for m in re.finditer(rf'^{metric}{{node="{re.escape(node)}@[0-9]+"[^}}]*}} (\S+)$', text, re.M)))
PY
}
rds_ok() { scrape rds; [ "$(value rds shunt_rds_lanes)" -ge 1 ] && [ "$(value rds shunt_rds_retransmits_total)" -ge 1 ]; }
wait_for 15 rds_ok || fail "no rds lanes or retransmits for $node: $(grep "$node" "$tmp/rds.prom")"
retrans=$(value rds shunt_rds_retransmits_total)
wait_for 20 sh -c "! kill -0 $active 2>/dev/null" || fail "rds stress did not finish"
kill "$passive" 2>/dev/null || true
wait_for 10 sh -c "! kill -0 $passive 2>/dev/null" || fail "rds stress passive side did not stop"
scrape rds-after
[ "$(value rds-after shunt_rds_retransmits_total)" -ge "$retrans" ] || fail "rds retransmits went backwards after exit"
[ "$(value rds-after shunt_rds_lanes)" = 0 ] || fail "lanes of an exited node still listed"
promtool check metrics < "$tmp/rds-after.prom" > "$tmp/promtool.out" 2>&1 || fail "promtool rejects the rds scrape"
pass "rds: lanes listed while up, $retrans retransmits seen live, $(value rds-after shunt_rds_retransmits_total) kept after exit"
