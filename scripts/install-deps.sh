#!/usr/bin/env bash
# Installs every Debian package shunt needs to build, test and benchmark.
# Idempotent and quiet: packages already present are skipped without touching apt.
set -euo pipefail

PACKAGES=(
  # build
  build-essential cmake ninja-build pkg-config clang-14 libclang-rt-14-dev
  libcli11-dev libfmt-dev nlohmann-json3-dev libtomlplusplus-dev
  # the proxy's emulated RSS NIC (XDP) and the proxy benchmark's reference
  libbpf-dev haproxy
  # test
  libgtest-dev libgmock-dev googletest tshark python3 socat iproute2 ethtool procps
  # packaging: manual pages, the .deb check, metrics check (promtool)
  help2man man-db lintian prometheus
  # benchmark peers
  libzmq3-dev sockperf iperf3 redis-server redis-tools nginx-light wrk curl
  gnuplot-nox util-linux
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: need root to install: ${missing[*]}" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# tshark asks whether non-root users may capture; answer once, non-interactively.
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The Debian packages start services we do not want running behind the benchmarks.
for svc in redis-server nginx haproxy prometheus; do
  if command -v systemctl >/dev/null && systemctl is-active -q "$svc" 2>/dev/null; then
    systemctl stop "$svc" || true
    systemctl disable -q "$svc" 2>/dev/null || true
  fi
done
pkill -x redis-server 2>/dev/null || true
pkill -x nginx 2>/dev/null || true
pkill -x prometheus 2>/dev/null || true
pkill -x haproxy 2>/dev/null || true
exit 0
