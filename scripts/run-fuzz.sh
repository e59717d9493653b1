#!/usr/bin/env bash
# Builds kinflow's libFuzzer targets (tests/fuzz/) with Clang, AddressSanitizer and
# UndefinedBehaviorSanitizer, and runs each for a bounded time from its committed seed corpus.
#
#   bash scripts/run-fuzz.sh [--seconds S] [--jobs N] [--build-dir DIR]
#
#   --seconds S     fuzzing time per target (default 60)
#   --jobs N        parallel compile jobs, and targets fuzzed at a time (default 2)
#   --build-dir DIR build directory (default build/fuzz)
#
# Installs clang-14 and libclang-rt-14-dev from Debian when they are missing (as root). A crash,
# a sanitizer report, a leak or a timeout fails the run; the input that caused it is kept as
# DIR/artifacts/<target>-crash-<hash> (or leak-/timeout-/oom-), and the command to reproduce it
# is printed. The corpora the runs grow stay in DIR/corpus/<target>/ (the committed seeds in
# tests/fuzz/corpus/ are not modified). Prints the executions and coverage of every target.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds=60
jobs=2
build_dir="$root/build/fuzz"
while [ "$#" -gt 0 ]; do
  case "$1" in
    --seconds) seconds="${2:?run-fuzz.sh: --seconds needs a number}"; shift ;;
    --jobs) jobs="${2:?run-fuzz.sh: --jobs needs a number}"; shift ;;
    --build-dir) build_dir="${2:?run-fuzz.sh: --build-dir needs a directory}"; shift ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run-fuzz.sh: unknown option '$1' (expected --seconds S, --jobs N or --build-dir DIR)" >&2; exit 2 ;;
  esac
  shift
done
case "$build_dir" in /*) ;; *) build_dir="$root/$build_dir" ;; esac

packages=(clang-14 libclang-rt-14-dev cmake make libeigen3-dev)
missing=()
for pkg in "${packages[@]}"; do
  dpkg -s "$pkg" 2>/dev/null | grep -q '^Status: install ok installed' || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "run-fuzz.sh: missing Debian packages: ${missing[*]} (install them as root)" >&2
    exit 1
  fi
  echo "run-fuzz.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends "${missing[@]}" || { apt-get update; apt-get install -y --no-install-recommends "${missing[@]}"; }
fi

echo "run-fuzz.sh: building the fuzz targets in $build_dir (clang++-14, -O1, ASan + UBSan + libFuzzer)"
cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER=clang++-14 \
  -DKINFLOW_BUILD_FUZZERS=ON -DKINFLOW_BUILD_TESTS=OFF -DKINFLOW_BUILD_EXAMPLES=OFF \
  -DKINFLOW_BUILD_BENCHMARKS=OFF -DKINFLOW_BUILD_DOCS=OFF -DKINFLOW_INSTALL=OFF -DKINFLOW_NATIVE=OFF >/dev/null
targets=(fuzz_csv fuzz_npy fuzz_npz fuzz_mlp fuzz_idx)  # (the target kinflow_fuzzers builds them all)
cmake --build "$build_dir" --target kinflow_fuzzers -j "$jobs"

rm -rf "$build_dir/artifacts"  # this run's findings only
mkdir -p "$build_dir/artifacts"
# One target: its corpus grown from the seeds, its log, its verdict in $build_dir/<target>.status.
run_target() {
  local t="$1" corpus="$build_dir/corpus/$1" log="$build_dir/$1.log"
  mkdir -p "$corpus"
  cp -n "$root/tests/fuzz/corpus/$t/"* "$corpus/" 2>/dev/null || true
  if ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
     "$build_dir/tests/fuzz/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
       -print_final_stats=1 -artifact_prefix="$build_dir/artifacts/$t-" "$corpus" >"$log" 2>&1; then
    echo ok >"$build_dir/$t.status"
  else
    echo failed >"$build_dir/$t.status"
  fi
}
# The targets are single-threaded: run --jobs of them at a time.
echo "run-fuzz.sh: ${#targets[@]} targets, ${seconds} s each, $jobs at a time"
running=0
for t in "${targets[@]}"; do
  rm -f "$build_dir/$t.status"
  run_target "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then wait -n || true; running=$((running - 1)); fi
done
wait || true

status=0
for t in "${targets[@]}"; do
  log="$build_dir/$t.log"
  if [ "$(cat "$build_dir/$t.status" 2>/dev/null)" = ok ]; then
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo "?")
    echo "$t: no crash in $runs executions (coverage $cov edges, corpus $(ls "$build_dir/corpus/$t" | wc -l) inputs)"
  else
    status=1
    echo "$t: FAILED; the end of $log:" >&2
    tail -40 "$log" >&2
    for a in "$build_dir/artifacts/$t-"*; do
      [ -e "$a" ] && echo "run-fuzz.sh: reproduce with: $build_dir/tests/fuzz/$t $a" >&2
    done
  fi
done
[ "$status" -eq 0 ] && echo "run-fuzz.sh: all fuzz targets ran without a finding"
exit "$status"
