#!/usr/bin/env bash
# Builds everything and runs the main job: scripts/main.rb, a Ruby script
# using the gem against the real sandbox; then the engine's own: the
# WebAssembly 2.0 conformance run, the 3.0 exception-handling and tail-call
# scripts, and an example module invoked under fuel.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j2

echo "== scripts/main.rb: the gem =="
ruby scripts/main.rb

scripts=()
for f in ../shared/wasm-testsuite/wasm-2.0/*.wast; do
  case $f in */simd_*) ;; *) scripts+=("$f") ;; esac
done
echo "== WebAssembly 2.0 conformance (non-SIMD) =="
build/bin/kobako-wasm wast "${scripts[@]}"
echo "== WebAssembly 3.0: exception handling and tail calls (spectests/LEDGER.md) =="
w3=../shared/wasm-testsuite/wasm-3.0
build/bin/kobako-wasm wast "$w3"/{tag,throw,throw_ref,try_table,return_call,return_call_indirect}.wast \
  "$w3"/legacy/{throw,rethrow,try_catch,try_delegate}.wast
echo "== examples/fib.wat: fib(30) =="
build/bin/kobako-wasm invoke --fuel 100000000 examples/fib.wat fib 30
