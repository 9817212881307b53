#!/usr/bin/env bash
# mrbtest.sh — one ctest entry: mruby's test suite (mrbtest -v) natively and on the engine.
# Fails unless the engine run ends without a trap and both report the same counts (Total,
# OK, KO, Crash, Warning, Skip) and the same result for every test, in the same order
# (by position: a few names say the word size, "InlineStructTest length [64 bit]").
#
#   mrbtest.sh TOOL NATIVE_MRBTEST MRBTEST.wasm OUTDIR TIMEOUT_SECONDS
set -u
tool=$1 native=$2 module=$3 out=$4 timeout=$5
mkdir -p "$out"

"$native" -v >"$out/native.txt" 2>"$out/native.err"
native_rc=$?
start=$EPOCHREALTIME
"$tool" run --timeout "$timeout" "$module" -v >"$out/wasm.txt" 2>"$out/wasm.err"
wasm_rc=$?
seconds=$(awk "BEGIN { printf \"%.2f\", $EPOCHREALTIME - $start }")

# The report's counts; and the per-test lines, "NAME : RESULT" in verbose mode, which run
# from after the banner to the blank line that opens the report.
counts() { grep -E '^ *(Total|OK|KO|Crash|Warning|Skip): [0-9]+$' "$1" | tr -s ' '; }
results() { awk 'NR > 4 && /^$/ { exit } NR > 4' "$1"; }
outcomes() { results "$1" | awk -F ' : ' '{ print $NF }'; }

fail=0
if ((wasm_rc >= 128)); then
  echo "FAIL: the engine trapped (exit $wasm_rc):"
  tail -n 5 "$out/wasm.txt" "$out/wasm.err"
  fail=1
fi
if [ "$(counts "$out/native.txt" | wc -l)" -ne 6 ]; then
  echo "FAIL: the native run did not report (exit $native_rc):"
  tail -n 5 "$out/native.txt" "$out/native.err"
  fail=1
fi
if ! diff <(counts "$out/native.txt") <(counts "$out/wasm.txt") >"$out/counts.diff"; then
  echo "FAIL: the counts differ (< native, > engine):"
  cat "$out/counts.diff"
  fail=1
fi
diff <(results "$out/native.txt") <(results "$out/wasm.txt") >"$out/results.diff"
if ! diff -q <(outcomes "$out/native.txt") <(outcomes "$out/wasm.txt") >/dev/null; then
  echo "FAIL: these tests end otherwise (< native, > engine):"
  head -n 40 "$out/results.diff"
  fail=1
fi
if ((native_rc != wasm_rc)); then
  echo "FAIL: mrbtest exits $native_rc natively and $wasm_rc on the engine"
  fail=1
fi
# What failed on both, so a KO shared by both builds still shows in the log.
grep -E '^(Fail|Warn|[A-Za-z:]+Error|[A-Za-z:]+Exception): ' "$out/native.txt" | head -n 20
echo "native:" $(counts "$out/native.txt")
echo "engine:" $(counts "$out/wasm.txt") "in ${seconds}s"
exit $fail
