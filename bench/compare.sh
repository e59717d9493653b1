#!/usr/bin/env bash
# Runs kinflow's whole peer comparison and prints one table:
#   - full sampling runs (empirical field, Euler + KTS + KPE), float and double;
#   - kinflow against PyTorch on the same inputs and thread count (bench/pytorch_sampler.py);
#   - kinflow against Boost.Odeint: RK4 batch sampling time, Dormand-Prince NFE at equal error.
#
#   bash bench/compare.sh [--quick] [--no-install] [--no-torch] [--threads T]
#                         [--out DIR] [--build-dir DIR] [--bin-dir DIR] [--portable]
#
#   --quick       tiny sizes and short runs (a smoke run: checks that everything works)
#   --no-install  do not call scripts/install-deps.sh
#   --no-torch    leave PyTorch out (it is also left out, with a message, when missing)
#   --threads T   threads for both sides (default: all hardware threads)
#   --out DIR     where CSV files, raw outputs and results.md go (default: <build-dir>/compare)
#   --build-dir   build directory (default: build/bench-compare)
#   --bin-dir     use the bench_sampling and bench_odeint already built there; no build
#   --portable    build without -march=native (default: native, as OpenBLAS also uses the
#                 widest vector instructions of the machine)
#
# Needs root to install missing Debian packages (--bench: Google Benchmark and Boost;
# --torch: python3-torch and the OpenBLAS BLAS); otherwise install them first.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

quick=0 install=1 torch=1 threads="" out="" build="build/bench-compare" bin="" native=ON
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --no-install) install=0 ;;
    --no-torch) torch=0 ;;
    --threads) threads="$2"; shift ;;
    --out) out="$2"; shift ;;
    --build-dir) build="$2"; shift ;;
    --bin-dir) bin="$2"; shift ;;
    --portable) native=OFF ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "compare.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
threads="${threads:-$(nproc 2>/dev/null || echo 1)}"
out="${out:-$build/compare}"
py=/usr/bin/python3
[ -x "$py" ] || py="$(command -v python3)"

if [ "$install" -eq 1 ]; then
  flags=(--bench)
  [ "$torch" -eq 1 ] && flags+=(--torch)
  if ! bash scripts/install-deps.sh "${flags[@]}"; then
    echo "compare.sh: could not install every package; going on with what is there" >&2
  fi
fi

if [ -z "$bin" ]; then
  jobs="${KINFLOW_JOBS:-2}"
  # Warnings are not errors here: GCC 12 reports false maybe-uninitialized warnings inside
  # its own AVX-512 intrinsics under -march=native.
  mkdir -p "$build"
  echo "== building bench_sampling and bench_odeint in $build (log: $build/compare-build.log) =="
  if ! { cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DKINFLOW_NATIVE="$native" \
           -DKINFLOW_WARNINGS_AS_ERRORS=OFF -DKINFLOW_BUILD_BENCHMARKS=ON \
           -DKINFLOW_BUILD_TESTS=OFF -DKINFLOW_BUILD_EXAMPLES=OFF &&
         cmake --build "$build" -j "$jobs" --target bench_sampling bench_odeint; } \
       > "$build/compare-build.log" 2>&1; then
    tail -n 40 "$build/compare-build.log" >&2
    echo "compare.sh: build failed (full log: $build/compare-build.log)" >&2
    exit 1
  fi
  bin="$build/bench"
fi
for b in bench_sampling bench_odeint; do
  [ -x "$bin/$b" ] || { echo "compare.sh: $bin/$b not found" >&2; exit 1; }
done
mkdir -p "$out"

# Both sides get the same threads: kinflow's fields (all hardware threads unless told),
# PyTorch's intra-op pool and OpenBLAS.
export OMP_NUM_THREADS="$threads" OPENBLAS_NUM_THREADS="$threads"

if [ "$quick" -eq 1 ]; then
  gb=(--benchmark_min_time=0.01)
  sampling_filter='^smoke/' odeint_filter='^smoke/' nfe=(--nfe-small) reps=1
  torch_runs=("2 32 64 5 float" "16 32 16 5 double")
