#!/usr/bin/env bash
# Builds and runs kinflow's whole test suite.
#
#   bash scripts/run-tests.sh [--sanitize] [--tsan] [--fuzz]
#
# build/tests: Release, warnings as errors, with benchmarks and examples (compiled so they
# cannot rot; benchmarks that declare a smoke filter also run briefly under CTest), for the
# host CPU as a default build is; the test executables at -O1 (-DKINFLOW_TEST_FLAGS), the
# programs they run and the Python extension module at Release's -O3, the benchmarks, which
# only run as smoke tests here, at -O1 (-DKINFLOW_BENCH_OPT); then the API reference
# (Doxygen, warnings as errors), and the Python package (scripts/install-python.sh into
# .venv/, with the module of that build) with its pytest suite.
# With --sanitize, or when CI=true, a second build in build/asan runs the tests under
# AddressSanitizer and UBSan (Debug, line tables only, -O0 but the longest-running tests at
# -O1), in the other configuration:
# the other compiler (Debian's clang-14), portable (-DKINFLOW_NATIVE=OFF), with BLAS
# products (-DKINFLOW_USE_BLAS=ON, OpenBLAS). The
# compile-only checks (header self-containment, compile-fail snippets, the README's quick
# start) are the first build's alone.
# With --tsan, or when CI=true, build/tsan builds the threaded tests and kinflow-trained with
# ThreadSanitizer and runs them (the closed-form fields with threads > 1, one field from
# several threads at once, the parallel sweep). With --fuzz, or when CI=true, the parsers'
# libFuzzer targets run for 30 s each under ASan + UBSan (scripts/run-fuzz.sh, clang-14;
# KINFLOW_FUZZ_SECONDS=S for longer).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

sanitize=0
tsan=0
fuzz=0
for arg in "$@"; do
  case "$arg" in
    --sanitize) sanitize=1 ;;
    --tsan) tsan=1 ;;
    --fuzz) fuzz=1 ;;
    *) echo "run-tests.sh: unknown option '$arg' (expected --sanitize, --tsan or --fuzz)" >&2; exit 2 ;;
  esac
done
if [ "${CI:-}" = "true" ]; then
  sanitize=1
  tsan=1
  fuzz=1
fi

# Wall time of each stage, printed at the end (and when a stage fails), so that the
# command's budget is visible in every log.
stage_names=()
stage_seconds=()
stage_start=$SECONDS
stage() {  # stage NAME: the stage that starts now
  stage_end
  stage_names+=("$1")
  stage_start=$SECONDS
}
stage_end() {
  if [ "${#stage_names[@]}" -gt "${#stage_seconds[@]}" ]; then
    stage_seconds+=($((SECONDS - stage_start)))
  fi
}
stage_summary() {
  stage_end
  echo "run-tests.sh: wall time per stage (s):"
  local i
  for i in "${!stage_seconds[@]}"; do
    printf '  %6d  %s\n' "${stage_seconds[$i]}" "${stage_names[$i]}"
  done
  printf '  %6d  in all\n' "$SECONDS"
}
trap stage_summary EXIT

stage "Debian packages"
deps=(--bench --blas --datasets --docs --mpi --torch-cpp)
if [ "$sanitize" -eq 1 ] || [ "$fuzz" -eq 1 ]; then deps+=(--clang); fi
bash scripts/install-deps.sh "${deps[@]}"

jobs="${KINFLOW_JOBS:-$(nproc 2>/dev/null || echo 2)}"

# The Python package's Debian packages and .venv/ first: the Release build below also
# compiles the extension module, which install-python.sh then installs from it.
stage "Python packages and .venv"
bash scripts/install-python.sh --torch --mpi --setup-only

stage "build/tests: configure and build"
echo "== build/tests (Release) =="
cmake -S . -B build/tests \
  -DCMAKE_BUILD_TYPE=Release \
  -DKINFLOW_WARNINGS_AS_ERRORS=ON \
  -DKINFLOW_BUILD_TESTS=ON \
  -DKINFLOW_BUILD_EXAMPLES=ON \
  -DKINFLOW_BUILD_BENCHMARKS=ON \
  -DKINFLOW_WITH_TORCH=ON -DKINFLOW_WITH_MPI=ON -DKINFLOW_TEST_FLAGS=-O1 -DKINFLOW_BENCH_OPT=-O1 \
  -DKINFLOW_BUILD_PYTHON=ON -DPython3_EXECUTABLE=/usr/bin/python3
