// Certified pruning of the exact empirical field (docs/math.md, section 4.6): whole solves
// with pruning (pruning_mode::automatic, ε = 1e-12) against the dense field
// (pruning_mode::off) on the same data, in the same run:
//  - clustered synthetic data in d = 64 (100 well-separated clusters), N = 10⁵ (and 10⁶
//    with KINFLOW_BENCH_LARGE=1), B = 256, Euler, 25 uniform steps;
//  - 8gaussians, d = 2, N = 10⁵, B = 4096, Euler, 25 uniform steps (where pruning can do
//    little: `auto` must stay within 1.1x of the dense field);
//  - Fashion-MNIST when Debian's dataset-fashion-mnist is installed: N = 60 000 training
//    images, d = 784 (pixels / 255, centred by the training mean), B = 256, Euler, 100
//    uniform steps, KTS (α0 = β0 = 0.01);
//  - the index's build time against one dense evaluation;
//  - the clustered N = 10⁵ solve with the log-likelihood, dense and pruned (its cost).
// Counter `touched`: the share of (sample, training point) pairs evaluated.
//
// smoke-filter: ^BM_solve<.*>/clustered64/2000/
#include <benchmark/benchmark.h>

#include <kinflow/data/idx.hpp>
#include <kinflow/data/toy2d.hpp>
#include <kinflow/fields/empirical.hpp>
#include <kinflow/fields/shaped.hpp>
#include <kinflow/integrators/explicit_rk.hpp>
#include <kinflow/schedules/time_grid.hpp>

#include "bench_ratios.hpp"

#include <Eigen/Core>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <string>

namespace {

using dyn = kinflow::batch<double>;

dyn normal(Eigen::Index rows, Eigen::Index cols, unsigned seed, double scale = 1) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> nd;
  dyn m(rows, cols);
  for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = scale * nd(gen);
  return m;
}

// 100 cluster centres (std 3 per coordinate), points at std 0.3 about them.
dyn clustered(Eigen::Index d, Eigen::Index n) {
  const dyn C = normal(d, 100, 1, 3.0);
  dyn Y = normal(d, n, 2, 0.3);
  for (Eigen::Index i = 0; i < n; ++i) Y.col(i) += C.col(i % 100);
  return Y;
}

const std::string fashion_file = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz";

// The training sets, built once per name.
const dyn& training_set(const std::string& name, Eigen::Index n) {
  static std::map<std::string, dyn> cache;
  const std::string key = name + "/" + std::to_string(n);
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  dyn Y;
  if (name == "clustered64") {
    Y = clustered(64, n);
  } else if (name == "8gaussians") {
    Y = kinflow::make_dataset("8gaussians", n, 3);
  } else {  // fashion
    Y = kinflow::read_idx(fashion_file, static_cast<std::size_t>(n)).points<double>(255.0);
    Y.colwise() -= Y.rowwise().mean();
  }
  return cache.emplace(key, std::move(Y)).first->second;
}

struct case_spec {
  std::string data;
  Eigen::Index n, batch, steps;
  bool kts;
};

void solve(benchmark::State& state, const case_spec& c, kinflow::pruning_mode mode, bool likelihood = false) {
  const dyn& Y = training_set(c.data, c.n);
  kinflow::empirical_options<double> opt;
  opt.pruning = mode;
  const kinflow::empirical_field<double> field(kinflow::keep_reference, Y, opt);
  const dyn X0 = normal(Y.rows(), c.batch, 7);
  const auto grid = kinflow::time_grid<double>::uniform(static_cast<std::size_t>(c.steps));
  (void)field.velocity(0.99, X0.leftCols(1));  // the index is built once per field, not timed
  field.reset_pruning_statistics();
  kinflow::fixed_step_options o;
  o.likelihood.enabled = likelihood;  // the exact divergence at every step
  for (auto _ : state) {
    dyn X = X0;
    if (c.kts)
      kinflow::integrate(kinflow::shaped(field, kinflow::kts_options{.alpha0 = 0.01, .beta0 = 0.01}), kinflow::euler,
                         grid, X, o);
    else
      kinflow::integrate(field, kinflow::euler, grid, X, o);
    benchmark::DoNotOptimize(X.data());
  }
  state.counters["touched"] = field.pruning_statistics().touched_share();
}

