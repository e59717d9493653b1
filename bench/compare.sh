#!/usr/bin/env bash
# Runs kinflow's whole peer comparison and prints one table:
#   - full sampling runs (empirical field, Euler + KTS + KPE), float and double;
#   - kinflow against PyTorch on the same inputs and thread count (bench/pytorch_sampler.py),
#     for each build of kinflow: the default one (what `cmake -DCMAKE_BUILD_TYPE=Release`
#     gives a user: host vector instructions), the portable one (-DKINFLOW_NATIVE=OFF) and
#     the portable one with BLAS products (-DKINFLOW_NATIVE=OFF -DKINFLOW_USE_BLAS=ON);
#   - kinflow against Boost.Odeint: RK4 batch sampling time, Dormand-Prince NFE at equal error.
#
#   bash bench/compare.sh [--quick] [--no-install] [--no-torch] [--threads T]
#                         [--out DIR] [--build-dir DIR] [--builds LIST] [--bin-dir DIR]
#
#   --quick       tiny sizes and short runs (a smoke run: checks that everything works)
#   --no-install  do not call scripts/install-deps.sh
#   --no-torch    leave PyTorch out (it is also left out, with a message, when missing)
#   --torch-only  only the PyTorch comparison (no Google Benchmark tables, no odeint)
#   --threads T   threads for both sides (default: all hardware threads)
#   --out DIR     where CSV files, raw outputs and results.md go (default: <build-dir>/compare)
#   --build-dir   where the builds go, one folder each (default: build/bench-compare)
#   --builds LIST which builds to make and compare, comma-separated, the first one also runs
#                 the Google Benchmark tables (default: default,portable,portable-blas)
#   --bin-dir     use the bench_sampling and bench_odeint already built there; no build
#                 (its build is named from its CMakeCache.txt)
#   --openblas-core NAME  run every side with OPENBLAS_CORETYPE=NAME (a run-time setting of
#                 OpenBLAS, for CPUs its version does not recognise; the table says which
#                 kernels OpenBLAS used either way)
#
# Needs root to install missing Debian packages (--bench: Google Benchmark and Boost;
# --blas: OpenBLAS; --torch: python3-torch); otherwise install them first.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

quick=0 install=1 torch=1 gbench=1 threads="" out="" build="build/bench-compare" bin=""
builds="default,portable,portable-blas"
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --no-install) install=0 ;;
    --no-torch) torch=0 ;;
    --torch-only) gbench=0 ;;
    --threads) threads="$2"; shift ;;
    --out) out="$2"; shift ;;
    --build-dir) build="$2"; shift ;;
    --builds) builds="$2"; shift ;;
    --bin-dir) bin="$2"; shift ;;
    --openblas-core) export OPENBLAS_CORETYPE="$2"; shift ;;
    -h|--help) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "compare.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
threads="${threads:-$(nproc 2>/dev/null || echo 1)}"
out="${out:-$build/compare}"
py=/usr/bin/python3
[ -x "$py" ] || py="$(command -v python3)"

# The CMake flags of each build, on top of -DCMAKE_BUILD_TYPE=Release. "default" resets
# kinflow's options to their defaults, as in a fresh clone.
build_flags() {
  case "$1" in
    default) echo "-UKINFLOW_NATIVE -UKINFLOW_USE_BLAS" ;;
    portable) echo "-DKINFLOW_NATIVE=OFF -DKINFLOW_USE_BLAS=OFF" ;;
    portable-blas) echo "-DKINFLOW_NATIVE=OFF -DKINFLOW_USE_BLAS=ON" ;;
    native-blas) echo "-DKINFLOW_NATIVE=ON -DKINFLOW_USE_BLAS=ON" ;;
    *) echo "compare.sh: unknown build '$1' (expected default, portable, portable-blas or native-blas)" >&2
       return 1 ;;
  esac
}

# The name of the build in a build tree, from its cache.
build_name() {
  local cache="$1/CMakeCache.txt" native blas
  native="$(sed -n 's/^KINFLOW_NATIVE:[A-Z]*=//p' "$cache" 2>/dev/null | head -n1)"
  blas="$(sed -n 's/^KINFLOW_USE_BLAS:[A-Z]*=//p' "$cache" 2>/dev/null | head -n1)"
  case "${native:-OFF}/${blas:-OFF}" in
    ON/OFF) echo default ;;
    OFF/OFF) echo portable ;;
    OFF/ON) echo portable-blas ;;
    *) echo native-blas ;;
  esac
}