cmake --build build/tests -j "$jobs"
stage "build/tests: ctest"
ctest --test-dir build/tests --output-on-failure -j "$jobs"

stage "API reference"
echo "== API reference (Doxygen, warnings as errors) =="
cmake --build build/tests --target docs

stage "Python package: install and pytest"
echo "== Python package (.venv over /usr/bin/python3; pytest) =="
bash scripts/install-python.sh --torch --mpi --prebuilt build/tests
# One worker per core, each taking whole files (a file's module fixtures run once).
.venv/bin/python -m pytest python/tests -q -n "$jobs" --dist loadfile

# A Debug build for the sanitizer runs in DIR (line tables only), portable, warnings as
# errors, without the benchmarks, the package tests and the compile-only checks; the other
# -D options follow DIR.
configure_checked() {
  local dir="$1"
  shift
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Debug \
    -DKINFLOW_NATIVE=OFF -DKINFLOW_WARNINGS_AS_ERRORS=ON -DKINFLOW_BUILD_TESTS=ON \
    -DKINFLOW_BUILD_BENCHMARKS=OFF -DKINFLOW_TEST_PACKAGE=OFF -DKINFLOW_TEST_COMPILE_CHECKS=OFF \
    -DKINFLOW_WITH_TORCH=OFF "$@"
}

if [ "$sanitize" -eq 1 ]; then
  stage "build/asan: configure and build"
  echo "== build/asan (clang-14, Debug -O0 -g1, the longest-running tests -O1; AddressSanitizer + UBSan; portable, BLAS products) =="
  # Unoptimized code compiles in about 40 % of -O1's time and runs about 5x slower, which
  # only the tests that run for seconds notice: those stay at -O1 (tests/CMakeLists.txt).
  configure_checked build/asan -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_CXX_FLAGS_DEBUG="-g1 -O0" \
    -DKINFLOW_LONG_TEST_FLAGS=-O1 -DKINFLOW_SANITIZE=ON -DKINFLOW_USE_BLAS=ON -DKINFLOW_BUILD_EXAMPLES=OFF
  cmake --build build/asan -j "$jobs"
  stage "build/asan: ctest"
  ASAN_OPTIONS="${ASAN_OPTIONS:-detect_stack_use_after_return=1:strict_init_order=1}" \
  UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
    ctest --test-dir build/asan --output-on-failure -j "$jobs"
fi

if [ "$tsan" -eq 1 ]; then
  stage "build/tsan: build and run"
  echo "== build/tsan (GCC, Debug -O1 -g1, ThreadSanitizer: threaded fields, one field from several threads, the parallel sweep) =="
  configure_checked build/tsan -DCMAKE_CXX_FLAGS_DEBUG="-g1 -O1" -DKINFLOW_SANITIZE_THREAD=ON -DKINFLOW_BUILD_EXAMPLES=ON
  tsan_tests=(test_fields_concurrency test_fields_conditional)  # with kinflow-trained: the target kinflow_tsan_checks
  cmake --build build/tsan -j "$jobs" --target kinflow_tsan_checks
  export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}"
  for t in "${tsan_tests[@]}"; do
    echo "-- $t (ThreadSanitizer)"
    "build/tsan/tests/$t"
  done
  echo "-- kinflow-trained --quick --threads 2 (ThreadSanitizer)"
  build/tsan/examples/kinflow-trained --quick --threads 2 --quiet --out build/tsan/trained-out
fi

if [ "$fuzz" -eq 1 ]; then
  stage "fuzzing: build and run"
  echo "== fuzzing (clang-14 libFuzzer, ASan + UBSan; scripts/run-fuzz.sh) =="
  bash scripts/run-fuzz.sh --seconds "${KINFLOW_FUZZ_SECONDS:-30}" --jobs "$jobs"
fi

echo "run-tests.sh: all tests passed"
