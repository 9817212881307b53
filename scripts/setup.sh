#!/usr/bin/env bash
# Installs, once, the Debian packages the build, the tests and the benchmarks
# need. Safe to run again: it installs only what is missing.
set -euo pipefail

packages=(build-essential cmake clang valgrind
          clang-22 lld-22 llvm-22 libclang-rt-22-dev-wasm32 wasi-libc
          ruby ruby-dev rake ruby-minitest nodejs)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