# What a build's compiler flags are, for the table.
build_description() {
  local cache="$1/CMakeCache.txt" native blas lib
  native="$(sed -n 's/^KINFLOW_NATIVE:[A-Z]*=//p' "$cache" 2>/dev/null | head -n1)"
  blas="$(sed -n 's/^KINFLOW_USE_BLAS:[A-Z]*=//p' "$cache" 2>/dev/null | head -n1)"
  local text="-O3"
  [ "${native:-OFF}" = ON ] && text="$text -march=native"
  if [ "${blas:-OFF}" = ON ]; then
    lib="$(sed -n 's/^BLAS_openblas_LIBRARY:[A-Z]*=//p' "$cache" 2>/dev/null | head -n1)"
    text="$text, BLAS products (${lib:-BLAS})"
  else
    text="$text, Eigen products"
  fi
  echo "$text"
}

IFS=',' read -r -a build_list <<<"$builds"
[ "${#build_list[@]}" -gt 0 ] || { echo "compare.sh: --builds is empty" >&2; exit 2; }
for b in "${build_list[@]}"; do build_flags "$b" >/dev/null || exit 2; done

if [ "$install" -eq 1 ]; then
  flags=(--bench)
  [ "$torch" -eq 1 ] && flags+=(--torch)
  case ",$builds," in *blas*) flags+=(--blas) ;; esac
  if ! bash scripts/install-deps.sh "${flags[@]}"; then
    echo "compare.sh: could not install every package; going on with what is there" >&2
  fi
fi

# bins[i] holds the bench/ folder of build_list[i].
bins=()
if [ -n "$bin" ]; then
  build_list=("$(build_name "$(dirname "$bin")")")
  bins=("$bin")
else
  jobs="${KINFLOW_JOBS:-2}"
  mkdir -p "$build"
  for b in "${build_list[@]}"; do
    dir="$build/$b"
    read -r -a extra <<<"$(build_flags "$b")"
    echo "== building bench_sampling and bench_odeint ($b) in $dir (log: $dir.log) =="
    if ! { cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release "${extra[@]}" \
             -DKINFLOW_BUILD_BENCHMARKS=ON -DKINFLOW_BUILD_TESTS=OFF -DKINFLOW_BUILD_EXAMPLES=OFF &&
           cmake --build "$dir" -j "$jobs" --target bench_sampling bench_odeint; } > "$dir.log" 2>&1; then
      tail -n 40 "$dir.log" >&2
      echo "compare.sh: build $b failed (full log: $dir.log)" >&2
      exit 1
    fi
    bins+=("$dir/bench")
  done
fi
for b in "${bins[@]}"; do
  for p in bench_sampling bench_odeint; do
    [ -x "$b/$p" ] || { echo "compare.sh: $b/$p not found" >&2; exit 1; }
  done
done
bin="${bins[0]}"
mkdir -p "$out"
: > "$out/builds.txt"
for i in "${!build_list[@]}"; do
  echo "${build_list[$i]}|$(build_description "$(dirname "${bins[$i]}")")" >> "$out/builds.txt"
done

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

rm -f "$out/sampling.json" "$out/odeint.json"
: > "$out/odeint.txt"
if [ "$gbench" -eq 1 ]; then
  echo "== kinflow sampling runs =="
  "$bin/bench_sampling" --benchmark_filter="$sampling_filter" "${gb[@]}" \
    --benchmark_out="$out/sampling.json" --benchmark_out_format=json | tee "$out/sampling.txt"

  echo "== kinflow vs Boost.Odeint =="
  "$bin/bench_odeint" --benchmark_filter="$odeint_filter" "${gb[@]}" "${nfe[@]}" \
    --benchmark_out="$out/odeint.json" --benchmark_out_format=json | tee "$out/odeint.txt"
fi

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
    also=()
    for i in "${!build_list[@]}"; do
      kdir="$dir"
      if [ "$i" -gt 0 ]; then
        kdir="$dir/${build_list[$i]}"
        also+=(--also "${build_list[$i]}=$kdir")
      fi
      "${bins[$i]}/bench_sampling" --compare "$kdir" --dim "$d" --train "$n" --batch "$b" \
        --steps "$steps" --scalar "$scalar" --threads "$threads" --reps "$reps"
    done
    "$py" bench/pytorch_sampler.py --dir "$dir" --steps "$steps" --scalar "$scalar" \
      --threads "$threads" --reps "$reps" --label "d$d" --build "${build_list[0]}" "${also[@]}" \
      | tee -a "$out/torch.txt"
  done
fi
[ -n "$torch_note" ] && echo "$torch_note"

# Machine description for the table.
cpu="$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n1)"
cores="$(nproc 2>/dev/null || echo '?')"
cxx="$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$(dirname "$bin")/CMakeCache.txt" 2>/dev/null | head -n1)"
cxx_version="$(${cxx:-c++} --version 2>/dev/null | head -n1)"
# The kernels OpenBLAS chose on this CPU (PyTorch's and kinflow::blas's products).
openblas_core="$("$py" -c 'import ctypes
l = ctypes.CDLL("libopenblas.so.0"); l.openblas_get_corename.restype = ctypes.c_char_p
print(l.openblas_get_corename().decode())' 2>/dev/null || echo "not loaded")"

