// Full sampling runs on the empirical flow-matching field: Euler with Kinetic Trajectory
// Shaping (the paper's balanced gain, alpha0 = beta0 = 0.01, tau = 0.6) and the kinetic path
// energy on, at the sizes of the paper's toy experiments and of a mid-size image-like set:
//
//   d = 2,    N = 1024 training points, B = 4096 samples, 100 uniform Euler steps
//   d = 1024, N = 1024 training points, B = 1024 samples,  20 uniform Euler steps
//
// in float and double, with KTS+KPE on and everything off (the ratio is the cost of both).
// Counter: sec/pair-step, the time per (sample, training point) pair per step.
//
// The cost of a stochastic sampler's step (sde-euler, sde-heun, renoise-euler) against Euler's,
// d = 2, N = 1024, B = 4096, 100 steps, double.
//
// And the cost of the log-likelihood (RK4, 25 steps, double; with the KPE both ways):
//
//   d = 2,  N = 1024, B = 4096        d = 64, N = 1024, B = 1024 and 4096
//
// The same program is the kinflow half of the PyTorch comparison (bench/compare.sh):
//
//   bench_sampling --compare <dir> [--dim 2] [--train 1024] [--batch 4096] [--steps 100]
//                  [--scalar float|double] [--threads 0] [--reps 5] [--seed 1] [--tile 0]
//                  [--pruning auto|on|off]
//
// writes <dir>/train.csv (N rows of d values) and <dir>/noise.csv (B rows), samples them
// with kinflow `--reps` times, and writes <dir>/kinflow_samples.csv (B rows of d values),
// <dir>/kinflow_energy.csv (B rows: total, early, late) and <dir>/kinflow_time.txt (median
// seconds of one sampling run); `--tile` sets fixed_step_options::tile_columns (0: the
// default), `--pruning` the field's pruning mode (default auto). bench/pytorch_sampler.py
// then runs the PyTorch sampler on the same CSV inputs and compares.
//
// smoke-filter: ^smoke/

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <numbers>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench_ratios.hpp"
#include "kinflow/data/random.hpp"
#include "kinflow/data/toy2d.hpp"
#include "kinflow/fields/empirical.hpp"
#include "kinflow/fields/shaped.hpp"
#include "kinflow/integrators/explicit_rk.hpp"
#include "kinflow/integrators/stochastic.hpp"
#include "kinflow/schedules/kts.hpp"

