// The distributed exact field against the single-process one, on one machine: seconds per
// velocity evaluation of kinflow::mpi::distributed_empirical_field (P ranks, T threads each)
// or of kinflow::empirical_field (one rank, T threads), for N training points in d
// dimensions and a batch of B samples, and the time of one MPI_Allreduce of the same
// B·(d + 5) scalars (the reduced records plus the status record) alone.
//
//   mpirun -np P bench_mpi_field [--n N] [--d D] [--b B] [--threads T] [--reps R] [--single]
//
// --single times kinflow::empirical_field (run it with one rank). Every rank generates only
// its own shard. Prints one line of key=value pairs (rank 0); bench/mpi_scaling.sh runs the
// configurations of docs/mpi.md and prints their ratios.
#include <mpi.h>

#include <kinflow/fields/empirical.hpp>
#include <kinflow/mpi/empirical.hpp>

#include <Eigen/Core>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#ifndef KINFLOW_BENCH_FLAGS
#define KINFLOW_BENCH_FLAGS "unknown"
#endif

namespace {

long arg(int argc, char** argv, const std::string& name, long fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (name == argv[i]) return std::strtol(argv[i + 1], nullptr, 10);
  return fallback;
}

bool flag(int argc, char** argv, const std::string& name) {
  for (int i = 1; i < argc; ++i)
    if (name == argv[i]) return true;
  return false;
}

Eigen::MatrixXd normal(Eigen::Index rows, Eigen::Index cols, unsigned seed) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> dist;
  Eigen::MatrixXd m(rows, cols);
  for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = dist(gen);
  return m;
}

template <class Field>
std::vector<double> time_velocity(const Field& field, const Eigen::MatrixXd& X, int reps) {
  Eigen::MatrixXd V;
  field(0.5, X, V);  // warm-up
  std::vector<double> seconds;
  for (int r = 0; r < reps; ++r) {
    MPI_Barrier(MPI_COMM_WORLD);
    const double t0 = MPI_Wtime();
    field(0.5, X, V);
    seconds.push_back(MPI_Wtime() - t0);
  }
  return seconds;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, ranks = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  const Eigen::Index n = arg(argc, argv, "--n", 100000), d = arg(argc, argv, "--d", 64),
                     b = arg(argc, argv, "--b", 256);
  const auto threads = static_cast<unsigned>(arg(argc, argv, "--threads", 1));
  const int reps = static_cast<int>(arg(argc, argv, "--reps", 5));
  const bool single = flag(argc, argv, "--single");
  const Eigen::MatrixXd X = normal(d, b, 1);
  kinflow::empirical_options<double> opt;
  opt.threads = threads;
  std::vector<double> seconds;
  if (single) {
    const kinflow::empirical_field<double> field(normal(d, n, 2), opt);
    seconds = time_velocity(field, X, reps);
  } else {
    const kinflow::mpi::shard_range s = kinflow::mpi::balanced_shard(MPI_COMM_WORLD, n);
    const kinflow::mpi::distributed_empirical_field<double> field(
        MPI_COMM_WORLD, normal(d, s.count, 100 + static_cast<unsigned>(rank)), opt);
    seconds = time_velocity(field, X, reps);
  }
  // The reduction alone: the same number of scalars, summed.
  std::vector<double> buffer(static_cast<std::size_t>(b * (d + 5)), 1.0);
  std::vector<double> reduce;
  for (int r = 0; r < std::max(reps, 20); ++r) {
    MPI_Barrier(MPI_COMM_WORLD);
    const double t0 = MPI_Wtime();
    MPI_Allreduce(MPI_IN_PLACE, buffer.data(), static_cast<int>(buffer.size()), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    reduce.push_back(MPI_Wtime() - t0);
  }
  // The slowest rank's time counts.
  double mine = median(seconds), slowest = 0, reduce_mine = median(reduce), reduce_slowest = 0;
  MPI_Reduce(&mine, &slowest, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
  MPI_Reduce(&reduce_mine, &reduce_slowest, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
  if (rank == 0) {
    const double flops = 4.0 * static_cast<double>(n) * static_cast<double>(b) * static_cast<double>(d);
    std::printf("field=%s ranks=%d threads=%u n=%ld d=%ld b=%ld reps=%d seconds=%.6g gflops=%.4g "
                "allreduce_seconds=%.6g allreduce_bytes=%ld flags=\"%s\"\n",
                single ? "empirical_field" : "distributed_empirical_field", ranks, threads, static_cast<long>(n),
                static_cast<long>(d), static_cast<long>(b), reps, slowest, flops / slowest * 1e-9,
                reduce_slowest, static_cast<long>(buffer.size() * sizeof(double)), KINFLOW_BENCH_FLAGS);
  }
  MPI_Finalize();
  return 0;
}
