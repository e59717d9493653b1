#!/usr/bin/env bash
# Builds and runs kinflow's whole test suite.
#
#   bash scripts/run-tests.sh [--sanitize]
#
# build/tests: Release, warnings as errors, with benchmarks and examples (compiled so they
# cannot rot; benchmarks that declare a smoke filter also run briefly under CTest), for the
# host CPU as a default build is; then the API reference (Doxygen, warnings as errors), and
# the Python package (scripts/install-python.sh into .venv/) with its pytest suite.
# With --sanitize, or when CI=true, a second build in build/asan runs the tests under
# AddressSanitizer and UBSan (Debug, -O1, line tables only), in the other configuration:
# portable (-DKINFLOW_NATIVE=OFF) with BLAS products (-DKINFLOW_USE_BLAS=ON, OpenBLAS). The
# compile-only checks (header self-containment, compile-fail snippets, the README's quick
# start) are the first build's alone.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

sanitize=0
for arg in "$@"; do
  case "$arg" in
    --sanitize) sanitize=1 ;;
    *) echo "run-tests.sh: unknown option '$arg' (expected --sanitize)" >&2; exit 2 ;;
  esac
done
if [ "${CI:-}" = "true" ]; then
  sanitize=1
fi

bash scripts/install-deps.sh --bench --blas --docs --torch-cpp

jobs="${KINFLOW_JOBS:-$(nproc 2>/dev/null || echo 2)}"

echo "== build/tests (Release) =="
cmake -S . -B build/tests \
  -DCMAKE_BUILD_TYPE=Release \
  -DKINFLOW_WARNINGS_AS_ERRORS=ON \
  -DKINFLOW_BUILD_TESTS=ON \
  -DKINFLOW_BUILD_EXAMPLES=ON \
  -DKINFLOW_BUILD_BENCHMARKS=ON \
  -DKINFLOW_WITH_TORCH=ON
cmake --build build/tests -j "$jobs"
ctest --test-dir build/tests --output-on-failure -j "$jobs"

echo "== API reference (Doxygen, warnings as errors) =="
cmake --build build/tests --target docs

echo "== Python package (.venv over /usr/bin/python3; pytest) =="
bash scripts/install-python.sh --torch --jobs "$jobs"
.venv/bin/python -m pytest python/tests -q

if [ "$sanitize" -eq 1 ]; then
  echo "== build/asan (Debug -O1 -g1, AddressSanitizer + UBSan; portable, BLAS products) =="
  cmake -S . -B build/asan \
    -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_CXX_FLAGS_DEBUG="-g1 -O1" \
    -DKINFLOW_SANITIZE=ON \
    -DKINFLOW_NATIVE=OFF \
    -DKINFLOW_USE_BLAS=ON \
    -DKINFLOW_WARNINGS_AS_ERRORS=ON \
    -DKINFLOW_BUILD_TESTS=ON \
    -DKINFLOW_BUILD_EXAMPLES=OFF \
    -DKINFLOW_BUILD_BENCHMARKS=OFF \
    -DKINFLOW_TEST_PACKAGE=OFF \
    -DKINFLOW_TEST_COMPILE_CHECKS=OFF \
    -DKINFLOW_WITH_TORCH=OFF
  cmake --build build/asan -j "$jobs"
  ASAN_OPTIONS="${ASAN_OPTIONS:-detect_stack_use_after_return=1:strict_init_order=1}" \
  UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
    ctest --test-dir build/asan --output-on-failure -j "$jobs"
fi

echo "run-tests.sh: all tests passed"
