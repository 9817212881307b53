#!/usr/bin/env bash
# Fuzzes for a while: every libFuzzer target of tests/fuzz/ for SECONDS each
# (default 60) on top of its seed corpus with its dictionary, then the
# differential run against other engines and the Ruby surface fuzzer for as
# long each. Prints a line of figures per target and exits non-zero on any
# finding (a crash, a leak, a timeout past 30 s, memory past 3 GiB), whose
# input is kept in BUILD/fuzz-findings/. Inputs slower than 10 s are kept
# there too (slow-unit-*) and counted, but are not findings.
#
#   bash scripts/fuzz.sh [--build DIR] [-j N] [--ci] [SECONDS]
#
# --build DIR  a clang build tree (default build-fuzz), configured and built
#              here as far as it needs
# -j N         run N targets at once (default 1)
# --ci         what scripts/test.sh runs: SECONDS in all (default 60), shared
#              by the libFuzzer targets; the other two run in ctest already
set -euo pipefail
cd "$(dirname "$0")/.."

build=build-fuzz
jobs=1
ci=0
seconds=""
while (($#)); do
  case $1 in
    --build) build=$2; shift 2 ;;
    -j) jobs=$2; shift 2 ;;
    --ci) ci=1; shift ;;
    -h|--help) sed -n '2,/^set /{/^#/p}' "$0"; exit 0 ;;
    *) seconds=$1; shift ;;
  esac
done
seconds=${seconds:-60}

if [ ! -f "$build/CMakeCache.txt" ]; then
  bash scripts/setup.sh
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=clang \
        -DKOBAKO_GUEST_CACHE="$PWD/build-mruby" >/dev/null
fi
cmake --build "$build" -j2 >/dev/null

mapfile -t targets < <(find "$build/bin" -maxdepth 1 -name 'fuzz_*_libfuzzer' -printf '%f\n' | sort)
if ((${#targets[@]} == 0)); then
  echo "fuzz: $build has no libFuzzer targets (it needs clang with libFuzzer, libclang-rt-14-dev)" >&2
  exit 1
fi
per=$seconds
if ((ci)); then
  per=$((seconds / ${#targets[@]}))
  ((per >= 5)) || per=5
fi

work=$build/fuzz-work
findings=$build/fuzz-findings
logs=$build/fuzz-logs
mkdir -p "$work" "$findings" "$logs"

# One libFuzzer target: new inputs go to its work corpus (the seeds in
# tests/fuzz/corpus/ stay as they are), a finding to fuzz-findings/NAME/.
fuzz_one() {
  local exe=$1 name=${1%_libfuzzer}
  local seeds=tests/fuzz/corpus/$name dict=tests/fuzz/$name.dict
  local args=(-max_total_time="$per" -timeout=30 -rss_limit_mb=3072 -print_final_stats=1
              -artifact_prefix="$findings/$name/")
  [ -f "$dict" ] && args+=(-dict="$dict")
  mkdir -p "$work/$name" "$findings/$name"
  local dirs=("$work/$name")
  [ -d "$seeds" ] && dirs+=("$seeds")
  if "$build/bin/$exe" "${args[@]}" "${dirs[@]}" >"$logs/$name.log" 2>&1; then
    echo 0 >"$logs/$name.status"
  else
    echo $? >"$logs/$name.status"
  fi
}

echo "fuzz: ${#targets[@]} libFuzzer targets, $per s each, $jobs at a time, in $build"
running=0
for exe in "${targets[@]}"; do
  fuzz_one "$exe" &
  running=$((running + 1))
  if ((running >= jobs)); then
    wait -n || true
    running=$((running - 1))
  fi
done
wait

failed=0
printf '%-16s %10s %8s %8s %8s %8s %6s  %s\n' target execs exec/s cov ft corpus slow findings
for exe in "${targets[@]}"; do
  name=${exe%_libfuzzer}
  log=$logs/$name.log
  # "#N DONE cov: C ft: F corp: K/..." or the last "#N pulse/NEW ..." line
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  found=$(find "$findings/$name" -type f ! -name 'slow-unit-*' | wc -l)
  slow=$(find "$findings/$name" -type f -name 'slow-unit-*' | wc -l)
  status=$(cat "$logs/$name.status")
  if [ "$status" != 0 ] || [ "$found" != 0 ]; then
    failed=1
  fi
  printf '%-16s %10s %8s %8s %8s %8s %6s  %s\n' "$name" "${execs:-?}" "${rate:-?}" "${cov:-?}" \
         "${ft:-?}" "${corp:-?}" "$slow" "$found$([ "$status" != 0 ] && echo " (exit $status, see $log)")"
done

if ((!ci)); then
  seed=$(date +%s)
  echo "fuzz: other engines, $seconds s (seed $seed)"
  ruby tests/fuzz/diff_engines.rb --tool "$build/bin/fuzz_wasmgen" --seconds "$seconds" \
       --seed "$seed" --work "$work/engines" --findings "$findings/engines" || failed=1
  if [ -d "$build/ruby-ext/kobako" ]; then
    echo "fuzz: the gem, $seconds s (seed $seed)"
    ruby -I ruby-ext/lib -I "$build/ruby-ext" tests/fuzz/fuzz_ruby.rb --seconds "$seconds" \
         --seed "$seed" --findings "$findings/ruby" || failed=1
  else
    echo "fuzz: no gem in $build (no mruby guest or no ruby), so no Ruby surface run"
  fi
fi

if ((failed)); then
  echo "fuzz: FINDINGS, kept in $findings (the logs are in $logs)"
  exit 1
fi
echo "fuzz: no findings"
