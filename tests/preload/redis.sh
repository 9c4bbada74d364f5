#!/usr/bin/env bash
# redis-server, redis-benchmark and redis-cli under `shunt run`: the 50 benchmark connections
# are SMCD on both sides while it runs, plain and pipelined (-P 16); redis-cli --pipe loads
# 100000 keys that read back exactly; a 1 MiB value goes in and out unchanged; a redis-cli
# that repeats a command on one connection is SMCD too.
. "$(dirname "$0")/lib.sh"
require redis-server redis-benchmark redis-cli ss python3 sha256sum
port=$(free_port)
mkdir -p "$tmp/redis"
spawn server 1 redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$tmp/redis" \
  --daemonize no --protected-mode no; spid=$last
wait_listen "$port"
cli() { run_bounded 30 1 redis-cli -h 127.0.0.1 -p "$port" "$@" </dev/null; }

for pipeline in 1 16; do
  # Requests scale with the pipeline depth so the run outlasts the census below (pipelined
  # under shunt, 150k requests took under 0.1 s and the census found the clients closing).
  spawn bench 1 redis-benchmark -h 127.0.0.1 -p "$port" -c 50 -n $((150000 * pipeline)) -P "$pipeline" -t set,get --csv; bpid=$last
  # redis-benchmark connects its 50 clients, then runs SET and GET.
  for _ in $(seq 40); do [ "$(ss -Htn state established "dport = :$port" | wc -l)" -ge 50 ] && break; sleep 0.05; done
  expect_modes "$port" SMCD 50 50 "redis-benchmark -P $pipeline"
  wait_gone "$bpid" 60 || fail "redis-benchmark -P $pipeline still running after 60 s"
  wait "$bpid" || fail "redis-benchmark -P $pipeline failed"
  python3 - "$tmp/bench.out" <<'PY' || fail "redis-benchmark -P $pipeline report"
import csv, sys
rows = {r[0]: r for r in csv.reader(l for l in open(sys.argv[1]) if l.startswith('"'))}
assert float(rows["SET"][1]) > 0 and float(rows["GET"][1]) > 0, rows
print(f'SET {rows["SET"][1]} req/s, GET {rows["GET"][1]} req/s')
PY
  pass "redis-benchmark -c 50 -P $pipeline"
done

# redis-cli --pipe: mass insertion over one connection.
[ "$(cli FLUSHALL)" = OK ] || fail "FLUSHALL"
python3 -c '
for i in range(100000):
    k, v = f"pipe:{i}", f"value-{i * 7919}"
    print(f"*3\r\n$3\r\nSET\r\n${len(k)}\r\n{k}\r\n${len(v)}\r\n{v}\r", end="\n")' > "$tmp/pipe.resp"
run_bounded 60 1 redis-cli -h 127.0.0.1 -p "$port" --pipe < "$tmp/pipe.resp" > "$tmp/pipe.out" 2>&1 || fail "redis-cli --pipe"
expect_in "$tmp/pipe.out" "errors: 0, replies: 100000"
[ "$(cli DBSIZE)" = 100000 ] || fail "DBSIZE after --pipe: $(cli DBSIZE)"
[ "$(cli GET pipe:99999)" = "value-$((99999 * 7919))" ] || fail "GET pipe:99999"
pass "redis-cli --pipe: 100000 keys stored and read back"

# A 1 MiB value, not pipelined.
head -c $((1 << 20)) /dev/urandom | base64 -w0 > "$tmp/big.txt"
run_bounded 30 1 redis-cli -h 127.0.0.1 -p "$port" -x SET big < "$tmp/big.txt" > /dev/null || fail "SET big"
cli --raw GET big | head -c "$(stat -c %s "$tmp/big.txt")" > "$tmp/big.back"
[ "$(sha256sum < "$tmp/big.txt")" = "$(sha256sum < "$tmp/big.back")" ] || fail "1 MiB value came back different"
pass "redis-cli: a 1 MiB value round-trips"

# One redis-cli connection that stays open: SMCD on both ends.
spawn repeat 1 redis-cli -h 127.0.0.1 -p "$port" -r 30 -i 0.1 INCR counter; rpid=$last
sleep 1
expect_modes "$port" SMCD 1 1 "redis-cli -r"
wait_gone "$rpid" 20 || fail "redis-cli -r did not finish"
wait "$rpid" || fail "redis-cli -r failed"
[ "$(cli GET counter)" = 30 ] || fail "counter is $(cli GET counter)"
pass "redis-cli repeating INCR on one connection"
