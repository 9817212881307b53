#!/bin/sh
# Installs what bench/ needs beyond the engine's own build, from Debian's
# packages: clang-22 and wasm-ld-22 for the kernels, ruby for run.rb, node.
set -eu
need=""
command -v clang-22 >/dev/null 2>&1 || need="$need clang-22"
command -v wasm-ld-22 >/dev/null 2>&1 || need="$need lld-22"
command -v ruby >/dev/null 2>&1 || need="$need ruby"
command -v node >/dev/null 2>&1 || need="$need nodejs"
command -v cmake >/dev/null 2>&1 || need="$need cmake"
if [ -z "$need" ]; then
  echo "bench/setup.sh: everything is installed"
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
$sudo apt-get update
# shellcheck disable=SC2086 # the package list is meant to split into words
$sudo apt-get install -y --no-install-recommends $need
