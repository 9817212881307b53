#!/usr/bin/env bash
# cap.sh — the ctest entry of the output caps: spew's stdout and stderr through capture
# buffers of several caps (above, at, just under and far under what it writes, and 0)
# must keep exactly the first cap bytes of what the native build prints, flag the cut
# only when there was one, and never let the guest see a write fall short.
#
#   cap.sh WASI_HOST spew.wasm SPEW_NATIVE SCRATCH
set -u
host=$1 module=$2 native=$3 scratch=$4
out=100000 err=5000 # what spew writes to each
fail() { echo "FAIL: $*"; exit 1; }

rm -rf "$scratch" && mkdir -p "$scratch" || exit 2
"$native" $out $err > "$scratch/native.out" 2> "$scratch/native.err" ||
  fail "the native build of spew failed"
cases=0
for caps in "$((out + 1)) $((err + 1))" "$out $err" "$((out - 1)) $((err - 1))" \
  "1000 64" "0 0" "$out 0" "0 $err"; do
  read -r cap_out cap_err <<< "$caps"
  "$host" --cap-stdout "$cap_out" --cap-stderr "$cap_err" --report "$scratch/report" \
    "$module" $out $err > "$scratch/wasm.out" 2> "$scratch/wasm.err"
  rc=$?
  [ $rc -eq 0 ] || fail "caps $caps: exit status $rc (1: a write fell short)"
  for stream in out err; do
    if [ $stream = out ]; then cap=$cap_out total=$out name=stdout; else cap=$cap_err total=$err name=stderr; fi
    keep=$((cap < total ? cap : total))
    flag=$([ "$cap" -lt "$total" ] && echo truncated || echo whole)
    head -c "$keep" "$scratch/native.$stream" | cmp -s - "$scratch/wasm.$stream" ||
      fail "caps $caps: $name is not the first $keep bytes of the native output"
    grep -qx "$name $keep $flag" "$scratch/report" ||
      fail "caps $caps: expected \"$name $keep $flag\", the report says: $(cat "$scratch/report")"
  done
  cases=$((cases + 1))
done
echo "$cases cap settings: each kept exactly its cap, flagged only what was cut"
