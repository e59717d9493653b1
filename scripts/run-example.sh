#!/usr/bin/env bash
# Builds and runs kinflow's main example; extra arguments are passed to it.
#
#   bash scripts/run-example.sh [example arguments...]
#
# The build lives in build/examples (Release). The example runs in the current directory.
set -euo pipefail

# The example target to build and run (examples/<name>.cpp).
example="kinflow-quickstart"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

bash "$root/scripts/install-deps.sh" --plots

if [ ! -f "$root/examples/$example.cpp" ]; then
  echo "run-example.sh: examples/$example.cpp does not exist" >&2
  exit 1
fi

jobs="${KINFLOW_JOBS:-$(nproc 2>/dev/null || echo 2)}"

cmake -S "$root" -B "$root/build/examples" \
  -DCMAKE_BUILD_TYPE=Release \
  -DKINFLOW_BUILD_EXAMPLES=ON \
  -DKINFLOW_BUILD_TESTS=OFF \
  -DKINFLOW_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build "$root/build/examples" --target "$example" -j "$jobs"

exec "$root/build/examples/examples/$example" "$@"
