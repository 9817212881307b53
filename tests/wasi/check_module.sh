#!/usr/bin/env bash
# check_module.sh — one ctest entry per module: its target_features section, read from
# llvm-objdump's dump, declares nothing beyond what the engine runs (WebAssembly 2.0
# without SIMD), so no test passes on a module the flags failed to pin.
#
#   check_module.sh LLVM_OBJDUMP MODULE.wasm
set -u
objdump=$1 module=$2
allowed="bulk-memory bulk-memory-opt call-indirect-overlong multivalue mutable-globals
nontrapping-fptoint reference-types sign-ext"

dump=$("$objdump" -s -j target_features "$module") || exit 1
# The dump's lines are " ADDR HHHHHHHH HHHHHHHH HHHHHHHH HHHHHHHH  ascii": the 35
# columns after the address hold the bytes. The section: a count, then per feature a
# prefix byte ('+' used, '-' disallowed) and a name, lengths as unsigned LEB128.
features=$(awk '
  function leb(   v, s, b) {
    v = 0; s = 1
    do { b = bytes[pos++]; v += (b % 128) * s; s *= 128 } while (b >= 128)
    return v
  }
  function hex(c) { return index("0123456789abcdef", c) - 1 }
  /^ [0-9a-f]+ / {
    sub(/^ [0-9a-f]+ /, ""); h = substr($0, 1, 35); gsub(/ /, "", h)
    for (i = 1; i < length(h); i += 2) bytes[n++] = hex(substr(h, i, 1)) * 16 + hex(substr(h, i + 1, 1))
  }
  END {
    if (!n) exit 1
    pos = 0
    count = leb()
    for (k = 0; k < count; k++) {
      prefix = sprintf("%c", bytes[pos++]); len = leb(); name = ""
      for (j = 0; j < len; j++) name = name sprintf("%c", bytes[pos++])
      if (prefix != "-") print name
    }
  }' <<< "$dump") || { echo "FAIL: $module has no target_features section"; exit 1; }
for f in $features; do
  grep -qxF "$f" <<< "${allowed// /$'\n'}" ||
    { echo "FAIL: $module uses $f, which the engine does not run"; exit 1; }
done
echo "$module: features" $features
