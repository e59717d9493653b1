// kinflow against Boost.Odeint in the same program, on the same empirical flow-matching
// field (the velocity costs the same on both sides; what differs is how the integrators
// drive it).
//
// 1. Fixed-step RK4 batch sampling with KTS (balanced gain) and the kinetic path energy:
//      d = 2,    N = 1024, B = 4096, 25 RK4 steps (100 evaluations per sample)
//      d = 1024, N = 1024, B = 1024,  5 RK4 steps ( 20 evaluations per sample)
//    kinflow accumulates the energy from its stages at no extra evaluation; odeint, whose
//    observers do not see the stages, carries it as one more state row E' = ½‖ṽ‖² (the same
//    quadrature). odeint runs with three state layouts and the fastest is the peer:
//      batch-eigen   the d x B (or (d+1) x B) Eigen matrix, vector_space_algebra
//      batch-vector  the batch as one std::vector<double>, range_algebra
//      per-sample    one odeint solve per sample (std::array / std::vector), the samples
//                    split over as many std::threads as the field would use
//    Pairs without the energy ("plain") are measured too. kinflow runs with its default
//    column tiles (fixed_step_options::tile_columns = 0, sized for cheap fields) and with
//    the whole batch as one tile ("kinflow-untiled": one field call per stage, as odeint).
//
// 2. Dormand–Prince NFE against accuracy, printed after the benchmarks: kinflow's dopri5
//    (one step size per sample; with its default I controller and with the PI controller)
//    and odeint's controlled runge_kutta_dopri5 on the whole batch
//    (one step size for all) and per sample, at tolerances 1e-2 … 1e-8 in quarter decades,
//    on a batch of noise samples and on a batch mixing easy samples with hard ones (started
//    near the data mean, where the posterior stays undecided until late). Error: largest
//    distance of x(1) from a reference (odeint per sample at 1e-12) over the samples. Then,
//    per error target, the fewest evaluations per sample each integrator needed to reach it.
//
// `--nfe-only` skips the timings, `--nfe-small` shrinks the accuracy problems (CI smoke).
//
// smoke-filter: ^smoke/

#include <benchmark/benchmark.h>

#if KINFLOW_BENCH_HAVE_BOOST
#include <boost/numeric/odeint.hpp>
#include <boost/numeric/odeint/external/eigen/eigen.hpp>

// Eigen 3.4 gave its vectors begin()/end(), so odeint's copy treats an Eigen state as a
// range and fails to compile (dopri5's FSAL copies); plain assignment is the right copy.
namespace boost::numeric::odeint {
template <class S, int R, int C, int O, int MR, int MC>
struct copy_impl<Eigen::Matrix<S, R, C, O, MR, MC>, Eigen::Matrix<S, R, C, O, MR, MC>> {
  static void copy(const Eigen::Matrix<S, R, C, O, MR, MC>& from, Eigen::Matrix<S, R, C, O, MR, MC>& to) {
    to = from;
  }
};
}  // namespace boost::numeric::odeint
#endif

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <map>
#include <numbers>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench_ratios.hpp"
#include "kinflow/data/random.hpp"
#include "kinflow/data/toy2d.hpp"
#include "kinflow/fields/empirical.hpp"
#include "kinflow/fields/gaussian_mixture.hpp"
#include "kinflow/fields/shaped.hpp"
#include "kinflow/integrators/adaptive.hpp"
#include "kinflow/integrators/explicit_rk.hpp"
#include "kinflow/schedules/kts.hpp"

