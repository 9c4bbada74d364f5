#!/usr/bin/env bash
# Makes the manual pages (man1/shunt.1.gz, man1/shunt-<command>.1.gz for every command and
# subcommand) and the bash completion file (shunt.bash) from a built shunt binary.
# Usage: gen-man.sh SHUNT OUTDIR VERSION   (HELP2MAN may name the help2man to use)
set -euo pipefail
shunt=$1 out=$2 version=$3
help2man=${HELP2MAN:-help2man}
rm -rf "$out"
mkdir -p "$out/man1"

mapfile -t commands < <("$shunt" completion commands)
see_also=".BR shunt (1)"
for c in "${commands[@]}"; do see_also+=$',\n'".BR shunt-${c// /-} (1)"; done

# The first line of CLI11's help is the command's description.
page() {
  local cmd=$1 name=$2 desc include
  desc=$("$shunt" $cmd --help)
  desc=${desc%%$'\n'*}
  desc=${desc#shunt: }
  include=$(mktemp)
  printf '[SEE ALSO]\n%s\n' "$see_also" >"$include"
  # LC_ALL=C: help2man's own text in English, independent of the builder's locale.
  LC_ALL=C "$help2man" --no-info --no-discard-stderr --section=1 --manual="shunt manual" --source="shunt $version" \
    --version-string="$name $version" --name="$desc" --help-option="$cmd --help" --include="$include" \
    "$shunt" >"$out/man1/$name.1"
  rm -f "$include"
  gzip -9n -f "$out/man1/$name.1"
}

page "" shunt
for c in "${commands[@]}"; do page "$c" "shunt-${c// /-}"; done
"$shunt" completion bash >"$out/shunt.bash"
touch "$out/stamp"
