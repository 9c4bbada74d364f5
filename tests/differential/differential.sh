#!/usr/bin/env bash
# Differential test of `shunt run` against the kernel (differential.cpp): the same seeded call
# sequences run once on plain TCP and once under `shunt run`; every sequence's trace hash must be
# the same. Under `shunt run` every connection must have been SMCD on both ends (the preload's
# decision log says so), else the comparison would prove nothing.
# On a mismatch it prints, for the first few seeds, the first lines where the traces differ.
#
# Usage: differential.sh SHUNT DIFFERENTIAL_BIN [--first S] [--count N] [--features LIST]
#                        [--ops N] [--known FILE]
#   --known FILE: seeds listed there (first word of each line, with the same --features) are
#   known mismatches: run and compared like the others, reported as known instead of failing.
#   The summary always says how many there were.
set -euo pipefail
shunt=$(readlink -f "${1:?usage: $0 SHUNT DIFFERENTIAL_BIN [options]}")
bin=$(readlink -f "${2:?usage: $0 SHUNT DIFFERENTIAL_BIN [options]}")
shift 2
first=1 count=10000 features=default ops=40 known=
while [ $# -gt 0 ]; do
  case $1 in
    --first) first=$2; shift 2 ;;
    --count) count=$2; shift 2 ;;
    --features) features=$2; shift 2 ;;
    --ops) ops=$2; shift 2 ;;
    --known) known=$2; shift 2 ;;
    *) echo "unknown option $1"; exit 2 ;;
  esac
done

tmp=$(mktemp -d /tmp/shunt-differential.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
export SHUNT_RUNDIR=$tmp/run
args=(--first "$first" --count "$count" --features "$features" --ops "$ops")
# Batches in parallel (one process each) so CI's cores are used; the seeds split evenly.
batches=${DIFFERENTIAL_BATCHES:-$(nproc)}
per=$(( (count + batches - 1) / batches ))

run_all() {  # MODE(kernel|shunt) -> $tmp/MODE.out
  local mode=$1 b f n pids=()
  for ((b = 0; b < batches; b++)); do
    f=$((first + b * per)); n=$per
    [ $((f + n)) -gt $((first + count)) ] && n=$((first + count - f))
    [ "$n" -le 0 ] && continue
    if [ "$mode" = kernel ]; then
      timeout -k 2 300 "$bin" --first "$f" --count "$n" --features "$features" --ops "$ops" >"$tmp/$mode.$b" 2>&1 &
    else
      timeout -k 2 300 "$shunt" run --debug-file "$tmp/decisions.$b" -- \
        "$bin" --first "$f" --count "$n" --features "$features" --ops "$ops" >"$tmp/$mode.$b" 2>&1 &
    fi
    pids+=($!)
  done
  local rc=0
  for b in "${pids[@]}"; do wait "$b" || rc=1; done
  cat "$tmp/$mode".[0-9]* > "$tmp/$mode.out"
  return $rc
}

t0=$(date +%s%N)
run_all kernel || { grep -h HANG "$tmp"/kernel.out || tail -5 "$tmp/kernel.out"; echo "FAIL: the plain-kernel run failed"; exit 1; }
t1=$(date +%s%N)
shunt_ok=1
run_all shunt || shunt_ok=0
t2=$(date +%s%N)

# Every connection SMCD on both ends under shunt run.
smcd_c=$(cat "$tmp"/decisions.* 2>/dev/null | grep -c 'connect fd [0-9]* to .*: SMCD' || true)
smcd_s=$(cat "$tmp"/decisions.* 2>/dev/null | grep -c 'accept fd [0-9]*: SMCD' || true)
tcp=$(cat "$tmp"/decisions.* 2>/dev/null | grep -c ': TCP' || true)

declare -A knownset=()
if [ -n "$known" ]; then
  while read -r s f _; do
    case $s in ''|\#*) ;; *) [ "$f" = "$features" ] && knownset[$s]=1 ;; esac
  done < "$known"
fi

join -j1 <(awk '$1=="seed" && $5=="hash" {print $2, $6, ($7=="broken"?"broken":"-")}' "$tmp/kernel.out" | sort) \
         <(awk '$1=="seed" && $5=="hash" {print $2, $6, ($7=="broken"?"broken":"-")}' "$tmp/shunt.out" | sort) > "$tmp/joined"
kernel_n=$(awk '$1=="seed" && $5=="hash"' "$tmp/kernel.out" | wc -l)
shunt_n=$(awk '$1=="seed" && $5=="hash"' "$tmp/shunt.out" | wc -l)
broken_kernel=$(awk '$1=="seed" && $7=="broken"' "$tmp/kernel.out" | wc -l)
mism=() knownhit=()
while read -r s hk bk hs bs; do
  [ "$hk" = "$hs" ] && [ "${bk:-}" = "${bs:-}" ] && continue
  if [ -n "${knownset[$s]:-}" ]; then knownhit+=("$s"); else mism+=("$s"); fi
done < "$tmp/joined"
# A seed the shunt run never finished (a hang stops that batch) counts as a mismatch.
hangs=$(grep -h 'HANG' "$tmp"/shunt.[0-9]* || true)

show() {  # SEED: first differing lines of the two traces
  local s=$1
  "$bin" --first "$s" --count 1 --features "$features" --ops "$ops" --trace > "$tmp/k.$s" 2>&1 || true
  timeout -k 2 20 "$shunt" run -- "$bin" --first "$s" --count 1 --features "$features" --ops "$ops" --trace \
    > "$tmp/s.$s" 2>&1 || true
  echo "--- seed $s (features $features): kernel < > shunt run"
  diff "$tmp/k.$s" "$tmp/s.$s" | head -8 || true
}

fail=0
[ "$broken_kernel" -eq 0 ] || { echo "FAIL: $broken_kernel sequences could not settle on the plain kernel (harness)"; fail=1; }
[ "$kernel_n" -eq "$count" ] || { echo "FAIL: the kernel run finished $kernel_n of $count sequences"; fail=1; }
if [ "$shunt_ok" = 0 ] || [ "$shunt_n" -ne "$count" ]; then
  echo "FAIL: the shunt run finished $shunt_n of $count sequences"
  [ -n "$hangs" ] && echo "$hangs"
  fail=1
fi
if [ "$smcd_c" -ne "$shunt_n" ] || [ "$smcd_s" -ne "$shunt_n" ] || [ "$tcp" -ne 0 ]; then
  echo "FAIL: under shunt run $smcd_c client / $smcd_s server connections were SMCD of $shunt_n, $tcp fell back to TCP"
  fail=1
fi
if [ ${#mism[@]} -gt 0 ]; then
  echo "FAIL: ${#mism[@]} of $count sequences differ from the kernel: ${mism[*]:0:20}"
  for s in "${mism[@]:0:5}"; do show "$s"; done
  fail=1
fi
[ ${#knownhit[@]} -gt 0 ] && echo "known mismatches (listed in $(basename "$known"), not counted as passing): ${knownhit[*]}"
matched=$((shunt_n - ${#mism[@]} - ${#knownhit[@]}))
echo "differential: $matched of $count sequences (seeds $first..$((first + count - 1)), features $features) matched the kernel," \
     "${#mism[@]} mismatched, ${#knownhit[@]} known mismatches; all $shunt_n connections SMCD;" \
     "kernel $(( (t1 - t0) / 1000000 )) ms, shunt run $(( (t2 - t1) / 1000000 )) ms"
exit $fail
