#!/usr/bin/env bash
# Installs the Debian packages kinflow's build needs, and only those that are missing.
#
#   bash scripts/install-deps.sh [--bench] [--blas] [--clang] [--datasets] [--docs] [--mpi] [--plots] [--torch] [--torch-cpp]
#
#   (always)  cmake g++ make libeigen3-dev catch2
#   --bench   libbenchmark-dev libboost-dev   (benchmarks and their peer comparisons)
#   --blas    libopenblas-dev                 (-DKINFLOW_USE_BLAS=ON, kinflow::blas)
#   --clang   clang-14 libclang-rt-14-dev     (the sanitizer and fuzzing builds of run-tests.sh)
#   --datasets  dataset-fashion-mnist         (Fashion-MNIST's IDX files in
#                                             /usr/share/datasets/fashion-mnist/; 30 MB)
#   --docs    doxygen                         (the API reference: target docs)
#   --mpi     libopenmpi-dev openmpi-bin      (-DKINFLOW_WITH_MPI=ON, kinflow::mpi, mpirun)
#   --plots   python3-matplotlib              (plotting scripts of the examples)
#   --torch   python3-torch python3-numpy libopenblas0-pthread
#                                             (the PyTorch peer of bench/compare.sh; large)
#   --torch-cpp  libtorch-dev                 (the TorchScript adapter and its tests)
#
# Needs root when something is missing; otherwise it prints what to install and fails.
# On systems without dpkg it only reminds what is needed and lets CMake find it.
set -euo pipefail

packages=(cmake g++ make libeigen3-dev catch2)
for arg in "$@"; do
  case "$arg" in
    --bench) packages+=(libbenchmark-dev libboost-dev) ;;
    --blas) packages+=(libopenblas-dev) ;;
    --clang) packages+=(clang-14 libclang-rt-14-dev) ;;
    --datasets) packages+=(dataset-fashion-mnist) ;;
    --docs) packages+=(doxygen) ;;
    --mpi) packages+=(libopenmpi-dev openmpi-bin) ;;
    --plots) packages+=(python3-matplotlib) ;;
    --torch) packages+=(python3-torch python3-numpy libopenblas0-pthread) ;;
    --torch-cpp) packages+=(libtorch-dev) ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install-deps.sh: unknown option '$arg' (expected --bench, --blas, --clang, --datasets, --docs, --mpi, --plots, --torch or --torch-cpp)" >&2; exit 2 ;;
  esac
done

if ! command -v dpkg >/dev/null 2>&1; then
  echo "install-deps.sh: not a Debian-based system; make sure these (or their equivalents) are installed:" >&2
  echo "  ${packages[*]}" >&2
  exit 0
fi

missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg -s "$pkg" 2>/dev/null | grep -q '^Status: install ok installed'; then
    missing+=("$pkg")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps.sh: missing Debian packages: ${missing[*]}" >&2
  echo "install them as root, e.g.:" >&2
  echo "  sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi

echo "install-deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${missing[@]}"