else
  gb=(--benchmark_repetitions=3 --benchmark_report_aggregates_only=true)
  sampling_filter='^sampling/' odeint_filter='^rk4/' nfe=() reps=3
  torch_runs=("2 1024 4096 100 float" "2 1024 4096 100 double"
              "1024 1024 1024 20 float" "1024 1024 1024 20 double")
fi

echo "== kinflow sampling runs =="
"$bin/bench_sampling" --benchmark_filter="$sampling_filter" "${gb[@]}" \
  --benchmark_out="$out/sampling.json" --benchmark_out_format=json | tee "$out/sampling.txt"

echo "== kinflow vs Boost.Odeint =="
"$bin/bench_odeint" --benchmark_filter="$odeint_filter" "${gb[@]}" "${nfe[@]}" \
  --benchmark_out="$out/odeint.json" --benchmark_out_format=json | tee "$out/odeint.txt"

: > "$out/torch.txt"
torch_note=""
if [ "$torch" -eq 0 ]; then
  torch_note="PyTorch comparison left out (--no-torch)."
elif ! "$py" -c 'import torch' 2>/dev/null; then
  torch_note="PyTorch comparison skipped: PyTorch is not installed (Debian: bash scripts/install-deps.sh --torch)."
else
  echo "== kinflow vs PyTorch =="
  for run in "${torch_runs[@]}"; do
    read -r d n b steps scalar <<<"$run"
    dir="$out/torch-d$d-$scalar"
    "$bin/bench_sampling" --compare "$dir" --dim "$d" --train "$n" --batch "$b" --steps "$steps" \
      --scalar "$scalar" --threads "$threads" --reps "$reps"
    "$py" bench/pytorch_sampler.py --dir "$dir" --steps "$steps" --scalar "$scalar" \
      --threads "$threads" --reps "$reps" --label "d$d" | tee -a "$out/torch.txt"
  done
fi
[ -n "$torch_note" ] && echo "$torch_note"

# Machine description for the table.
cpu="$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n1)"
cores="$(nproc 2>/dev/null || echo '?')"
cxx="$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$(dirname "$bin")/CMakeCache.txt" 2>/dev/null | head -n1)"
cxx_version="$(${cxx:-c++} --version 2>/dev/null | head -n1)"
native_used="$(sed -n 's/^KINFLOW_NATIVE:[A-Z]*=//p' "$(dirname "$bin")/CMakeCache.txt" 2>/dev/null | head -n1)"

"$py" - "$out" "$threads" "$quick" "${cpu:-unknown CPU}" "$cores" "${cxx_version:-unknown compiler}" \
  "${native_used:-OFF}" "$torch_note" <<'PY' | tee "$out/results.md"
import json, os, re, sys

out, threads, quick, cpu, cores, cxx, native, torch_note = sys.argv[1:9]

def times(name):
    """Benchmark name (without /real_time) -> median real time in ms."""
    path = os.path.join(out, name)
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        data = json.load(f)
    res = {}
    for b in data.get("benchmarks", []):
        key = b.get("run_name", b["name"]).replace("/real_time", "")
        agg = b.get("aggregate_name")
        if agg not in (None, "median"):
            continue
        scale = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[b.get("time_unit", "ns")]
        if agg == "median" or key not in res:
            res[key] = b["real_time"] * scale
    return res

print(f"Machine: {cpu}, {cores} cores; {cxx}; -O3{' -march=native' if native == 'ON' else ''}; "
      f"{threads} threads for every side{' (quick smoke sizes)' if quick == '1' else ''}.")
print()

