// Metrics of docs/math.md §10 on 2D toy data (8gaussians):
//  - two nearest neighbours of Q queries among N = 10 000 reference points with kinflow's
//    k-d tree (build included, single thread), against a brute-force scan of all pairs in
//    the same run (the obvious peer: one pass per query keeping the two smallest squared
//    distances); the issue asks for Q = 100 000 well under a second;
//  - F_mem with its 1000-resample bootstrap CI; exact W2 (assignment) for n points;
//    sliced W2 (256 directions) and the unbiased MMD² (5 bandwidths) for n against n.
//
// smoke-filter: ^BM_two_nearest<.*>/1000/1000$
#include <benchmark/benchmark.h>

#include <kinflow/data/toy2d.hpp>
#include <kinflow/metrics/memorization.hpp>
#include <kinflow/metrics/mmd.hpp>
#include <kinflow/metrics/nearest_neighbors.hpp>
#include <kinflow/metrics/wasserstein.hpp>

#include <Eigen/Core>
#include <limits>

#include "bench_ratios.hpp"

namespace {

using points = kinflow::batch<double, 2>;

// Brute-force two nearest distances (squared) of each query.
Eigen::Matrix2Xd brute_two_nearest(const points& q, const points& ref) {
  Eigen::Matrix2Xd out(2, q.cols());
  for (Eigen::Index c = 0; c < q.cols(); ++c) {
    double d1 = std::numeric_limits<double>::infinity(), d2 = d1;
    const double qx = q(0, c), qy = q(1, c);
    for (Eigen::Index j = 0; j < ref.cols(); ++j) {
      const double dx = ref(0, j) - qx, dy = ref(1, j) - qy, d = dx * dx + dy * dy;
      if (d < d2) {
        if (d < d1) {
          d2 = d1;
          d1 = d;
        } else {
          d2 = d;
        }
      }
    }
    out(0, c) = d1;
    out(1, c) = d2;
  }
  return out;
}

void BM_two_nearest_kdtree(benchmark::State& state) {
  const points ref = kinflow::toy::eight_gaussians(state.range(0), 1);
  const points q = kinflow::toy::eight_gaussians(state.range(1), 2);
  for (auto _ : state) {
    const kinflow::nearest_neighbor_index<double, 2> index(ref);
    auto r = index.query(q, 2);
    benchmark::DoNotOptimize(r.distances.data());
  }
  state.counters["queries"] = benchmark::Counter(static_cast<double>(q.cols()),
                                                 benchmark::Counter::kIsIterationInvariantRate);
}

void BM_two_nearest_brute(benchmark::State& state) {
  const points ref = kinflow::toy::eight_gaussians(state.range(0), 1);
  const points q = kinflow::toy::eight_gaussians(state.range(1), 2);
  for (auto _ : state) {
    auto r = brute_two_nearest(q, ref);
    benchmark::DoNotOptimize(r.data());
  }
  state.counters["queries"] = benchmark::Counter(static_cast<double>(q.cols()),
                                                 benchmark::Counter::kIsIterationInvariantRate);
}

void BM_memorization(benchmark::State& state) {
  const points train = kinflow::toy::eight_gaussians(10000, 1);
  const points x = kinflow::toy::eight_gaussians(state.range(0), 3);
  for (auto _ : state) {
    auto r = kinflow::memorization(x, train);
    benchmark::DoNotOptimize(r.fraction);
  }
}

void BM_exact_w2(benchmark::State& state) {
  const points x = kinflow::toy::eight_gaussians(state.range(0), 4);
  const points y = kinflow::toy::eight_gaussians(state.range(0), 5);
  for (auto _ : state) benchmark::DoNotOptimize(kinflow::exact_wasserstein2(x, y).distance);
}

void BM_sliced_w2(benchmark::State& state) {
  const points x = kinflow::toy::eight_gaussians(state.range(0), 6);
  const points y = kinflow::toy::eight_gaussians(state.range(0), 7);
  for (auto _ : state) benchmark::DoNotOptimize(kinflow::sliced_wasserstein2(x, y));
}

void BM_mmd2(benchmark::State& state) {
  const points x = kinflow::toy::eight_gaussians(state.range(0), 8);
  const points y = kinflow::toy::eight_gaussians(state.range(0), 9);
  for (auto _ : state) benchmark::DoNotOptimize(kinflow::mmd2(x, y).mmd2);
}

}  // namespace

BENCHMARK(BM_two_nearest_kdtree)->Name("BM_two_nearest<kdtree>")
    ->Args({1000, 1000})->Args({10000, 10000})->Args({10000, 100000})
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_two_nearest_brute)->Name("BM_two_nearest<brute>")
    ->Args({1000, 1000})->Args({10000, 10000})->Args({10000, 100000})
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_memorization)->Arg(10000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_exact_w2)->Arg(100)->Arg(500)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_sliced_w2)->Arg(10000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_mmd2)->Arg(1000)->Unit(benchmark::kMillisecond);

int main(int argc, char** argv) {
  return kinflow_bench::run_with_ratios(argc, argv, {{"<kdtree>", "<brute>", "vs brute"}});
}
