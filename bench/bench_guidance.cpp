// Classifier-free guidance on the exact class-conditional field (docs/math.md, sections 3.5
// and 6.5), in the same run:
//  - one evaluation of both velocities, v_u and v_c (class_conditional_field::velocity_pair,
//    one pass over the classes' merged states), against v_u alone (empirical_field of all
//    points): N = 10⁴ points in 10 classes, d = 2 and 64, B = 256 samples of mixed classes,
//    t = 0.5, pruning off for both (the pass itself);
//  - v_c alone (class_conditional_field's operator(): each class streams only its own
//    samples) against v_u alone;
//  - a whole guided solve (w = 3, Euler, 50 steps) against the unguided solve of v_u.
// Ratios "pair/plain": the cost of the conditional field and guidance over the plain field;
// "conditional/plain": v_c alone over v_u (about 1/10 of the pairs with 10 classes).
//
// smoke-filter: ^BM_(pair|plain)<evaluation>/2/2000/
#include <benchmark/benchmark.h>

#include <kinflow/fields/class_conditional.hpp>
#include <kinflow/fields/guidance.hpp>
#include <kinflow/integrators/explicit_rk.hpp>
#include <kinflow/schedules/time_grid.hpp>

#include "bench_ratios.hpp"

#include <Eigen/Core>
#include <random>
#include <string>

namespace {

using dyn = kinflow::batch<double>;
constexpr Eigen::Index classes = 10, batch = 256;

struct problem {
  dyn Y;
  kinflow::class_labels labels;
  dyn X;
  kinflow::class_labels C;
};

// Ten clusters (std 2 per coordinate) with points at std 0.5 about them, labelled by cluster.
problem make_problem(Eigen::Index d, Eigen::Index n) {
  std::mt19937_64 gen(5);
  std::normal_distribution<double> nd;
  problem p{dyn(d, n), kinflow::class_labels(n), dyn(d, batch), kinflow::class_labels(batch)};
  dyn centres(d, classes);
  for (Eigen::Index i = 0; i < centres.size(); ++i) centres.data()[i] = 2 * nd(gen);
  for (Eigen::Index i = 0; i < n; ++i) {
    p.labels(i) = i % classes;
    for (Eigen::Index r = 0; r < d; ++r) p.Y(r, i) = centres(r, p.labels(i)) + 0.5 * nd(gen);
  }
  for (Eigen::Index i = 0; i < p.X.size(); ++i) p.X.data()[i] = nd(gen);
  for (Eigen::Index j = 0; j < batch; ++j) p.C(j) = j % classes;
  return p;
}

kinflow::empirical_options<double> dense() {
  kinflow::empirical_options<double> o;
  o.pruning = kinflow::pruning_mode::off;
  return o;
}

void pair(benchmark::State& state, Eigen::Index d, Eigen::Index n) {
  const problem p = make_problem(d, n);
  const kinflow::class_conditional_field<double> field(p.Y, p.labels, dense());
  dyn U, Vc;
  for (auto _ : state) {
    field.velocity_pair(0.5, p.X, p.C, U, Vc);
    benchmark::DoNotOptimize(Vc.data());
  }
}

void conditional(benchmark::State& state, Eigen::Index d, Eigen::Index n) {
  const problem p = make_problem(d, n);
  const kinflow::class_conditional_field<double> field(p.Y, p.labels, dense());
  dyn Vc;
  for (auto _ : state) {
    field(0.5, p.X, p.C, Vc);
    benchmark::DoNotOptimize(Vc.data());
  }
}
void plain(benchmark::State& state, Eigen::Index d, Eigen::Index n) {
  const problem p = make_problem(d, n);
  const kinflow::empirical_field<double> field(p.Y, dense());
  dyn V;
  for (auto _ : state) {
    field(0.5, p.X, V);
    benchmark::DoNotOptimize(V.data());
  }
}

void guided_solve(benchmark::State& state, Eigen::Index d, Eigen::Index n) {
  const problem p = make_problem(d, n);
  const kinflow::class_conditional_field<double> field(p.Y, p.labels, dense());
  const auto g = kinflow::guided(field, p.C, {.scale = 3.0});
  const auto grid = kinflow::time_grid<double>::uniform(50);
  for (auto _ : state) {
    dyn X = p.X;
    kinflow::integrate(g, kinflow::euler, grid, X);
    benchmark::DoNotOptimize(X.data());
  }
}

void plain_solve(benchmark::State& state, Eigen::Index d, Eigen::Index n) {
  const problem p = make_problem(d, n);
  const kinflow::empirical_field<double> field(p.Y, dense());
  const auto grid = kinflow::time_grid<double>::uniform(50);
  for (auto _ : state) {
    dyn X = p.X;
    kinflow::integrate(field, kinflow::euler, grid, X);
    benchmark::DoNotOptimize(X.data());
  }
}

void add(const std::string& name, void (*run)(benchmark::State&, Eigen::Index, Eigen::Index), Eigen::Index d,
         Eigen::Index n) {
  benchmark::RegisterBenchmark((name + "/" + std::to_string(d) + "/" + std::to_string(n)).c_str(),
                               [run, d, n](benchmark::State& s) { run(s, d, n); })
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
}

}  // namespace

int main(int argc, char** argv) {
  for (const Eigen::Index d : {2, 64}) {
    for (const Eigen::Index n : {2000, 10000}) {
      add("BM_pair<evaluation>", pair, d, n);
      add("BM_conditional<evaluation>", conditional, d, n);
      add("BM_plain<evaluation>", plain, d, n);
    }
    add("BM_pair<solve>", guided_solve, d, 10000);
    add("BM_plain<solve>", plain_solve, d, 10000);
  }
  return kinflow_bench::run_with_ratios(argc, argv, {{"BM_pair", "BM_plain", "pair/plain"}, {"BM_conditional", "BM_plain", "conditional/plain"}});
}