s = times("sampling.json")
print("Sampling runs (kinflow; empirical field, Euler + KTS + KPE; median time):")
print()
print("| problem | float | double | KTS+KPE cost (float) |")
print("|---|---:|---:|---:|")
for prefix, p in sorted({tuple(k.split("/")[:2]) for k in s}):
    def get(t, mode):
        return s.get(f"{prefix}/{p}/{t}/{mode}")
    f_on, d_on, f_off = get("float", "kts+kpe"), get("double", "kts+kpe"), get("float", "plain")
    fmt = lambda v: f"{v:.3g} ms" if v is not None else "-"
    cost = f"{(f_on / f_off - 1) * 100:+.1f}%" if f_on and f_off else "-"
    print(f"| {p} | {fmt(f_on)} | {fmt(d_on)} | {cost} |")
print()

rows = []
with open(os.path.join(out, "torch.txt")) as f:
    for line in f:
        if line.startswith("RESULT "):
            rows.append(dict(kv.split("=", 1) for kv in line.split()[1:]))
if rows:
    print("kinflow vs PyTorch (same CSV inputs, Euler + KTS + KPE, median of the runs):")
    print()
    print("| problem | scalar | kinflow | PyTorch | speed-up | target | max abs diff x | samples off | max rel diff E |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        target = None if quick == "1" else (10.0 if r["d"] == "2" else (1.5 if r["scalar"] == "float" else None))
        sp = float(r["speedup"])
        tgt = f"≥ {target:g}× {'met' if sp >= target else 'NOT met'}" if target else "-"
        print(f"| d={r['d']} N={r['N']} B={r['B']} {r['steps']} steps | {r['scalar']} | "
              f"{float(r['kinflow_s']) * 1e3:.4g} ms | {float(r['torch_s']) * 1e3:.4g} ms | "
              f"{sp:.1f}× | {tgt} | {r['max_sample_diff']} | {r['samples_off']}/{r['B']} | "
              f"{r['max_energy_reldiff']} |")
    print()
    print(f"PyTorch {rows[0].get('torch', '?')}, BLAS: {rows[0].get('blas', '?')}.")
    print()
if torch_note:
    print(torch_note)
    print()

o = times("odeint.json")
print("kinflow vs Boost.Odeint, fixed-step RK4 batch sampling (KTS; median time):")
print()
print("kinflow (default column tiles / whole batch as one tile) against the fastest odeint layout:")
print()
print("| problem | energy | kinflow | kinflow, whole batch | fastest odeint | kinflow/odeint | whole batch/odeint |")
print("|---|---|---:|---:|---:|---:|---:|")
for p in sorted({"/".join(k.split("/")[:2]) for k in o}):
    for mode in ("energy", "plain"):
        k, u = o.get(f"{p}/kinflow:{mode}"), o.get(f"{p}/kinflow-untiled:{mode}")
        peers = {n.split("/")[2].split(":")[0]: v for n, v in o.items()
                 if n.startswith(p + "/odeint") and n.endswith(":" + mode)}
        if k is None or u is None or not peers:
            continue
        best = min(peers, key=peers.get)
        print(f"| {p.split('/')[1]} | {'yes' if mode == 'energy' else 'no'} | {k:.4g} ms | {u:.4g} ms | "
              f"{peers[best]:.4g} ms ({best.replace('odeint-', '')}) | {k / peers[best]:.2f} | "
              f"{u / peers[best]:.2f} |")
print()

nfe = []
with open(os.path.join(out, "odeint.txt")) as f:
    for line in f:
        if "NFE-AT-ERROR" in line:
            nfe.append(dict(kv.split("=", 1) for kv in line.split()[1:]))
if nfe:
    print("Dormand-Prince 5(4): fewest evaluations per sample reaching an error (tolerance sweep; "
          "odeint controlled runge_kutta_dopri5 on the whole batch and per sample):")
    print()
    print("| problem | error of x(1) | kinflow | odeint, batch | odeint, per sample |")
    print("|---|---|---:|---:|---:|")
    for r in nfe:
        fmt = lambda v: "not reached" if v == "inf" else v
        print(f"| {r['problem']} | {r['error'].replace('<=', ' ≤ ')} | {fmt(r['kinflow'])} | "
              f"{fmt(r['odeint_batch'])} | {fmt(r['odeint_per_sample'])} |")
    print()
PY
echo "compare.sh: results in $out/results.md"
