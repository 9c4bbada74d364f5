#!/usr/bin/env bash
# `shunt stat` lists live connections with their mode and, for fallbacks, the reason: SMCD, a
# plain TCP peer (PEERNOSMC), a peer from another rundir's GID (NOSMCD2DEV, and PEERDECL on
# the side that was declined), and a peer sending a malformed Proposal (SYNCERR). `shunt stats --json` counts them.
set -euo pipefail
shunt=${1:?shunt}; peer=${2:?lo_peer}
. "$(dirname "$0")/lib.sh"
export SHUNT_RUNDIR=$tmp/run
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
hold() { sleep 30; }  # keeps a shunt cat's stdin open so its connection stays up (killed at exit)

# 1. shunt to shunt: SMCD.
p1=$(free_port)
(hold | "$shunt" cat -l 127.0.0.1 "$p1" > /dev/null 2>&1) & pids+=("$!")
wait_listen "$p1"
(hold | "$shunt" cat 127.0.0.1 "$p1" > /dev/null 2>&1) & pids+=("$!")

# 2. a plain python client to a shunt server: PEERNOSMC on the server's side.
p2=$(free_port)
(hold | "$shunt" cat -l 127.0.0.1 "$p2" > /dev/null 2>&1) & pids+=("$!")
wait_listen "$p2"
python3 -c 'import socket,sys,time; c=socket.create_connection(("127.0.0.1",int(sys.argv[1]))); time.sleep(6)' "$p2" & pids+=("$!")

# 3. different GIDs: the server read the GID before it changed; the client sees a new one.
p3=$(free_port)
(hold | "$shunt" cat -l 127.0.0.1 "$p3" > /dev/null 2>&1) & pids+=("$!")
wait_listen "$p3"
mv "$SHUNT_RUNDIR/gid" "$SHUNT_RUNDIR/gid.before"
(hold | "$shunt" cat 127.0.0.1 "$p3" > /dev/null 2>&1) & pids+=("$!")
# 4. a client that sends a malformed Proposal: SYNCERR on the server's side.
p4=$(free_port)
(hold | "$shunt" cat -l 127.0.0.1 "$p4" > /dev/null 2>&1) & pids+=("$!")
wait_listen "$p4"
"$peer" client --port "$p4" --mode malformed --hold 6 > "$tmp/malformed.out" 2>&1 & pids+=("$!")
for _ in $(seq 100); do grep -qs "declined:" "$tmp/malformed.out" && break; sleep 0.05; done
expect_in "$tmp/malformed.out" "declined: SYNCERR"

# Until every connection is listed (handshakes take a while on a loaded machine): both ends of
# p1 and p3, the servers of p2 and p4.
listed() {
  "$shunt" stat --json | python3 -c '
import json, sys
conns = json.load(sys.stdin)
def has(port, role):
    key = "local" if role == "server" else "peer"
    return any(c["role"] == role and c[key].endswith(":" + port) for c in conns)
p1, p2, p3, p4 = sys.argv[1:5]
sys.exit(0 if all([has(p1, "server"), has(p1, "client"), has(p2, "server"), has(p3, "server"),
                   has(p3, "client"), has(p4, "server")]) else 1)' "$p1" "$p2" "$p3" "$p4"
}
for _ in $(seq 200); do listed && break; sleep 0.1; done

"$shunt" stat > "$tmp/stat.out"
"$shunt" stat --json > "$tmp/stat.json"
"$shunt" stats --json > "$tmp/stats.json"
cat "$tmp/stat.out"
python3 - "$tmp/stat.json" "$tmp/stats.json" "$p1" "$p2" "$p3" "$p4" <<'PY'
import json, sys
conns = json.load(open(sys.argv[1])); stats = json.load(open(sys.argv[2]))
p1, p2, p3, p4 = (int(p) for p in sys.argv[3:7])
def find(port, role):
    key = "local" if role == "server" else "peer"
    return [c for c in conns if c["role"] == role and c[key].endswith(f":{port}")]
failures = []
def check(what, got, want):
    print(("ok  " if got == want else "FAIL"), what, got)
    if got != want: failures.append(what)
check("shunt<->shunt server mode", [c["mode"] for c in find(p1, "server")], ["SMCD"])
check("shunt<->shunt client mode", [c["mode"] for c in find(p1, "client")], ["SMCD"])
check("shunt<->shunt state", [c["state"] for c in find(p1, "server")], ["ACTIVE"])
check("plain client: server reason", [c["fallback_name"] for c in find(p2, "server")], ["PEERNOSMC"])
check("other GID: server reason", [c["fallback_name"] for c in find(p3, "server")], ["NOSMCD2DEV"])
check("other GID: client reason", [c["fallback_name"] for c in find(p3, "client")], ["PEERDECL"])
check("other GID: client sees peer's code", [c["peer_reason"] for c in find(p3, "client")], [0x03030007])
check("malformed Proposal: server reason", [c["fallback_name"] for c in find(p4, "server")], ["SYNCERR"])
reasons = {(r["side"], r["name"]): r["count"] for r in stats["fallback_reasons"]}
check("stats: server NOSMCD2DEV", reasons.get(("server", "NOSMCD2DEV"), 0) >= 1, True)
check("stats: server PEERNOSMC", reasons.get(("server", "PEERNOSMC"), 0) >= 1, True)
check("stats: SMC connections", stats["smc_connections"]["client"] >= 1 and stats["smc_connections"]["server"] >= 1, True)
sys.exit(1 if failures else 0)
PY
grep -q "NOSMCD2DEV" "$tmp/stat.out" || fail "table lacks NOSMCD2DEV"
pass "shunt stat shows SMCD and each fallback reason; shunt stats counts them"
