#!/usr/bin/env bash
# Every manual page the build made renders with `man -l` without a groff warning, there is one
# per command `shunt completion commands` lists, and the bash completion completes
# subcommands, nested subcommands and options.
# Usage: man_completion.sh SHUNT BUILD_DIR
shunt=${1:?shunt}; build=${2:?build dir}
. "$(dirname "$0")/lib.sh"
require man
pages=("$build"/man/man1/*.1.gz)
[ -f "${pages[0]}" ] || fail "no pages in $build/man/man1"
for p in "${pages[@]}"; do
  # --warnings makes groff report every problem it finds; any output on stderr fails.
  MANWIDTH=80 LC_ALL=C.UTF-8 man --warnings -l "$p" > "$tmp/page.out" 2> "$tmp/warn.out" || fail "man -l $p"
  [ ! -s "$tmp/warn.out" ] || fail "man -l $(basename "$p") warns: $(cat "$tmp/warn.out")"
  grep -q "SYNOPSIS\|Usage" "$tmp/page.out" || fail "$(basename "$p") has no synopsis"
done
want=$(( $("$shunt" completion commands | wc -l) + 1 ))
[ "${#pages[@]}" = "$want" ] || fail "${#pages[@]} pages for $want commands"
run_page=$(MANWIDTH=80 man -l "$build/man/man1/shunt-run.1.gz" 2>/dev/null)
grep -q -- "--preload" <<<"$run_page" || fail "shunt-run(1) lacks --preload"
pass "${#pages[@]} manual pages render without warnings"

comp=$build/man/shunt.bash
# complete WORDS...: what the completion offers for the last word of "shunt WORDS...".
complete_words() {
  bash -c '. "$1"; shift; COMP_WORDS=(shunt "$@"); COMP_CWORD=$#; _shunt; printf "%s\n" "${COMPREPLY[@]}"' _ "$comp" "$@"
}
top=$(complete_words "" | sort | tr '\n' ' ')
for c in run stat stats exporter rds rss bench cat clc; do
  [[ " $top " == *" $c "* ]] || fail "completion of 'shunt ' lacks $c: $top"
done
[ "$(complete_words st | sort | tr '\n' ' ')" = "stat stats " ] || fail "completion of 'shunt st': $(complete_words st)"
[ "$(complete_words rds "" | sort | tr '\n' ' ')" = "info ping stress " ] || fail "completion of 'shunt rds ': $(complete_words rds "")"
# offers WORD WORDS...: the completion of "shunt WORDS..." includes WORD (captured first: grep -q
# leaving a long list early would fail the pipe under pipefail).
offers() { local want=$1 got; shift; got=$(complete_words "$@"); grep -qx -- "$want" <<<"$got"; }
offers --preload run --pre || fail "completion of 'shunt run --pre'"
offers --prometheus stats --pro || fail "completion of 'shunt stats --pro'"
offers bash run -- "" || fail "completion after 'shunt run --' offers no commands"
pass "bash completion: subcommands ($top), nested, options, commands after --"
