#!/usr/bin/env bash
# Installs, once, the Debian packages the build, the tests and the benchmarks
# need, and the deb-src entry the guest build fetches mruby's source package
# through. Safe to run again: it adds and installs only what is missing.
set -euo pipefail

# dpkg-dev: apt-get source unpacks with dpkg-source. mruby's rake build needs
# ruby and rake, and neither bison nor gperf: the source package ships the
# parser (y.tab.c) and the keyword table (lex.def) already generated.
# libclang-rt-14-dev: clang's libFuzzer (-fsanitize=fuzzer) for tests/fuzz/;
# wabt: wasm-interp, one of the engines tests/fuzz/diff_engines.rb compares.
packages=(build-essential cmake clang valgrind dpkg-dev
          clang-22 lld-22 llvm-22 libclang-rt-22-dev-wasm32 wasi-libc
          ruby ruby-dev rake ruby-minitest nodejs libclang-rt-14-dev wabt)

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
update=0

# guest/mruby/ runs `apt-get source mruby`, which needs a deb-src entry for
# bookworm main and its downloaded Sources index. The entry written is
# debian.sources' own with Types: deb-src; an existing one anywhere is kept.
# indextargets lists a target whose Release file is not yet downloaded only
# with --no-release-info, and then under a file name it may never have.
deb_src() { apt-get indextargets "$@" 'Target-Of: deb-src' 'Release: bookworm' \
              'Component: main' 'Identifier: Sources'; }
if [ -z "$(deb_src --no-release-info --format '$(RELEASE)')" ]; then
  echo "setup: adding the deb-src entry /etc/apt/sources.list.d/kobako-deb-src.sources"
  printf '%s\n' 'Types: deb-src' 'URIs: http://deb.debian.org/debian' \
         'Suites: bookworm bookworm-updates' 'Components: main' \
         'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' |
    $sudo tee /etc/apt/sources.list.d/kobako-deb-src.sources >/dev/null
  update=1
else
  index=$(deb_src --format '$(FILENAME)')
  [ -n "$index" ] && [ -e "$index" ] || update=1
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  update=1
fi
if ((update)); then
  echo "setup: apt-get update"
  $sudo apt-get update -qq
fi
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