namespace {

// ---- data --------------------------------------------------------------------------

// 2-D: the "8 Gaussians" toy set; higher d: standard normal points.
Eigen::MatrixXd training_set(Eigen::Index d, Eigen::Index N, std::uint64_t seed) {
  if (d == 2) return kinflow::toy::eight_gaussians(N, seed);
  return kinflow::standard_normal(d, N, seed);
}

Eigen::MatrixXd noise(Eigen::Index d, Eigen::Index B, std::uint64_t seed, double scale = 1) {
  return scale * kinflow::standard_normal(d, B, seed ^ 0x9e3779b97f4a7c15ULL);
}

template <int Dim>
using batch = kinflow::batch<double, Dim>;
template <int Dim>
using field_t = kinflow::empirical_field<double, Dim>;
template <int Dim>
using shaped_t = kinflow::shaped_field<const field_t<Dim>&>;

// Rows of the odeint state that carries the energy: d + 1.
constexpr int plus_one(int Dim) { return Dim == Eigen::Dynamic ? Eigen::Dynamic : Dim + 1; }

unsigned hardware_threads() { return std::max(1u, std::thread::hardware_concurrency()); }

// ---- fixed-step RK4 sampling -------------------------------------------------------

struct problem {
  Eigen::Index d, N, B;
  std::size_t steps;
};

template <int Dim>
struct rk4_setup {
  explicit rk4_setup(problem p, unsigned field_threads = 0)
      : prob(p),
        field(training_set(p.d, p.N, 1), opts(field_threads)),
        shaped(field, kinflow::kts_gain::balanced()),
        x0(noise(p.d, p.B, 1)) {}
  static kinflow::empirical_options<double> opts(unsigned threads) {
    kinflow::empirical_options<double> o;
    o.threads = threads;
    return o;
  }
  problem prob;
  field_t<Dim> field;
  shaped_t<Dim> shaped;
  batch<Dim> x0;
};

void per_pair_step(benchmark::State& state, problem p) {
  state.counters["sec/pair-eval"] = benchmark::Counter(
      static_cast<double>(p.B) * static_cast<double>(p.N) * static_cast<double>(p.steps) * 4,
      benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

template <int Dim>
void bm_kinflow_rk4(benchmark::State& state, problem p, bool energy, bool whole_batch) {
  rk4_setup<Dim> s(p);
  kinflow::fixed_step_options opt;
  opt.kpe.enabled = energy;
  if (whole_batch) opt.tile_columns = p.B;  // one field call per stage on the whole batch
  const auto grid = kinflow::time_grid<>::uniform(p.steps);
  batch<Dim> X;
  for (auto _ : state) {
    state.PauseTiming();
    X = s.x0;
    state.ResumeTiming();
    auto r = kinflow::integrate(s.shaped, kinflow::rk4, grid, X, opt);
    benchmark::DoNotOptimize(X.data());
    benchmark::DoNotOptimize(r.nfe.data());
  }
  per_pair_step(state, p);
}

#if KINFLOW_BENCH_HAVE_BOOST
namespace odeint = boost::numeric::odeint;

// System for odeint on a state of `rows` x B values (rows = d, or d + 1 with the energy in
// the last row), whatever the container: copies into a kinflow batch, evaluates, copies out.
template <int Dim>
struct batch_system {
  const shaped_t<Dim>* field;
  Eigen::Index d, B;
  bool energy;
  batch<Dim> X, V;
  template <class State>
  void operator()(const State& s, State& ds, double t) {
    const Eigen::Index rows = d + (energy ? 1 : 0);
    Eigen::Map<const Eigen::MatrixXd> S(&*std::begin(s), rows, B);
    Eigen::Map<Eigen::MatrixXd> D(&*std::begin(ds), rows, B);
    X = S.topRows(d);
    V.resize(d, B);
    (*field)(t, X, V);
    D.topRows(d) = V;
    if (energy) D.row(d) = 0.5 * V.colwise().squaredNorm();
  }
};

template <int Dim>
void bm_odeint_batch_vector(benchmark::State& state, problem p, bool energy) {
  rk4_setup<Dim> s(p);
  using state_type = std::vector<double>;
  odeint::runge_kutta4<state_type> stepper;
  const Eigen::Index rows = p.d + (energy ? 1 : 0);
  batch_system<Dim> sys{&s.shaped, p.d, p.B, energy, {}, {}};
  state_type x(static_cast<std::size_t>(rows * p.B));
  for (auto _ : state) {
    state.PauseTiming();
    Eigen::Map<Eigen::MatrixXd> M(x.data(), rows, p.B);
    M.topRows(p.d) = s.x0;
    if (energy) M.row(p.d).setZero();
    state.ResumeTiming();
    for (std::size_t n = 0; n < p.steps; ++n)
      stepper.do_step(std::ref(sys), x, static_cast<double>(n) / static_cast<double>(p.steps),
                      1.0 / static_cast<double>(p.steps));
    benchmark::DoNotOptimize(x.data());
  }
  per_pair_step(state, p);
}

// The batch as an Eigen matrix: odeint's vector_space_algebra works on it directly, and
// the field reads and writes it without copies (when there is no energy row).
template <int Dim>
void bm_odeint_batch_eigen(benchmark::State& state, problem p, bool energy) {
  rk4_setup<Dim> s(p);
  if (!energy) {
    using state_type = batch<Dim>;
    odeint::runge_kutta4<state_type, double, state_type, double, odeint::vector_space_algebra> stepper;
    auto sys = [&](const state_type& x, state_type& dx, double t) { s.shaped(t, x, dx); };
    state_type x;
    for (auto _ : state) {
      state.PauseTiming();
      x = s.x0;
      state.ResumeTiming();
      for (std::size_t n = 0; n < p.steps; ++n)
        stepper.do_step(sys, x, static_cast<double>(n) / static_cast<double>(p.steps),
                        1.0 / static_cast<double>(p.steps));
      benchmark::DoNotOptimize(x.data());
    }
  } else {
    using state_type = Eigen::Matrix<double, plus_one(Dim), Eigen::Dynamic>;
    odeint::runge_kutta4<state_type, double, state_type, double, odeint::vector_space_algebra> stepper;
    batch<Dim> X, V;
    auto sys = [&](const state_type& x, state_type& dx, double t) {
      X = x.topRows(p.d);
      V.resize(p.d, p.B);
      s.shaped(t, X, V);
      dx.resize(p.d + 1, p.B);
      dx.topRows(p.d) = V;
      dx.row(p.d) = 0.5 * V.colwise().squaredNorm();
    };
    state_type x(p.d + 1, p.B);
    for (auto _ : state) {
      state.PauseTiming();
      x.topRows(p.d) = s.x0;
      x.row(p.d).setZero();
      state.ResumeTiming();
      for (std::size_t n = 0; n < p.steps; ++n)
        stepper.do_step(sys, x, static_cast<double>(n) / static_cast<double>(p.steps),
                        1.0 / static_cast<double>(p.steps));
      benchmark::DoNotOptimize(x.data());
    }
  }
  per_pair_step(state, p);
}

// One odeint solve per sample; the field runs on one column at a time on its thread, and
// the samples are split over as many threads as the batched field would use.
template <int Dim>
void bm_odeint_per_sample(benchmark::State& state, problem p, bool energy) {
  rk4_setup<Dim> s(p, 1);
  const unsigned threads = hardware_threads();
  using state_type = std::conditional_t<Dim == Eigen::Dynamic, std::vector<double>,
                                        std::array<double, static_cast<std::size_t>(plus_one(Dim))>>;
  batch<Dim> X = s.x0;
  for (auto _ : state) {
    state.PauseTiming();
    X = s.x0;
    state.ResumeTiming();
    kinflow_bench::split_columns(p.B, threads, [&](Eigen::Index c0, Eigen::Index c1) {
      odeint::runge_kutta4<state_type> stepper;
      batch<Dim> xi(p.d, 1), vi(p.d, 1);
      auto sys = [&](const state_type& x, state_type& dx, double t) {
        for (Eigen::Index r = 0; r < p.d; ++r) xi(r) = x[static_cast<std::size_t>(r)];
        s.shaped(t, xi, vi);
        for (Eigen::Index r = 0; r < p.d; ++r) dx[static_cast<std::size_t>(r)] = vi(r);
        if (energy) dx[static_cast<std::size_t>(p.d)] = 0.5 * vi.squaredNorm();
      };
      state_type x{};
      if constexpr (Dim == Eigen::Dynamic) x.resize(static_cast<std::size_t>(p.d + 1));
      for (Eigen::Index j = c0; j < c1; ++j) {
        for (Eigen::Index r = 0; r < p.d; ++r) x[static_cast<std::size_t>(r)] = X(r, j);
        x[static_cast<std::size_t>(p.d)] = 0;
        for (std::size_t n = 0; n < p.steps; ++n)
          stepper.do_step(sys, x, static_cast<double>(n) / static_cast<double>(p.steps),
                          1.0 / static_cast<double>(p.steps));
        for (Eigen::Index r = 0; r < p.d; ++r) X(r, j) = x[static_cast<std::size_t>(r)];
      }
    });
    benchmark::DoNotOptimize(X.data());
  }
  per_pair_step(state, p);
}
#endif

template <int Dim>
void register_rk4(const std::string& prefix, problem p) {
  const std::string base = prefix + "/d" + std::to_string(p.d) + "_N" + std::to_string(p.N) + "_B" +
                           std::to_string(p.B) + "_rk4x" + std::to_string(p.steps) + "/";
  auto reg = [&](const std::string& name, auto fn, bool energy) {
    benchmark::RegisterBenchmark((base + name + (energy ? ":energy" : ":plain")).c_str(),
                                 [p, fn, energy](benchmark::State& st) { fn(st, p, energy); })
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  };
  for (bool energy : {true, false}) {
    reg("kinflow", [](benchmark::State& st, problem q, bool e) { bm_kinflow_rk4<Dim>(st, q, e, false); }, energy);
    reg("kinflow-untiled", [](benchmark::State& st, problem q, bool e) { bm_kinflow_rk4<Dim>(st, q, e, true); }, energy);
#if KINFLOW_BENCH_HAVE_BOOST
    reg("odeint-batch-eigen", bm_odeint_batch_eigen<Dim>, energy);
    reg("odeint-batch-vector", bm_odeint_batch_vector<Dim>, energy);
    if (energy) reg("odeint-per-sample", bm_odeint_per_sample<Dim>, energy);
#endif
  }
}

// ---- Dormand–Prince: NFE against accuracy -----------------------------------------

struct errors {
  double max, median;
};

// Largest and median distance between corresponding columns.
errors distance(const Eigen::MatrixXd& A, const Eigen::MatrixXd& B) {
  Eigen::VectorXd e = (A - B).colwise().norm().transpose();
  std::sort(e.begin(), e.end());
  return {e(e.size() - 1), e(e.size() / 2)};
}

struct nfe_point {
  double tol, nfe;
  errors err;
};

struct nfe_curves {
  std::vector<nfe_point> kinflow, kinflow_pi, odeint_batch, odeint_sample;
};

#if KINFLOW_BENCH_HAVE_BOOST
// odeint's controlled dopri5 on each sample; returns the end points and the mean NFE.
template <class F>
Eigen::MatrixXd odeint_dopri5_per_sample(const F& f, const Eigen::MatrixXd& x0, double tol,
                                         double& mean_nfe) {
  using state_type = std::array<double, 2>;
  Eigen::MatrixXd X = x0;
  std::int64_t calls = 0;
  batch<2> xi(2, 1), vi(2, 1);
  auto sys = [&](const state_type& x, state_type& dx, double t) {
    ++calls;
    xi(0) = x[0];
    xi(1) = x[1];
    f(t, xi, vi);
    dx[0] = vi(0);
    dx[1] = vi(1);
  };
  for (Eigen::Index j = 0; j < X.cols(); ++j) {
    state_type x{X(0, j), X(1, j)};
    auto stepper = odeint::make_controlled(tol, tol, odeint::runge_kutta_dopri5<state_type>());
    odeint::integrate_adaptive(stepper, sys, x, 0.0, 1.0, 1e-2);
    X(0, j) = x[0];
    X(1, j) = x[1];
  }
  mean_nfe = static_cast<double>(calls) / static_cast<double>(X.cols());
  return X;
}

// odeint's controlled dopri5 on the whole batch (one step size for every sample).
template <class F>
Eigen::MatrixXd odeint_dopri5_batch(const F& f, const Eigen::MatrixXd& x0, double tol,
                                    double& nfe) {
  using state_type = batch<2>;
  state_type X = x0;
  std::int64_t calls = 0;
  auto sys = [&](const state_type& x, state_type& dx, double t) {
    ++calls;
    f(t, x, dx);
  };
  auto stepper = odeint::make_controlled(
      tol, tol, odeint::runge_kutta_dopri5<state_type, double, state_type, double, odeint::vector_space_algebra>());
  odeint::integrate_adaptive(stepper, sys, X, 0.0, 1.0, 1e-2);
  nfe = static_cast<double>(calls);
  return X;
}
#endif

template <class F>
Eigen::MatrixXd kinflow_dopri5(const F& f, const Eigen::MatrixXd& x0, double tol, double& mean_nfe,
                               bool pi = false) {
  batch<2> X = x0;
  kinflow::adaptive_options o;
  o.rtol = o.atol = tol;
  auto r = pi ? kinflow::integrate_adaptive(f, kinflow::dopri5, 0.0, 1.0, X, o, kinflow::pi_controller{})
              : kinflow::integrate_adaptive(f, kinflow::dopri5, 0.0, 1.0, X, o);
  mean_nfe = r.nfe.template cast<double>().mean();
  if (!r.all_success()) std::printf("  (kinflow: %zu samples did not succeed at tol %.0e)\n",
                                    static_cast<std::size_t>(X.cols()) - r.count(kinflow::solve_status::success), tol);
  return X;
}

template <class F>
void nfe_table(const std::string& name, const F& f, const Eigen::MatrixXd& x0, bool small) {
  std::printf("\nDormand-Prince 5(4), problem '%s' (d = 2, B = %ld): error of x(1) against a reference, "
              "largest and median over the samples\n",
              name.c_str(), static_cast<long>(x0.cols()));
#if KINFLOW_BENCH_HAVE_BOOST
  double ref_nfe = 0, ref_k_nfe = 0;
  const Eigen::MatrixXd ref = odeint_dopri5_per_sample(f, x0, 1e-12, ref_nfe);
  const Eigen::MatrixXd ref_k = kinflow_dopri5(f, x0, 1e-12, ref_k_nfe);
  std::printf("  reference: odeint per sample at tol 1e-12 (%.0f NFE/sample); kinflow at 1e-12 "
              "differs from it by at most %.2e\n", ref_nfe, distance(ref, ref_k).max);
  nfe_curves c;
  std::vector<double> tols;
  // Quarter decades: a coarser sweep would let whichever solver's tolerance happens to land
  // just below an error target look cheaper than it is.
  for (int k = 8; k <= (small ? 16 : 32); ++k) tols.push_back(std::pow(10.0, -0.25 * k));
  std::printf("  %-7s | %-27s | %-27s | %-27s | %-27s\n", "tol", "kinflow (step per sample)",
              "kinflow, PI controller", "odeint (one step, batch)", "odeint (one solve/sample)");
  std::printf("  %-7s |%s|%s|%s|%s\n", "", "  NFE/smp   max err  median ", "  NFE/smp   max err  median ",
              "  NFE/smp   max err  median ", "  NFE/smp   max err  median ");
  for (double tol : tols) {
    double a = 0, p = 0, b = 0, s = 0;
    const errors ea = distance(kinflow_dopri5(f, x0, tol, a), ref);
    const errors ep = distance(kinflow_dopri5(f, x0, tol, p, true), ref);
    const errors eb = distance(odeint_dopri5_batch(f, x0, tol, b), ref);
    const errors es = distance(odeint_dopri5_per_sample(f, x0, tol, s), ref);
    c.kinflow.push_back({tol, a, ea});
    c.kinflow_pi.push_back({tol, p, ep});
    c.odeint_batch.push_back({tol, b, eb});
    c.odeint_sample.push_back({tol, s, es});
    std::printf("  %-7.1e | %8.1f %8.1e %8.1e | %8.1f %8.1e %8.1e | %8.1f %8.1e %8.1e | %8.1f %8.1e %8.1e\n",
                tol, a, ea.max, ea.median, p, ep.max, ep.median, b, eb.max, eb.median, s, es.max, es.median);
  }
  // Equal error: the fewest evaluations per sample with which each reached the target,
  // for the largest error over the samples and for the median one.
  auto fewest = [](const std::vector<nfe_point>& v, double target, bool median) {
    double best = std::numeric_limits<double>::infinity();
    for (const auto& p : v)
      if ((median ? p.err.median : p.err.max) <= target) best = std::min(best, p.nfe);
    return best;
  };
  std::printf("  at equal error, fewest NFE per sample over the tolerances above:\n");
  for (bool median : {false, true}) {
    for (double target : {1e-2, 1e-3, 1e-4, 1e-5, 1e-6}) {
      const double k = fewest(c.kinflow, target, median), kp = fewest(c.kinflow_pi, target, median),
                   b = fewest(c.odeint_batch, target, median), s = fewest(c.odeint_sample, target, median);
      if (!std::isfinite(k) || (!std::isfinite(b) && !std::isfinite(s))) continue;
      std::printf("  NFE-AT-ERROR problem=%s error=%s<=%.0e kinflow=%.1f kinflow_pi=%.1f odeint_batch=%.1f "
                  "odeint_per_sample=%.1f\n",
                  name.c_str(), median ? "median" : "max", target, k, kp, b, s);
    }
  }
#else
  (void)f;
  (void)x0;
  (void)small;
  std::printf("  skipped: Boost.Odeint headers not found (Debian package libboost-dev)\n");
#endif
}

void run_nfe_tables(bool small) {
  const Eigen::Index N = small ? 32 : 256, B = small ? 32 : 256;
  const Eigen::MatrixXd Y = training_set(2, N, 7);
  // Seven easy samples (noise) for one hard one (noise of std 1e-3, near the data mean,
  // where the posterior stays undecided until late).
  const Eigen::MatrixXd easy = noise(2, B, 7);
  Eigen::MatrixXd mixed = noise(2, B, 11);
  for (Eigen::Index j = 0; j < B; j += 8) mixed.col(j) *= 1e-3;
  // The smoothed empirical field (s = 0.1): end points depend smoothly on x0, so errors
  // measure the integrator. The empirical field itself: landing on training points, a
  // small error can switch a sample to another point, so its largest error is erratic.
  const batch<2> Y2 = Y;
  const auto smooth = kinflow::smoothed_empirical(Y2, 0.1);
  const field_t<2> memorizing(Y);
  const std::string n = "N" + std::to_string(N);
  nfe_table("smoothed-" + n + "/noise", smooth, easy, small);
  nfe_table("smoothed-" + n + "/mixed", smooth, mixed, small);
  nfe_table("empirical-" + n + "/noise", memorizing, easy, small);
  nfe_table("empirical-" + n + "/mixed", memorizing, mixed, small);
}

void register_all() {
  register_rk4<2>("rk4", {2, 1024, 4096, 25});
  register_rk4<Eigen::Dynamic>("rk4", {1024, 1024, 1024, 5});
  register_rk4<2>("smoke", {2, 16, 32, 2});
  register_rk4<Eigen::Dynamic>("smoke", {8, 16, 8, 2});
}

}  // namespace

int main(int argc, char** argv) {
  bool nfe_only = false, nfe_small = false;
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--nfe-only") nfe_only = true;
    else if (a == "--nfe-small") nfe_small = true;
    else rest.push_back(argv[i]);
  }
  int n = static_cast<int>(rest.size());
  // A smoke run (filter on the tiny sizes) shrinks the accuracy tables too.
  for (char* a : rest)
    if (std::string(a).find("--benchmark_filter=^smoke") == 0) nfe_small = true;
  if (!nfe_only) {
    register_all();
    const int rc = kinflow_bench::run_with_ratios(
        n, rest.data(),
        {{"/kinflow:energy", "/odeint-batch-eigen:energy", "kinflow/odeint-batch-eigen"},
         {"/kinflow:energy", "/odeint-batch-vector:energy", "kinflow/odeint-batch-vector"},
         {"/kinflow:energy", "/odeint-per-sample:energy", "kinflow/odeint-per-sample"},
         {"/kinflow:plain", "/odeint-batch-eigen:plain", "kinflow/odeint-batch-eigen"},
         {"/kinflow:plain", "/odeint-batch-vector:plain", "kinflow/odeint-batch-vector"},
         {"/kinflow-untiled:energy", "/odeint-batch-eigen:energy", "untiled/odeint-batch-eigen"},
         {"/kinflow-untiled:plain", "/odeint-batch-eigen:plain", "untiled/odeint-batch-eigen"}});
    if (rc != 0) return rc;
  }
  run_nfe_tables(nfe_small);
  return 0;
}
