#!/usr/bin/env bash
# check.sh — one ctest entry of tests/wasi: runs a test program on the engine and either
# its native build too, whose output must be byte-identical, or compares with a file.
#
#   check.sh --scratch DIR --module M.wasm --tool KOBAKO_WASM [--native EXE | --expect FILE]
#            [--host WASI_HOST] [--env K=V]... [--stdin FILE [--pipe]] [--profile P]
#            [--status N | --trap TEXT] [--tool-option OPT]... -- [ARG...]
#
# ARG may hold @DIR@: the scratch directory the run works in, which DIR/native and
# DIR/wasm are made afresh for. Natively @DIR@ is the host path of DIR/native; on the
# engine DIR/wasm is preopened as /scratch and @DIR@ is /scratch. An ARG of @EMPTY@ is
# the empty string, which ctest cannot pass. --host runs the module through wasi_host,
# with stdin as bytes, instead of `kobako-wasm run`. --pipe feeds stdin through a pipe:
# its first 1000 bytes, a pause, the rest. --trap: the engine must trap (status 129 to
# 255, TEXT on stderr); no native run.
set -u
scratch= module= tool= native= expect= host= stdin=/dev/null pipe= profile=permissive status=0
trap=
envs=() tool_opts=()
while [ $# -gt 0 ]; do
  case $1 in
    --scratch) scratch=$2 ;;
    --module) module=$2 ;;
    --tool) tool=$2 ;;
    --native) native=$2 ;;
    --expect) expect=$2 ;;
    --host) host=$2 ;;
    --env) envs+=("$2") ;;
    --stdin) stdin=$2 ;;
    --pipe) pipe=1; shift; continue ;;
    --profile) profile=$2 ;;
    --status) status=$2 ;;
    --trap) trap=$2 ;;
    --tool-option) tool_opts+=("$2") ;;
    --) shift; break ;;
    *) echo "check.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift 2
done
guest=/scratch
# stdin for a run: the file, or the same bytes arriving through a pipe in two parts.
feed() {
  if [ -n "$pipe" ]; then
    { head -c 1000 "$stdin"; sleep 0.2; tail -c +1001 "$stdin"; } | "$@"
  else
    "$@" < "$stdin"
  fi
}
[ -z "$native" ] || native=$(realpath "$native") # it runs in its scratch directory
rm -rf "$scratch"
mkdir -p "$scratch/native" "$scratch/wasm" || exit 2
native_args=() wasm_args=()
for a in "$@"; do
  [ "$a" = @EMPTY@ ] && a= # ctest drops empty arguments
  native_args+=("${a//@DIR@/$scratch/native}")
  wasm_args+=("${a//@DIR@/$guest}")
done

# ---- the engine ----------------------------------------------------------------------
if [ -n "$host" ]; then
  [ ${#envs[@]} -eq 0 ] || { echo "check.sh: wasi_host takes no environment" >&2; exit 2; }
  "$host" --stdin-file "$stdin" "$module" "${wasm_args[@]}" \
    > "$scratch/wasm.out" 2> "$scratch/wasm.err"
else
  env_opts=()
  for kv in "${envs[@]}"; do env_opts+=(--env "$kv"); done
  feed "$tool" run --profile "$profile" --dir "$scratch/wasm::$guest" "${env_opts[@]}" \
    "${tool_opts[@]}" "$module" "${wasm_args[@]}" > "$scratch/wasm.out" 2> "$scratch/wasm.err"
fi
wasm_rc=$?
fail() {
  echo "FAIL: $*"
  for f in native.err wasm.err; do
    if [ -s "$scratch/$f" ]; then echo "--- $f:"; cat "$scratch/$f"; fi
  done
  exit 1
}

if [ -n "$trap" ]; then
  { [ $wasm_rc -gt 128 ] && [ $wasm_rc -le 255 ]; } ||
    fail "$module should have trapped (status 128+), but exited with $wasm_rc"
  grep -q -- "$trap" "$scratch/wasm.err" || fail "the trap message does not say \"$trap\""
fi
if [ -n "$native" ]; then
  (cd "$scratch/native" && feed env -i "${envs[@]}" "$native" "${native_args[@]}") \
    > "$scratch/native.out" 2> "$scratch/native.err"
  native_rc=$?
  [ $native_rc -eq "$status" ] || fail "the native build exited with $native_rc, not $status"
  [ $wasm_rc -eq "$status" ] || fail "$module exited with $wasm_rc on the engine, not $status"
  if ! cmp -s "$scratch/native.out" "$scratch/wasm.out"; then
    diff -u --label native "$scratch/native.out" --label wasm "$scratch/wasm.out"
    fail "$module printed otherwise on the engine than the native build"
  fi
  echo "$module: the same $(wc -c < "$scratch/wasm.out") bytes as the native build, status $status"
elif [ -n "$expect" ]; then
  [ -n "$trap" ] || [ $wasm_rc -eq "$status" ] || fail "$module exited with $wasm_rc, not $status"
  if ! cmp -s "$expect" "$scratch/wasm.out"; then
    diff -u --label expected "$expect" --label wasm "$scratch/wasm.out"
    fail "$module printed otherwise than $expect"
  fi
  echo "$module: printed what $expect says, status $wasm_rc"
fi
