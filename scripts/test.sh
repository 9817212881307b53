#!/usr/bin/env bash
# Builds everything and runs every test: a gcc release build with -Werror, a
# clang build with -Werror, and a gcc build under AddressSanitizer+UBSan; then
# fuzzes for a minute with the clang build's libFuzzer targets.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

# The three builds share one mruby build (guest/README.md, "The cache"): it depends on
# the guest toolchain only, not on the compiler or the sanitizers of the build.
run() { # build-dir, then cmake options
  local dir=$1; shift
  cmake -S . -B "$dir" -DKOBAKO_WERROR=ON -DKOBAKO_GUEST_CACHE="$PWD/build-mruby" "$@" >/dev/null
  cmake --build "$dir" -j2
  (cd "$dir" && ctest -j2 --output-on-failure)
}

echo "== gcc, release =="
run build -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=gcc
echo "== clang, release, switch dispatch =="
run build-clang -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=clang -DKOBAKO_THREADED=OFF
echo "== gcc, ASan + UBSan =="
run build-asan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=gcc -DKOBAKO_SANITIZE=ON
echo "== fuzzing: every libFuzzer target of the clang build, a minute in all =="
bash scripts/fuzz.sh --ci --build build-clang 60