namespace {


using dmatrix = Eigen::MatrixXd;

// Training set (d x N): in 2-D the "8 Gaussians" toy set (centres at radius 4 on the compass
// directions, std 0.5, divided by 1.414); in higher dimensions standard normal points.
dmatrix training_set(Eigen::Index d, Eigen::Index N, std::uint64_t seed) {
  if (d == 2) return kinflow::toy::eight_gaussians(N, seed);
  return kinflow::standard_normal(d, N, seed);
}

// Noise x0 ~ N(0, I), d x B.
dmatrix noise(Eigen::Index d, Eigen::Index B, std::uint64_t seed) {
  return kinflow::standard_normal(d, B, seed ^ 0x9e3779b97f4a7c15ULL);
}

const kinflow::kts_gain& balanced_gain() {
  static const kinflow::kts_gain g = kinflow::kts_gain::balanced();
  return g;
}

// One sampling run: Euler over a uniform grid, X stepped in place. With `shaped_kpe`, the
// field is shaped by the balanced KTS gain and the left-Riemann energy (for Euler the same
// as the stage-consistent one) is accumulated; otherwise neither.
template <class Scalar, int Dim>
kinflow::solve_result<Scalar> sample(const kinflow::empirical_field<Scalar, Dim>& field,
                                     kinflow::batch<Scalar, Dim>& X, std::size_t steps,
                                     bool shaped_kpe, Eigen::Index tile_columns = 0) {
  kinflow::fixed_step_options opt;
  opt.tile_columns = tile_columns;
  opt.kpe.enabled = shaped_kpe;
  opt.kpe.quadrature = kinflow::kpe_quadrature::left_riemann;
  const auto grid = kinflow::time_grid<>::uniform(steps);
  if (shaped_kpe) return kinflow::integrate(kinflow::shaped(field, balanced_gain()), kinflow::euler, grid, X, opt);
  return kinflow::integrate(field, kinflow::euler, grid, X, opt);
}

struct problem {
  Eigen::Index d, N, B;
  std::size_t steps;
};

template <class Scalar, int Dim>
void bm_sampling(benchmark::State& state, problem p, bool shaped_kpe) {
  const dmatrix Y = training_set(p.d, p.N, 1);
  const kinflow::batch<Scalar, Dim> x0 = noise(p.d, p.B, 1).cast<Scalar>();
  const kinflow::empirical_field<Scalar, Dim> field(Y.cast<Scalar>().eval());
  kinflow::batch<Scalar, Dim> X;
  for (auto _ : state) {
    state.PauseTiming();
    X = x0;
    state.ResumeTiming();
    auto r = sample(field, X, p.steps, shaped_kpe);
    benchmark::DoNotOptimize(X.data());
    benchmark::DoNotOptimize(r.nfe.data());
  }
  state.counters["sec/pair-step"] = benchmark::Counter(
      static_cast<double>(p.B) * static_cast<double>(p.N) * static_cast<double>(p.steps),
      benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

template <class Scalar, int Dim>
void register_problem(const std::string& prefix, problem p) {
  const std::string type = sizeof(Scalar) == 4 ? "float" : "double";
  const std::string base = prefix + "/d" + std::to_string(p.d) + "_N" + std::to_string(p.N) + "_B" +
                           std::to_string(p.B) + "_euler" + std::to_string(p.steps) + "/" + type;
  for (bool on : {true, false})
    benchmark::RegisterBenchmark((base + (on ? "/kts+kpe" : "/plain")).c_str(),
                                 [p, on](benchmark::State& s) { bm_sampling<Scalar, Dim>(s, p, on); })
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
}

// The cost of the log-likelihood: RK4 with the kinetic path energy, with and without the
// log-likelihood (the empirical field's exact divergence at every stage, gathered in the
// velocity's pass over the training set: docs/math.md §4.5).
template <class Scalar, int Dim>
void bm_likelihood(benchmark::State& state, problem p, bool likelihood) {
  const dmatrix Y = training_set(p.d, p.N, 1);
  const kinflow::batch<Scalar, Dim> x0 = noise(p.d, p.B, 1).cast<Scalar>();
  const kinflow::empirical_field<Scalar, Dim> field(Y.cast<Scalar>().eval());
  kinflow::fixed_step_options opt;
  opt.likelihood.enabled = likelihood;
  const auto grid = kinflow::time_grid<>::uniform(p.steps);
  kinflow::batch<Scalar, Dim> X;
  for (auto _ : state) {
    state.PauseTiming();
    X = x0;
    state.ResumeTiming();
    auto r = kinflow::integrate(field, kinflow::rk4, grid, X, opt);
    benchmark::DoNotOptimize(X.data());
    benchmark::DoNotOptimize(r.log_likelihood.data());
  }
}

template <class Scalar, int Dim>
void register_likelihood(const std::string& prefix, problem p) {
  const std::string base = prefix + "/d" + std::to_string(p.d) + "_N" + std::to_string(p.N) + "_B" +
                           std::to_string(p.B) + "_rk4_" + std::to_string(p.steps) + "/" +
                           (sizeof(Scalar) == 4 ? "float" : "double");
  for (bool on : {false, true})
    benchmark::RegisterBenchmark((base + (on ? "/kpe+likelihood" : "/kpe")).c_str(),
                                 [p, on](benchmark::State& s) { bm_likelihood<Scalar, Dim>(s, p, on); })
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
}

// The cost of a stochastic step against Euler's on the exact field (double, the energies on:
// the kinetic energy for Euler; with it the drift and control energies for the SDEs).
void bm_stochastic(benchmark::State& state, problem p, const std::string& method) {
  const dmatrix Y = training_set(p.d, p.N, 1);
  const kinflow::batch<double, 2> x0 = noise(p.d, p.B, 1);
  kinflow::empirical_options<double> fo;
  fo.threads = 1;  // one thread: the ratio is the step's, not the pool's
  const kinflow::empirical_field<double, 2> field(Y, fo);
  const auto grid = kinflow::time_grid<>::uniform(p.steps);
  kinflow::stochastic_options opt;
  opt.diffusion = kinflow::parse_diffusion("sigma");
  opt.last_step = kinflow::last_step_rule::denoise;
  kinflow::batch<double, 2> X;
  for (auto _ : state) {
    state.PauseTiming();
    X = x0;
    state.ResumeTiming();
    if (method == "ode-euler") {
      auto r = kinflow::integrate(field, kinflow::euler, grid, X, static_cast<const kinflow::fixed_step_options&>(opt));
      benchmark::DoNotOptimize(r.nfe.data());
    } else {
      auto r = kinflow::integrate(field, kinflow::stochastic_method_by_name(method), grid, X, opt);
      benchmark::DoNotOptimize(r.nfe.data());
    }
    benchmark::DoNotOptimize(X.data());
  }
}

void register_stochastic(const std::string& prefix, problem p) {
  const std::string base = prefix + "/d2_N" + std::to_string(p.N) + "_B" + std::to_string(p.B) + "_" +
                           std::to_string(p.steps) + "/double/";
  for (const char* m : {"ode-euler", "sde-euler", "sde-heun", "renoise-euler"})
    benchmark::RegisterBenchmark((base + m).c_str(), [p, m](benchmark::State& s) { bm_stochastic(s, p, m); })
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
}

void register_all() {
  register_stochastic("stochastic", {2, 1024, 4096, 100});
  register_stochastic("smoke", {2, 32, 64, 5});
  register_likelihood<double, 2>("likelihood", {2, 1024, 4096, 25});
  register_likelihood<double, Eigen::Dynamic>("likelihood", {64, 1024, 1024, 25});
  register_likelihood<double, Eigen::Dynamic>("likelihood", {64, 1024, 4096, 25});
  register_likelihood<double, 2>("smoke", {2, 32, 64, 5});
  register_problem<float, 2>("sampling", {2, 1024, 4096, 100});
  register_problem<double, 2>("sampling", {2, 1024, 4096, 100});
  register_problem<float, Eigen::Dynamic>("sampling", {1024, 1024, 1024, 20});
  register_problem<double, Eigen::Dynamic>("sampling", {1024, 1024, 1024, 20});
  // Tiny sizes, run by CTest so the programs keep working.
  register_problem<float, 2>("smoke", {2, 32, 64, 5});
  register_problem<double, Eigen::Dynamic>("smoke", {16, 32, 16, 5});
}

// ---- comparison mode ---------------------------------------------------------------

struct compare_args {
  std::string dir;
  Eigen::Index d = 2, N = 1024, B = 4096;
  std::size_t steps = 100;
  std::string scalar = "float";
  unsigned threads = 0;
  int reps = 5;
  std::uint64_t seed = 1;
  Eigen::Index tile = 0;
  kinflow::pruning_mode pruning = kinflow::pruning_mode::automatic;
};

// Rows of the CSV are points: writes M (d x n) transposed.
template <class Derived>
void write_points(const std::filesystem::path& path, const Eigen::MatrixBase<Derived>& M) {
  std::ofstream out(path);
  if (!out) throw std::runtime_error("cannot write " + path.string());
  out.precision(std::numeric_limits<double>::max_digits10);
  for (Eigen::Index j = 0; j < M.cols(); ++j) {
    for (Eigen::Index i = 0; i < M.rows(); ++i) {
      if (i) out << ',';
      out << static_cast<double>(M(i, j));
    }
    out << '\n';
  }
}

template <class Scalar, int Dim>
int run_compare(const compare_args& a) {
  namespace fs = std::filesystem;
  const fs::path dir(a.dir);
  fs::create_directories(dir);
  const dmatrix Y = training_set(a.d, a.N, a.seed), X0 = noise(a.d, a.B, a.seed);
  // The CSV holds the double values; both samplers round them to their scalar type alike.
  write_points(dir / "train.csv", Y);
  write_points(dir / "noise.csv", X0);

  kinflow::empirical_options<Scalar> opt;
  opt.threads = a.threads;
  opt.pruning = a.pruning;
  const kinflow::empirical_field<Scalar, Dim> field(Y.cast<Scalar>().eval(), opt);
  const kinflow::batch<Scalar, Dim> x0 = X0.cast<Scalar>();
  kinflow::batch<Scalar, Dim> X;
  kinflow::solve_result<Scalar> r;
  std::vector<double> seconds;
  X = x0.leftCols(std::min<Eigen::Index>(a.B, 64));  // warm-up, untimed
  sample(field, X, std::min<std::size_t>(a.steps, 2), true);
  for (int rep = 0; rep < std::max(a.reps, 1); ++rep) {
    X = x0;
    const auto start = std::chrono::steady_clock::now();
    r = sample(field, X, a.steps, true, a.tile);
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(seconds.begin(), seconds.end());
  const double median = seconds[seconds.size() / 2];

  write_points(dir / "kinflow_samples.csv", X);
  Eigen::Matrix<Scalar, 3, Eigen::Dynamic> E(3, a.B);
  E.row(0) = r.kpe.total.transpose();
  E.row(1) = r.kpe.early.transpose();
  E.row(2) = r.kpe.late.transpose();
  write_points(dir / "kinflow_energy.csv", E);
  std::ofstream(dir / "kinflow_time.txt") << median << '\n';
  const kinflow::pruning_stats pruned = field.pruning_statistics();
  std::printf("kinflow: d=%ld N=%ld B=%ld steps=%zu %s threads=%u: median %.4f s over %d runs "
              "(%llu of %llu passes pruned, %.3f of the points touched)\n",
              static_cast<long>(a.d), static_cast<long>(a.N), static_cast<long>(a.B), a.steps,
              a.scalar.c_str(), opt.threads, median, std::max(a.reps, 1),
              static_cast<unsigned long long>(pruned.pruned_evaluations),
              static_cast<unsigned long long>(pruned.evaluations), pruned.touched_share());
  return 0;
}

int compare_main(int argc, char** argv) {
  compare_args a;
  for (int i = 1; i < argc; ++i) {
    const std::string key = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument("missing value after " + key);
      return argv[++i];
    };
    if (key == "--compare") a.dir = value();
    else if (key == "--dim") a.d = std::stol(value());
    else if (key == "--train") a.N = std::stol(value());
    else if (key == "--batch") a.B = std::stol(value());
    else if (key == "--steps") a.steps = std::stoul(value());
    else if (key == "--scalar") a.scalar = value();
    else if (key == "--threads") a.threads = static_cast<unsigned>(std::stoul(value()));
    else if (key == "--reps") a.reps = std::stoi(value());
    else if (key == "--seed") a.seed = std::stoull(value());
    else if (key == "--tile") a.tile = std::stol(value());
    else if (key == "--pruning") {
      const std::string mode = value();
      if (mode == "auto") a.pruning = kinflow::pruning_mode::automatic;
      else if (mode == "on") a.pruning = kinflow::pruning_mode::on;
      else if (mode == "off") a.pruning = kinflow::pruning_mode::off;
      else throw std::invalid_argument("--pruning must be auto, on or off, not " + mode);
    }
    else throw std::invalid_argument("unknown option " + key);
  }
  if (a.d < 1 || a.N < 1 || a.B < 1 || a.steps < 1) throw std::invalid_argument("sizes must be >= 1");
  const bool is_float = a.scalar == "float";
  if (!is_float && a.scalar != "double") throw std::invalid_argument("--scalar must be float or double");
  if (a.d == 2) return is_float ? run_compare<float, 2>(a) : run_compare<double, 2>(a);
  return is_float ? run_compare<float, Eigen::Dynamic>(a) : run_compare<double, Eigen::Dynamic>(a);
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--compare") {
      try {
        return compare_main(argc, argv);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_sampling: %s\n", e.what());
        return 2;
      }
    }
  }
  register_all();
  return kinflow_bench::run_with_ratios(argc, argv,
                                        {{"/kts+kpe", "/plain", "KTS+KPE/off"},
                                         {"/kpe+likelihood", "/kpe", "likelihood cost"},
                                         {"/float/", "/double/", "float/double"},
                                         {"/sde-euler", "/ode-euler", "sde-euler/euler"},
                                         {"/sde-heun", "/ode-euler", "sde-heun/euler"},
                                         {"/renoise-euler", "/ode-euler", "renoise-euler/euler"}});
}
