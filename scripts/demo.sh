#!/usr/bin/env bash
# The main job on a fresh machine: installs what shunt needs, builds it, and runs the demo.
# Today that is the SMC-D v2 CLC handshake over real TCP loopback; the side-by-side benchmark
# against plain TCP takes its place when the lo transport lands.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j"$(nproc)"

shunt=build/release/bin/shunt
"$shunt" --version
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$shunt" clc demo --port "$port"
