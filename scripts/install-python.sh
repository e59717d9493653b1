#!/usr/bin/env bash
# Builds kinflow's Python extension and installs the package into .venv/ at the repository
# root, a virtual environment over the system's /usr/bin/python3 that also sees the system
# packages (numpy, torch, pytest). Afterwards:
#
#   .venv/bin/python -c "import kinflow"
#   .venv/bin/python -m pytest python/tests -q
#
#   bash scripts/install-python.sh [--torch] [--mpi] [--jobs N] [--build-dir DIR | --prebuilt DIR | --setup-only]
#
#   --torch         also install python3-torch, python3-matplotlib, python3-sklearn and
#                   python3-scipy (the PyTorch tests, the example in examples/python/ and
#                   the digits study in examples/digits/; large)
#   --mpi           also install python3-mpi4py and openmpi-bin (examples/python/mpi_shards.py
#                   and its test)
#   --jobs N        parallel compile jobs (default 2)
#   --build-dir DIR CMake build directory (default build/python)
#   --prebuilt DIR  install the extension module already built in DIR, a build of this tree
#                   configured with -DKINFLOW_BUILD_PYTHON=ON (scripts/run-tests.sh builds it
#                   with the tests), instead of building one
#   --setup-only    the Debian packages and the environment only (before such a build)
#
# Installs the Debian packages it needs when they are missing (as root; otherwise it prints
# the command), and downloads nothing else. The package goes in with
# `pip install --no-build-isolation --no-index .` (pyproject.toml; setup.py builds the
# extension with CMake from the system's pybind11). Safe to re-run.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python=/usr/bin/python3
jobs=2
build_dir="$root/build/python"
prebuilt=""
setup_only=0
packages=(cmake g++ make libeigen3-dev pybind11-dev python3-pybind11 python3-pytest python3-pytest-xdist python3-numpy python3-venv python3-dev
          python3-setuptools python3-wheel)

while [ "$#" -gt 0 ]; do
  case "$1" in
    --torch) packages+=(python3-torch python3-matplotlib python3-sklearn python3-scipy) ;;
    --mpi) packages+=(python3-mpi4py openmpi-bin) ;;
    --jobs) jobs="${2:?install-python.sh: --jobs needs a number}"; shift ;;
    --build-dir) build_dir="${2:?install-python.sh: --build-dir needs a directory}"; shift ;;
    --prebuilt) prebuilt="${2:?install-python.sh: --prebuilt needs a build directory}"; shift ;;
    --setup-only) setup_only=1 ;;
    -h|--help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install-python.sh: unknown option '$1' (expected --torch, --mpi, --jobs N, --build-dir DIR, --prebuilt DIR or --setup-only)" >&2; exit 2 ;;
  esac
  shift
done
case "$build_dir" in /*) ;; *) build_dir="$root/$build_dir" ;; esac
if [ -n "$prebuilt" ]; then
  case "$prebuilt" in /*) ;; *) prebuilt="$(pwd)/$prebuilt" ;; esac
  build_dir="$prebuilt"
fi

say() { echo "install-python.sh: $*"; }

# 1. Debian packages, only those missing.
if command -v dpkg >/dev/null 2>&1; then
  missing=()
  for pkg in "${packages[@]}"; do
    if ! dpkg -s "$pkg" 2>/dev/null | grep -q '^Status: install ok installed'; then
      missing+=("$pkg")
    fi
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
      say "missing Debian packages: ${missing[*]}" >&2
      say "install them as root, e.g.: sudo apt-get install -y ${missing[*]}" >&2
      exit 1
    fi
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y --no-install-recommends "${missing[@]}"; then
      say "apt-get install failed; refreshing the package lists and retrying"
      apt-get update
      apt-get install -y --no-install-recommends "${missing[@]}"
    fi
  else
    say "Debian packages present"
  fi
else
  say "not a Debian-based system: make sure pybind11, numpy, pytest and the venv module are available to $python"
fi

if [ ! -x "$python" ]; then
  say "$python not found (the package is built for the system's Python 3)" >&2
  exit 1
fi
"$python" -c "import numpy, pybind11" 2>/dev/null || {
  say "$python cannot import numpy and pybind11 (Debian: python3-numpy python3-pybind11)" >&2
  exit 1
}

# 2. The virtual environment over the system's Python, seeing its packages.
venv="$root/.venv"
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import sys; sys.exit(0 if sys.base_prefix == '/usr' else 1)" 2>/dev/null; then
  say "using the environment $venv"
else
  if [ -e "$venv" ]; then
    say "$venv is not an environment over $python; recreating it"
    rm -rf "$venv"
  fi
  say "creating $venv (over $python, with the system's packages)"
  "$python" -m venv --system-site-packages "$venv"
fi

if [ "$setup_only" -eq 1 ]; then
  say "packages and $venv ready (--setup-only: no extension built or installed)"
  exit 0
fi

# 3. `pip install .` into the environment: setup.py builds the extension with CMake (only its
# target), or takes the one a build made; no package index is asked (--no-index), and the
# build uses the environment's setuptools and pybind11 (--no-build-isolation).
if [ -n "$prebuilt" ]; then
  export KINFLOW_PREBUILT="$build_dir"
  say "pip install . with the extension built in $build_dir"
else
  unset KINFLOW_PREBUILT
  export KINFLOW_BUILD_DIR="$build_dir" KINFLOW_JOBS="$jobs"
  say "pip install . (the extension built in $build_dir, Release, -j$jobs)"
fi
"$venv/bin/python" -m pip install --no-build-isolation --no-index --no-deps --disable-pip-version-check -q "$root"
rm -rf "$root/python/kinflow.egg-info"  # (setuptools' metadata, written into the tree)

version="$(cd /tmp && "$venv/bin/python" -c "import kinflow; print(kinflow.__version__)")"
say "ok: .venv/bin/python -c 'import kinflow' works (kinflow $version)"
