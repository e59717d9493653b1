#!/usr/bin/env bash
# The distributed exact field on one machine (loopback): seconds per velocity evaluation for
# N = 1e5 training points, d = 64, B samples, in three configurations, and their ratios:
#   P = 2 ranks x 1 thread   (kinflow::mpi::distributed_empirical_field, mpirun -np 2)
#   1 rank  x 2 threads      (kinflow::empirical_field, threads = 2)
#   1 rank  x 1 thread       (kinflow::empirical_field, threads = 1)
#
#   bash bench/mpi_scaling.sh [--bin DIR] [--n N] [--d D] [--b B] [--reps R] [--sweep "1 2 3 4"]
#
# --sweep also times the distributed field on each listed number of ranks (1 thread each;
# more ranks than cores are oversubscribed) with its parallel efficiency t(1) / (P t(P)).
#
# DIR holds bench_mpi_field (default build-mpi/bench, from a configure with
# -DKINFLOW_WITH_MPI=ON -DCMAKE_BUILD_TYPE=Release and `--target bench_mpi_field`).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$root/build-mpi/bench" n=100000 d=64 b=256 reps=5 sweep=""
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin="$2"; shift ;;
    --n) n="$2"; shift ;;
    --d) d="$2"; shift ;;
    --b) b="$2"; shift ;;
    --reps) reps="$2"; shift ;;
    --sweep) sweep="$2"; shift ;;
    *) echo "mpi_scaling.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
  shift
done
exe="$bin/bench_mpi_field"
[ -x "$exe" ] || { echo "mpi_scaling.sh: $exe not found (build the target bench_mpi_field)" >&2; exit 1; }
mpirun=(mpirun)
[ "$(id -u)" -eq 0 ] && mpirun+=(--allow-run-as-root)
args=(--n "$n" --d "$d" --b "$b" --reps "$reps")

p2=$("${mpirun[@]}" -np 2 "$exe" "${args[@]}" --threads 1)
# One rank of two threads must not be bound to one core (Open MPI binds each rank to a core
# by default when there are no more ranks than cores): its threads would share that core.
t2=$("${mpirun[@]}" --bind-to none -np 1 "$exe" "${args[@]}" --threads 2 --single)
t1=$("${mpirun[@]}" -np 1 "$exe" "${args[@]}" --threads 1 --single)
echo "$p2"; echo "$t2"; echo "$t1"
sec() { sed -E 's/.* seconds=([^ ]+).*/\1/' <<<"$1"; }
red() { sed -E 's/.* allreduce_seconds=([^ ]+).*/\1/' <<<"$1"; }
s_p2=$(sec "$p2") s_t2=$(sec "$t2") s_t1=$(sec "$t1") r_p2=$(red "$p2")
awk -v p2="$s_p2" -v t2="$s_t2" -v t1="$s_t1" -v r="$r_p2" 'BEGIN {
  printf "\n%-28s %12s %10s\n", "configuration", "s / eval", "speed-up"
  printf "%-28s %12.4g %10.3f\n", "1 rank x 1 thread", t1, 1
  printf "%-28s %12.4g %10.3f\n", "1 rank x 2 threads", t2, t1 / t2
  printf "%-28s %12.4g %10.3f\n", "2 ranks x 1 thread (MPI)", p2, t1 / p2
  printf "\n2 ranks / 2 threads time ratio: %.3f; allreduce alone: %.3g s (%.2f %% of an evaluation)\n", p2 / t2, r, 100 * r / p2
}'

if [ -n "$sweep" ]; then
  printf "\n%-10s %12s %12s\n" "ranks" "s / eval" "efficiency"
  base=""
  for p in $sweep; do
    line=$("${mpirun[@]}" --oversubscribe -np "$p" "$exe" "${args[@]}" --threads 1)
    s_p=$(sec "$line")
    [ -z "$base" ] && base=$(awk -v s="$s_p" -v p="$p" 'BEGIN { print s * p }')
    awk -v p="$p" -v s="$s_p" -v b="$base" 'BEGIN { printf "%-10d %12.4g %12.3f\n", p, s, b / (p * s) }'
  done
fi
echo "build: $(sed -E 's/.* flags="([^"]*)".*/\1/' <<<"$t1"); $(mpirun --version 2>/dev/null | head -1); $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
