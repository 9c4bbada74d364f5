#!/usr/bin/env bash
# epoll semantics of accelerated connections (epoll_semantics.cpp): the program runs on the plain
# kernel first (its checks describe the kernel's behaviour, so this validates them), then under
# `shunt run`, where it pauses once its 64-connection check has connected so that `shunt stat`
# can show every one of them SMCD on both sides, then finishes its checks.
# Usage: epoll.sh SHUNT EPOLL_SEMANTICS_BINARY [--plain]
bin=$(readlink -f "${2:?usage: $0 SHUNT EPOLL_SEMANTICS_BINARY [--plain]}")
set -- "$1" "${@:3}"
. "$(dirname "$0")/lib.sh"

run_bounded 90 0 "$bin" > "$tmp/kernel.out" 2>&1 || fail "epoll_semantics on the plain kernel"
echo "ok   epoll semantics on the plain kernel: $(tail -1 "$tmp/kernel.out")"
rm "$tmp/kernel.out"

spawn epoll 1 "$bin" --pause-file "$tmp/go"; epid=$last
for _ in $(seq 600); do grep -qs -e '^paused port' -e '^FAIL' "$tmp/epoll.out" && break; sleep 0.05; done
port=$(sed -n 's/^paused port \([0-9]*\)$/\1/p' "$tmp/epoll.out")
[ -n "$port" ] || fail "epoll_semantics under $(mode_word) did not reach its 64 connections"
expect_modes "$port" SMCD 64 64 "epoll_semantics' 64 connections"
touch "$tmp/go"
wait_gone "$epid" 90 || fail "epoll_semantics under $(mode_word) still running after 90 s"
wait "$epid" || fail "epoll_semantics under $(mode_word)"
expect_in "$tmp/epoll.out" "checks passed"
pass "epoll semantics: $(tail -1 "$tmp/epoll.out")"
