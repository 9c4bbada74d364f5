#!/usr/bin/env bash
# Configures the release preset (Release: -O3, -Werror) with Debian's build flags, as a
# Debian package build would: dpkg-buildflags adds -g, the hardening flags (stack protector,
# _FORTIFY_SOURCE, format-security, relro) and a reproducible file prefix. demo.sh and test.sh
# both use it, so they share one build; the packaging tests install and package that build.
set -euo pipefail
cd "$(dirname "$0")/.."
flags() { dpkg-buildflags --get "$1"; }
cflags="$(flags CFLAGS) $(flags CPPFLAGS)"
cxxflags="$(flags CXXFLAGS) $(flags CPPFLAGS)"
ldflags=$(flags LDFLAGS)
cmake --preset release -DCMAKE_C_FLAGS="$cflags" -DCMAKE_CXX_FLAGS="$cxxflags" -DCMAKE_EXE_LINKER_FLAGS="$ldflags" \
  -DCMAKE_SHARED_LINKER_FLAGS="$ldflags" -DCMAKE_MODULE_LINKER_FLAGS="$ldflags" "$@"