void index_build(benchmark::State& state, const case_spec& c) {
  const dyn& Y = training_set(c.data, c.n);
  const dyn X = normal(Y.rows(), c.batch, 7, 0.1);
  for (auto _ : state) {
    kinflow::empirical_options<double> opt;
    opt.pruning = kinflow::pruning_mode::on;
    const kinflow::empirical_field<double> field(kinflow::keep_reference, Y, opt);
    (void)field.velocity(0.99, X.leftCols(1));  // builds the index (one query: negligible)
  }
}

void dense_evaluation(benchmark::State& state, const case_spec& c) {
  const dyn& Y = training_set(c.data, c.n);
  const dyn X = normal(Y.rows(), c.batch, 7, 0.1);
  kinflow::empirical_options<double> opt;
  opt.pruning = kinflow::pruning_mode::off;
  const kinflow::empirical_field<double> field(kinflow::keep_reference, Y, opt);
  dyn V;
  for (auto _ : state) field(0.5, X, V);
}

void register_case(const std::string& label, const case_spec& c) {
  const std::string tail = "/" + label + "/" + std::to_string(c.n);
  benchmark::RegisterBenchmark(("BM_solve<dense>" + tail).c_str(),
                               [c](benchmark::State& s) { solve(s, c, kinflow::pruning_mode::off); })
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  benchmark::RegisterBenchmark(("BM_solve<pruned>" + tail).c_str(),
                               [c](benchmark::State& s) { solve(s, c, kinflow::pruning_mode::automatic); })
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
}

// The cost of the log-likelihood (the exact divergence in the velocity's pass, docs/math.md
// §4.5), dense and pruned.
void register_likelihood(const std::string& label, const case_spec& c) {
  const std::string tail = "/" + label + "/" + std::to_string(c.n);
  for (const auto mode : {kinflow::pruning_mode::off, kinflow::pruning_mode::automatic}) {
    const std::string m = mode == kinflow::pruning_mode::off ? "dense" : "pruned";
    benchmark::RegisterBenchmark(("BM_likelihood<" + m + ">" + tail).c_str(),
                                 [c, mode](benchmark::State& s) { solve(s, c, mode, true); })
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  }
}

// The index's build time beside one dense evaluation of the same data.
void register_index_cost(const std::string& label, const case_spec& c) {
  const std::string tail = "<" + label + ">/" + std::to_string(c.n);
  benchmark::RegisterBenchmark(("BM_index_build" + tail).c_str(), [c](benchmark::State& s) { index_build(s, c); })
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  benchmark::RegisterBenchmark(("BM_one_dense_evaluation" + tail).c_str(),
                               [c](benchmark::State& s) { dense_evaluation(s, c); })
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
}

}  // namespace

int main(int argc, char** argv) {
  register_case("clustered64", {"clustered64", 2000, 64, 10, false});
  register_case("clustered64", {"clustered64", 100000, 256, 25, false});
  register_likelihood("clustered64", {"clustered64", 100000, 256, 25, false});
  if (const char* large = std::getenv("KINFLOW_BENCH_LARGE"); large != nullptr && std::string(large) == "1")
    register_case("clustered64", {"clustered64", 1000000, 256, 25, false});
  register_case("8gaussians", {"8gaussians", 100000, 4096, 25, false});
  if (std::filesystem::exists(fashion_file)) {
    const case_spec fashion{"fashion", 60000, 256, 100, true};
    register_case("fashion_kts", fashion);
    register_index_cost("fashion", fashion);
  }
  register_index_cost("clustered64", {"clustered64", 100000, 256, 25, false});
  return kinflow_bench::run_with_ratios(argc, argv,
                                        {{"<pruned>", "<dense>", "pruned/dense"},
                                         {"BM_likelihood<dense>", "BM_solve<dense>", "likelihood cost"},
                                         {"BM_likelihood<pruned>", "BM_solve<pruned>", "likelihood cost"},
                                         {"BM_index_build", "BM_one_dense_evaluation", "build/eval"}});
}
