#!/usr/bin/env bash
# `cmake --install` into a scratch prefix: the tree holds what docs/packaging.md lists and
# nothing internal; `shunt run` finds the installed preload with no environment variable; a
# project outside the source tree builds against the install with find_package and with
# pkg-config, and its program makes an SMCD connection.
# Usage: install_tree.sh BUILD_DIR SOURCE_DIR
build=${1:?build dir}; src=${2:?source dir}
. "$(dirname "$0")/lib.sh"
require cmake pkg-config cc readelf
prefix=$tmp/prefix
cmake --install "$build" --prefix "$prefix" > "$tmp/install.out" 2>&1 || fail "cmake --install"
libdir=$(sed -n 's/^libdir=\${prefix}\///p' "$prefix"/lib*/pkgconfig/shunt.pc 2>/dev/null | head -1)
[ -n "$libdir" ] || fail "no shunt.pc with a libdir under $prefix"

for f in bin/shunt "$libdir/shunt/libshunt-preload.so" "$libdir/libshunt.a" \
         include/shunt/shunt.h include/shunt/lo.hpp include/shunt/rss.hpp include/shunt/rds.hpp \
         include/shunt/decline.hpp include/shunt/version.hpp \
         "$libdir/cmake/shunt/shuntConfig.cmake" "$libdir/cmake/shunt/shuntConfigVersion.cmake" \
         "$libdir/cmake/shunt/shuntTargets.cmake" "$libdir/pkgconfig/shunt.pc" \
         share/man/man1/shunt.1.gz share/man/man1/shunt-run.1.gz share/man/man1/shunt-stats.1.gz \
         share/man/man1/shunt-exporter.1.gz share/man/man1/shunt-rds-info.1.gz \
         share/bash-completion/completions/shunt lib/tmpfiles.d/shunt.conf \
         share/doc/shunt/copyright share/doc/shunt/changelog.gz; do
  [ -f "$prefix/$f" ] || fail "missing $f"
done
pass "install tree has the CLI, preload, headers, library, CMake package, pkg-config file, man pages, completion, tmpfiles rule"

# Only the public headers: nothing from src/ (internal) is installed.
extra=$(cd "$prefix/include" && find . -type f ! -path './shunt/*')
[ -z "$extra" ] || fail "unexpected headers installed: $extra"
[ "$(find "$prefix/include/shunt" -type f | wc -l)" = 6 ] || fail "include/shunt holds $(ls "$prefix/include/shunt")"
# No build-tree run path in installed binaries; the preload needs libc and libstdc++ alone.
for f in bin/shunt "$libdir/shunt/libshunt-preload.so"; do
  dyn=$(readelf -d "$prefix/$f")
  ! grep -qE 'RPATH|RUNPATH' <<<"$dyn" || fail "$f carries a run path"
done
needed=$(readelf -d "$prefix/$libdir/shunt/libshunt-preload.so" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | sort | tr '\n' ' ')
for lib in $needed; do
  case $lib in libc.so.*|libstdc++.so.*|libm.so.*|libgcc_s.so.*|ld-linux*) ;; *) fail "preload needs $lib" ;; esac
done
pass "no run paths; the preload needs only: $needed"

# `shunt run` from the installed tree, no SHUNT_PRELOAD_LIB: LD_PRELOAD names the installed preload.
got=$(env -u SHUNT_PRELOAD_LIB "$prefix/bin/shunt" run -- sh -c 'echo "$LD_PRELOAD"')
[ "$got" = "$(readlink -f "$prefix/$libdir/shunt/libshunt-preload.so")" ] || fail "shunt run preloads '$got'"
pass "installed shunt run finds $libdir/shunt/libshunt-preload.so by itself"

export SHUNT_RUNDIR=$tmp/run
cp -r "$src/tests/packaging/consumer" "$tmp/consumer"
cmake -S "$tmp/consumer" -B "$tmp/consumer/build" -DCMAKE_PREFIX_PATH="$prefix" > "$tmp/consumer-cmake.out" 2>&1 \
  || fail "find_package(shunt) consumer: configure"
cmake --build "$tmp/consumer/build" > "$tmp/consumer-build.out" 2>&1 || fail "find_package(shunt) consumer: build"
timeout 20 "$tmp/consumer/build/consumer" > "$tmp/consumer-run.out" 2>&1 || fail "find_package(shunt) consumer: run"
grep -q "SMCD .* ping-pong ok" "$tmp/consumer-run.out" || fail "find_package consumer: $(cat "$tmp/consumer-run.out")"
pass "find_package(shunt) consumer: $(cat "$tmp/consumer-run.out")"

export PKG_CONFIG_PATH=$prefix/$libdir/pkgconfig
[ "$(pkg-config --modversion shunt)" = "$(sed -n 's/.*kVersion = "\(.*\)".*/\1/p' "$prefix/include/shunt/version.hpp")" ] \
  || fail "pkg-config --modversion shunt"
# shellcheck disable=SC2046
cc -o "$tmp/c-consumer" "$tmp/consumer/consumer.c" $(pkg-config --cflags --libs shunt) > "$tmp/pc-build.out" 2>&1 \
  || fail "pkg-config consumer: build"
timeout 20 "$tmp/c-consumer" > "$tmp/pc-run.out" 2>&1 || fail "pkg-config consumer: run"
grep -q "^SMCD .* ping-pong ok" "$tmp/pc-run.out" || fail "pkg-config consumer: $(cat "$tmp/pc-run.out")"
pass "pkg-config shunt consumer (C API): $(cat "$tmp/pc-run.out")"
