#!/usr/bin/env bash
# cli.sh — one ctest entry: the mruby CLI runs SCRIPT (from DIR, as ./SCRIPT) natively and
# on the engine, with DIR preopened as the guest's "."; fails unless both print the same
# bytes to stdout and to stderr and exit with STATUS, and the engine run ends without a trap.
#
#   cli.sh TOOL NATIVE_MRUBY MRUBY.wasm DIR SCRIPT STATUS OUTDIR [ARG...]
set -u
tool=$1 native=$2 module=$3 dir=$4 script=$5 status=$6 out=$7
shift 7
mkdir -p "$out"

(cd "$dir" && "$native" "$script" "$@") >"$out/native.out" 2>"$out/native.err"
native_rc=$?
"$tool" run --timeout 300 --dir "$dir::." "$module" "$script" "$@" >"$out/wasm.out" 2>"$out/wasm.err"
wasm_rc=$?

fail=0
if ((wasm_rc >= 128)); then
  echo "FAIL: the engine trapped (exit $wasm_rc):"
  tail -n 5 "$out/wasm.err"
  fail=1
fi
for stream in out err; do
  if ! diff "$out/native.$stream" "$out/wasm.$stream" >"$out/$stream.diff"; then
    echo "FAIL: std$stream differs (< native, > engine):"
    head -n 40 "$out/$stream.diff"
    fail=1
  fi
done
if ((native_rc != status || wasm_rc != status)); then
  echo "FAIL: exit $native_rc natively and $wasm_rc on the engine, not $status"
  fail=1
fi
((fail)) || echo "$script: the same output natively and on the engine, and exit $status"
exit $fail