"$py" - "$out" "$threads" "$quick" "${cpu:-unknown CPU}" "$cores" "${cxx_version:-unknown compiler}" \
  "$torch_note" "$openblas_core" "${OPENBLAS_CORETYPE:-}" <<'PY' | tee "$out/results.md"
import json, os, re, sys

out, threads, quick, cpu, cores, cxx, torch_note, ob_core, ob_forced = sys.argv[1:10]
builds = []
with open(os.path.join(out, "builds.txt")) as f:
    for line in f:
        if line.strip():
            name, desc = line.rstrip("\n").split("|", 1)
            builds.append((name, desc))

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

print(f"Machine: {cpu}, {cores} cores; {cxx}; {threads} threads for every side"
      f"{' (quick smoke sizes)' if quick == '1' else ''}. OpenBLAS kernels: {ob_core}"
      f"{' (OPENBLAS_CORETYPE=' + ob_forced + ')' if ob_forced else ' (its own choice)'}.")
print()
print("Builds (CMake, -DCMAKE_BUILD_TYPE=Release and):")
print()
for name, desc in builds:
    flags = {"default": "nothing else, as a fresh clone builds", "portable": "-DKINFLOW_NATIVE=OFF",
             "portable-blas": "-DKINFLOW_NATIVE=OFF -DKINFLOW_USE_BLAS=ON",
             "native-blas": "-DKINFLOW_USE_BLAS=ON"}.get(name, "?")
    print(f"- {name}: {flags} ({desc})")
print()
print(f"The Google Benchmark tables below come from the {builds[0][0]} build.")
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
# Targets: (build, d, scalar) -> least speed-up over PyTorch.
targets = {} if quick == "1" else {("default", "2", "double"): 20.0, ("default", "1024", "float"): 2.5,
                                   ("portable-blas", "1024", "float"): 1.5}
if rows:
    names = [n for n, _ in builds]
    print("kinflow vs PyTorch (same CSV inputs, Euler + KTS + KPE, median of the runs; "
          "speed-up = PyTorch time / kinflow time):")
    print()
    head = "| problem | scalar | PyTorch |" + "".join(f" {n} |" for n in names)
    head += " targets | max abs diff x | samples off | max rel diff E |"
    print(head)
    print("|---|---|---:|" + "---:|" * len(names) + "---|---:|---:|---:|")
    problems = []
    for r in rows:
        key = (r["d"], r["N"], r["B"], r["steps"], r["scalar"])
        if key not in problems:
            problems.append(key)
    for key in problems:
        d, n, b, steps, scalar = key
        by_build = {r.get("build", "default"): r for r in rows
                    if (r["d"], r["N"], r["B"], r["steps"], r["scalar"]) == key}
        first = by_build.get(names[0]) or next(iter(by_build.values()))
        cells = []
        for nm in names:
            r = by_build.get(nm)
            cells.append(f"{float(r['kinflow_s']) * 1e3:.4g} ms, {float(r['speedup']):.1f}×" if r else "-")
        marks = []
        for (tb, td, ts), want in targets.items():
            if td == d and ts == scalar and tb in by_build:
                got = float(by_build[tb]["speedup"])
                marks.append(f"{tb} ≥ {want:g}× {'met' if got >= want else 'NOT met'}")
        # Agreement with PyTorch: the worst over the builds.
        diff = max(float(r["max_sample_diff"]) for r in by_build.values())
        off = max(int(r["samples_off"]) for r in by_build.values())
        ediff = max(float(r["max_energy_reldiff"]) for r in by_build.values())
        print(f"| d={d} N={n} B={b} {steps} steps | {scalar} | {float(first['torch_s']) * 1e3:.4g} ms | "
              + " | ".join(cells) + f" | {'; '.join(marks) or '-'} | {diff:.3g} | {off}/{b} | {ediff:.3g} |")
    print()
    print(f"PyTorch {rows[0].get('torch', '?')}, BLAS: {rows[0].get('blas', '?')}. The agreement "
          "columns are the worst over the builds.")
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
    print("| problem | error of x(1) | kinflow (I) | kinflow (PI) | odeint, batch | odeint, per sample |")
    print("|---|---|---:|---:|---:|---:|")
    for r in nfe:
        fmt = lambda v: "not reached" if v == "inf" else v
        print(f"| {r['problem']} | {r['error'].replace('<=', ' ≤ ')} | {fmt(r['kinflow'])} | "
              f"{fmt(r.get('kinflow_pi', 'inf'))} | {fmt(r['odeint_batch'])} | {fmt(r['odeint_per_sample'])} |")
    print()
PY
echo "compare.sh: results in $out/results.md"
