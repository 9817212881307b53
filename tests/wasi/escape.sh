#!/usr/bin/env bash
# escape.sh — the ctest entries of the escape attempts: lays out a sandbox, an outside
# directory and a read-only one, runs escape.wasm on the engine, compares what it
# printed with the expected file, and checks that nothing outside the sandbox changed
# and that no symlink the guest made leads out of it.
#
#   escape.sh TOOL escape.wasm SCRATCH EXPECTED   (the attempts)
#   escape.sh TOOL escape.wasm SCRATCH --race     (a symlink swapped during opens)
set -u
tool=$1 module=$2 scratch=$3 expected=$4
fail() {
  echo "FAIL: $*"
  [ -s "$scratch/err" ] && { echo "--- stderr:"; cat "$scratch/err"; }
  exit 1
}

rm -rf "$scratch"
mkdir -p "$scratch"/tree/{sandbox/sub,sandbox/decoy,outside,ro/rodir/empty} || exit 2
scratch=$(cd "$scratch" && pwd -P) # the absolute links below need the real path
tree=$scratch/tree
printf inside > "$tree/sandbox/inside.txt"
printf decoy > "$tree/sandbox/decoy/secret.txt"
printf SECRET > "$tree/outside/secret.txt"
printf 'read only' > "$tree/ro/existing.txt"
(
  cd "$tree/sandbox" &&
    ln -s "$tree/outside/secret.txt" abs_link &&
    ln -s "$tree/outside" abs_dir &&
    ln -s ../outside/secret.txt rel_link &&
    ln -s ../outside rel_dir &&
    ln -s chain2 chain1 && ln -s sub/chain3 chain2 && ln -s ../../outside/secret.txt sub/chain3 &&
    ln -s sub/../inside.txt inner_ok && ln -s ../inside.txt sub/up_ok &&
    ln -s loop_b loop_a && ln -s loop_a loop_b &&
    ln -s ../outside/made.txt dangling_out &&
    ln -s decoy race
) || exit 2
# Times set in the past, so that any change to them, or to a directory's
# listing, shows.
touch -h -d '2001-02-03 04:05:06' "$tree" "$tree"/outside "$tree"/outside/* "$tree"/ro \
  "$tree"/ro/* "$tree"/ro/rodir/*

# Everything about the tree but the sandbox: names, types, sizes, times, link targets,
# contents.
snapshot() {
  (cd "$tree" && find . -path ./sandbox -prune -o -printf '%p %y %s %T@ %l\n' | sort &&
    find outside ro -type f -exec md5sum {} + | sort)
}
before=$(snapshot)
host_links=$(cd "$tree/sandbox" && find . -type l | sort)

if [ "$expected" = --race ]; then
  # Swap the symlink by rename, atomically, as fast as the shell can, until
  # told to stop: killing the loop instead could leave its last ln running,
  # to make race.tmp after the cleanup below.
  (
    cd "$tree/sandbox" || exit
    while [ ! -e "$scratch/stop" ]; do
      ln -sfn ../outside race.tmp && mv -T race.tmp race
      ln -sfn decoy race.tmp && mv -T race.tmp race
    done
  ) &
  racer=$!
  "$tool" run --dir "$tree/sandbox::/sandbox" "$module" race > "$scratch/out" 2> "$scratch/err"
  rc=$?
  touch "$scratch/stop"
  wait "$racer"
  rm -f "$tree/sandbox/race.tmp" # the racer's own link, if it stopped half-way
  [ $rc -eq 0 ] || fail "escape race exited with $rc"
  grep -q 'the outside file read 0 times' "$scratch/out" || fail "$(cat "$scratch/out")"
else
  "$tool" run --dir "$tree/sandbox::/sandbox" --dir "$tree/ro::/ro:ro" "$module" \
    > "$scratch/out" 2> "$scratch/err"
  rc=$?
  [ $rc -eq 0 ] || { cat "$scratch/out"; fail "escape exited with $rc"; }
  if ! cmp -s "$expected" "$scratch/out"; then
    diff -u --label expected "$expected" --label wasm "$scratch/out"
    fail "escape printed otherwise than $expected"
  fi
fi
grep -q SECRET "$scratch/out" "$scratch/err" && fail "the outside file's contents were read"
after=$(snapshot)
if [ "$before" != "$after" ]; then
  diff -u --label before <(echo "$before") --label after <(echo "$after")
  fail "something outside the sandbox changed"
fi
# Each symlink the guest made, followed as the host's kernel would follow it from
# where it lies, stays in the sandbox.
made=0
while IFS= read -r link; do
  grep -qxF -- "$link" <<< "$host_links" && continue
  made=$((made + 1))
  target=$(readlink "$tree/sandbox/$link")
  case $target in /*) fail "the guest made $link -> $target, an absolute link" ;; esac
  resolved=$(realpath -m -- "$(dirname "$tree/sandbox/$link")/$target")
  case $resolved/ in
    "$tree/sandbox/"*) ;;
    *) fail "the guest made $link -> $target, which leads out to $resolved" ;;
  esac
done < <(cd "$tree/sandbox" && find . -type l | sort)
tail -n 1 "$scratch/out"
echo "nothing outside the sandbox changed; the $made symlinks the guest made stay inside"
