#!/usr/bin/env bash
# The main job on a fresh machine: installs what shunt needs, builds it, shows the CLC handshake
# on the wire, runs shunt lo side by side with TCP loopback and a UNIX socket (briefly), and
# ends with `shunt bench`: unmodified sockperf, iperf3, redis and nginx+wrk over TCP loopback and
# under `shunt run`, with a table and shunt-bench.png.
# SHUNT_DEMO_RUNS sets the repetitions of shunt bench (default 3).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
bash scripts/configure-release.sh >/dev/null
cmake --build --preset release -j"$(nproc)"

shunt=build/release/bin/shunt
"$shunt" --version
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
echo; echo "== SMC-D v2 CLC handshake over TCP loopback (tshark decodes these as SMCv2)"
"$shunt" clc demo --port "$port"
echo; echo "== shunt lo vs TCP vs UNIX socket (two processes on different CPUs)"
"$shunt" bench lo --runs 1 --iters 10000 --stream-bytes $((256 << 20)) --conns 100
echo; echo "== unmodified programs: TCP loopback vs shunt run (server and client on different CPUs)"
"$shunt" bench --runs "${SHUNT_DEMO_RUNS:-3}" --plot shunt-bench.png
