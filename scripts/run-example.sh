#!/usr/bin/env bash
# Builds and runs kinflow's main example: kinflow-sample on a toy dataset (extra arguments
# are passed to it), then the figures that reproduce the paper's toy findings.
#
#   bash scripts/run-example.sh [kinflow-sample arguments...]
#
# The build lives in build/examples (Release). Outputs go to the current directory:
# kinflow-out/ (samples.csv, summary.json, train.csv, trajectories.csv) and
# kinflow-figures/ (fig_a..fig_e PNGs, figures.json, and the runs behind them).
# KINFLOW_FIGURES=quick makes the figure runs smaller; KINFLOW_FIGURES=off skips them.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

bash "$root/scripts/install-deps.sh" --plots

jobs="${KINFLOW_JOBS:-$(nproc 2>/dev/null || echo 2)}"

cmake -S "$root" -B "$root/build/examples" \
  -DCMAKE_BUILD_TYPE=Release \
  -DKINFLOW_BUILD_EXAMPLES=ON \
  -DKINFLOW_BUILD_TESTS=OFF \
  -DKINFLOW_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build "$root/build/examples" --target kinflow-sample kinflow-shootout kinflow-trained -j "$jobs"

bin="$root/build/examples/examples"
echo "== kinflow-sample $* =="
"$bin/kinflow-sample" --trajectories 100 "$@"

case "${KINFLOW_FIGURES:-full}" in
  off) ;;
  quick) /usr/bin/python3 "$root/examples/figures.py" --bin "$bin" --out kinflow-figures --quick ;;
  *) /usr/bin/python3 "$root/examples/figures.py" --bin "$bin" --out kinflow-figures ;;
esac
