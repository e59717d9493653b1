// Fixed-step integration cost on cheap analytic fields: kinflow's Euler and RK4 against
// hand-written loops in the same program, and the cost of the kinetic path energy.
// B = 100 000 samples in 2D, 100 uniform steps; reported as ns per sample-step.
//
// Two fields, each in per-sample form for kinflow and written out in the hand-written loops:
//  - linear: the exact flow of the Gaussian target N(mu, s² I),
//        v(x, t) = mu + g(t) (x - t mu),   g(t) = (t s² - (1 - t)) / ((1 - t)² + t² s²),
//    a few flops per coordinate (also in batched form, for kinflow's tiled batched path);
//  - nonlinear: a damped van der Pol / Duffing oscillator with time-dependent coefficients,
//        v0 = x1 - a(t) x0,   v1 = -b(t) x0 - β x0³ + μ (1 - x0²) x1,
//        a(t) = 0.5 + 0.25 t,   b(t) = 1 + t (1 - t),
//    polynomial (no division, no libm call per sample),
// so the integrator's own overhead is what is measured.
//
// Who runs (the <who> token of the names):
//  - kinflow_default  kinflow::integrate with the per-sample field and its default kernel
//                     (per_sample_kernel::automatic: the faster of the two below, timed on
//                     the first tile);
//  - kinflow_sample   kinflow::integrate with the per-sample field and
//                     per_sample_kernel::interleaved (one pass per step, column by column,
//                     all stages in registers);
//  - kinflow_batched  kinflow::integrate with the batched field (tiled, stage by stage);
//  - kinflow_soa      kinflow::integrate with per_sample_kernel::structure_of_arrays (tiles
//                     transposed to one array per coordinate, vectorized across samples);
//  - *_eigen          the linear field written with Eigen vector operations on the point
//                     (`mu + g (x - t mu)`), which Eigen vectorizes itself for d = 2 in
//                     double: the case where the interleaved kernel is the faster one (by
//                     5-10x: structure of arrays is an opt-in for coordinate-wise fields);
//  - handwritten      hand-written fused loop over the interleaved batch (x0 x1 x0 x1 ...);
//  - handwritten_soa  hand-written loop over the coordinates in separate contiguous arrays,
//                     the sample loop innermost, which the compiler vectorizes across samples
//                     (the split into arrays happens outside the timed region).
//
// smoke-filter: /1000/

#include <benchmark/benchmark.h>

#include <cmath>
#include <string>

#include "bench_ratios.hpp"
#include "kinflow/integrators/kernels/soa_tiles.hpp"
#include "kinflow/integrators/explicit_rk.hpp"

namespace {

constexpr int kSteps = 100;
constexpr double kMu0 = 1.5, kMu1 = -0.5, kS = 0.5;
constexpr double kTau = 0.6;  // kinflow's default early/late split

inline double gain(double t) {
  return (t * kS * kS - (1 - t)) / ((1 - t) * (1 - t) + t * t * kS * kS);
}

struct gaussian_flow {
  void operator()(double t, const kinflow::batch<double, 2>& x, kinflow::batch<double, 2>& v) const {
    const double g = gain(t);
    const double c0 = kMu0 - g * t * kMu0, c1 = kMu1 - g * t * kMu1;
    v.row(0) = (g * x.row(0)).array() + c0;
    v.row(1) = (g * x.row(1)).array() + c1;
  }
};

// Seconds per sample-step (printed with an SI prefix: "1.2n" is 1.2 ns).
void per_sample_step(benchmark::State& state, Eigen::Index B) {
  state.counters["sec/sample-step"] = benchmark::Counter(
      static_cast<double>(B) * kSteps,
      benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

kinflow::batch<double, 2> start(Eigen::Index B) {
  kinflow::batch<double, 2> X(2, B);
  for (Eigen::Index i = 0; i < B; ++i) {  // deterministic, spread over [-2, 2]²
    X(0, i) = 4.0 * static_cast<double>((i * 7919) % 1000) / 1000 - 2;
    X(1, i) = 4.0 * static_cast<double>((i * 104729) % 997) / 997 - 2;
  }
  return X;
}


// The same field in per-sample form (kinflow fuses the stages of each column).
struct sample_flow {
  kinflow::point<double, 2> operator()(double t, const kinflow::point<double, 2>& x) const {
    const double g = gain(t);
    return {g * x(0) + (kMu0 - g * t * kMu0), g * x(1) + (kMu1 - g * t * kMu1)};
  }
};

// The same field written with Eigen vector operations on the point.
struct sample_flow_eigen {
  kinflow::point<double, 2> operator()(double t, const kinflow::point<double, 2>& x) const {
    const kinflow::point<double, 2> mu(kMu0, kMu1);
    return mu + gain(t) * (x - t * mu);
  }
};

// The nonlinear field: its coefficients at t, and the velocity at one point.
constexpr double kBeta = 0.2, kVdp = 0.3;
struct nonlinear_coef {
  double a, b;
  static nonlinear_coef at(double t) { return {0.5 + 0.25 * t, 1 + t * (1 - t)}; }
  void operator()(double x0, double x1, double& v0, double& v1) const {
    const double q = x0 * x0;
    v0 = x1 - a * x0;
    v1 = -b * x0 - kBeta * q * x0 + kVdp * (1 - q) * x1;
  }
};

// The linear field as coefficients at t (for the hand-written loops): v = g x + c.
struct linear_coef {
  double g, c0, c1;
  static linear_coef at(double t) {
    const double g = gain(t);
    return {g, kMu0 - g * t * kMu0, kMu1 - g * t * kMu1};
  }
  void operator()(double x0, double x1, double& v0, double& v1) const {
    v0 = g * x0 + c0;
    v1 = g * x1 + c1;
  }
};

// The nonlinear field in per-sample form.
struct sample_nonlinear {
  kinflow::point<double, 2> operator()(double t, const kinflow::point<double, 2>& x) const {
    double v0, v1;
    nonlinear_coef::at(t)(x(0), x(1), v0, v1);
    return {v0, v1};
  }
};

template <class Field, std::size_t S>
void kinflow_run(benchmark::State& state, const kinflow::butcher_tableau<S>& method, bool kpe,
                 Eigen::Index tile = 0,
                 kinflow::per_sample_kernel kernel = kinflow::per_sample_kernel::interleaved) {
  const auto B = static_cast<Eigen::Index>(state.range(0));
  const auto grid = kinflow::time_grid<>::uniform(kSteps);
  const auto x0 = start(B);
  kinflow::fixed_step_options opt;
  opt.kpe.enabled = kpe;
  opt.kpe.tau = kTau;
  opt.tile_columns = tile;
  opt.kernel = kernel;
  for (auto _ : state) {
    state.PauseTiming();
    auto X = x0;
    state.ResumeTiming();
    auto r = kinflow::integrate(Field{}, method, grid, X, opt);
    benchmark::DoNotOptimize(X.data());
    benchmark::DoNotOptimize(r.nfe.data());
  }
  per_sample_step(state, B);
}

constexpr auto kSoa = kinflow::per_sample_kernel::structure_of_arrays;
constexpr auto kAuto = kinflow::per_sample_kernel::automatic;

// kinflow's structure-of-arrays tile kernel called directly, for tuning its tile (Tile 0:
// its default tile).
template <class Field, Eigen::Index Tile = 0, std::size_t S>
void kinflow_soa_run(benchmark::State& state, const kinflow::butcher_tableau<S>& method, bool kpe) {
  const auto B = static_cast<Eigen::Index>(state.range(0));
  const auto grid = kinflow::time_grid<>::uniform(kSteps);
  const auto x0 = start(B);
  constexpr Eigen::Index T = Tile == 0 ? kinflow::detail::soa_default_tile<double, 2> : Tile;
  for (auto _ : state) {
    state.PauseTiming();
    auto X = x0;
    Eigen::VectorXd early = Eigen::VectorXd::Zero(B), late = Eigen::VectorXd::Zero(B);
    state.ResumeTiming();
    kinflow::detail::soa_fixed_steps_tiled<T>(Field{}, method, grid, X, kpe, false, kTau,
                                              early.data(), late.data());
    benchmark::DoNotOptimize(X.data());
    benchmark::DoNotOptimize(early.data());
    benchmark::DoNotOptimize(late.data());
  }
  per_sample_step(state, B);
}

// Hand-written fused loops over the interleaved batch: one pass over the samples per step,
// stages kept in registers. (The energy is split early/late as kinflow does.)
template <class Coef>
void handwritten_euler(benchmark::State& state, bool kpe) {
  const auto B = static_cast<Eigen::Index>(state.range(0));
  const auto x0 = start(B);
  for (auto _ : state) {
    state.PauseTiming();
    auto X = x0;
    Eigen::VectorXd early = Eigen::VectorXd::Zero(B), late = Eigen::VectorXd::Zero(B);
    state.ResumeTiming();
    double* x = X.data();
    const double h = 1.0 / kSteps;
    for (int n = 0; n < kSteps; ++n) {
      const double t = static_cast<double>(n) / kSteps;
      const Coef v = Coef::at(t);
      double* e = (t < kTau ? early : late).data();
      for (Eigen::Index i = 0; i < B; ++i) {
        double v0, v1;
        v(x[2 * i], x[2 * i + 1], v0, v1);
        x[2 * i] += h * v0;
        x[2 * i + 1] += h * v1;
        if (kpe) e[i] += 0.5 * h * (v0 * v0 + v1 * v1);
      }
    }
    benchmark::DoNotOptimize(X.data());
    benchmark::DoNotOptimize(early.data());
    benchmark::DoNotOptimize(late.data());
  }
  per_sample_step(state, B);
}

template <class Coef>
void handwritten_rk4(benchmark::State& state, bool kpe) {
  const auto B = static_cast<Eigen::Index>(state.range(0));
  const auto x0 = start(B);
  for (auto _ : state) {
    state.PauseTiming();
    auto X = x0;
    Eigen::VectorXd early = Eigen::VectorXd::Zero(B), late = Eigen::VectorXd::Zero(B);
    state.ResumeTiming();
    double* x = X.data();
    const double h = 1.0 / kSteps;
    for (int n = 0; n < kSteps; ++n) {
      const double t = static_cast<double>(n) / kSteps;
      const Coef v1 = Coef::at(t), v2 = Coef::at(t + 0.5 * h), v4 = Coef::at(t + h);
      double* e = (t < kTau ? early : late).data();
      for (Eigen::Index i = 0; i < B; ++i) {
        const double a = x[2 * i], b = x[2 * i + 1];
        double k10, k11, k20, k21, k30, k31, k40, k41;
        v1(a, b, k10, k11);
        v2(a + 0.5 * h * k10, b + 0.5 * h * k11, k20, k21);
        v2(a + 0.5 * h * k20, b + 0.5 * h * k21, k30, k31);
        v4(a + h * k30, b + h * k31, k40, k41);
        x[2 * i] = a + h / 6 * (k10 + 2 * k20 + 2 * k30 + k40);
        x[2 * i + 1] = b + h / 6 * (k11 + 2 * k21 + 2 * k31 + k41);
        if (kpe)
          e[i] += 0.5 * h / 6 *
                  ((k10 * k10 + k11 * k11) + 2 * (k20 * k20 + k21 * k21) + 2 * (k30 * k30 + k31 * k31) +
                   (k40 * k40 + k41 * k41));
      }
    }
    benchmark::DoNotOptimize(X.data());
    benchmark::DoNotOptimize(early.data());
    benchmark::DoNotOptimize(late.data());
  }
  per_sample_step(state, B);
}

// The same loops on structure-of-arrays data: x0[i], x1[i] in separate contiguous arrays
// (split from the batch outside the timed region), the sample loop innermost.
struct soa_state {
  Eigen::VectorXd x0, x1, early, late;
  explicit soa_state(const kinflow::batch<double, 2>& X)
      : x0(X.row(0).transpose()), x1(X.row(1).transpose()),
        early(Eigen::VectorXd::Zero(X.cols())), late(Eigen::VectorXd::Zero(X.cols())) {}
};

template <class Coef, bool Kpe>
void soa_euler_steps(soa_state& s) {
  double* __restrict p = s.x0.data();
  double* __restrict q = s.x1.data();
  const Eigen::Index B = s.x0.size();
  const double h = 1.0 / kSteps;
  for (int n = 0; n < kSteps; ++n) {
    const double t = static_cast<double>(n) / kSteps;
    const Coef v = Coef::at(t);
    double* __restrict e = (t < kTau ? s.early : s.late).data();
    for (Eigen::Index i = 0; i < B; ++i) {
      double v0, v1;
      v(p[i], q[i], v0, v1);
      p[i] += h * v0;
      q[i] += h * v1;
      if constexpr (Kpe) e[i] += 0.5 * h * (v0 * v0 + v1 * v1);
    }
  }
}

template <class Coef, bool Kpe>
void soa_rk4_steps(soa_state& s) {
  double* __restrict p = s.x0.data();
  double* __restrict q = s.x1.data();
  const Eigen::Index B = s.x0.size();
  const double h = 1.0 / kSteps;
  for (int n = 0; n < kSteps; ++n) {
    const double t = static_cast<double>(n) / kSteps;
    const Coef v1 = Coef::at(t), v2 = Coef::at(t + 0.5 * h), v4 = Coef::at(t + h);
    double* __restrict e = (t < kTau ? s.early : s.late).data();
    for (Eigen::Index i = 0; i < B; ++i) {
      const double a = p[i], b = q[i];
      double k10, k11, k20, k21, k30, k31, k40, k41;
      v1(a, b, k10, k11);
      v2(a + 0.5 * h * k10, b + 0.5 * h * k11, k20, k21);
      v2(a + 0.5 * h * k20, b + 0.5 * h * k21, k30, k31);
      v4(a + h * k30, b + h * k31, k40, k41);
      p[i] = a + h / 6 * (k10 + 2 * k20 + 2 * k30 + k40);
      q[i] = b + h / 6 * (k11 + 2 * k21 + 2 * k31 + k41);
      if constexpr (Kpe)
        e[i] += 0.5 * h / 6 *
                ((k10 * k10 + k11 * k11) + 2 * (k20 * k20 + k21 * k21) + 2 * (k30 * k30 + k31 * k31) +
                 (k40 * k40 + k41 * k41));
    }
  }
}

template <class Coef, bool Rk4>
void handwritten_soa(benchmark::State& state, bool kpe) {
  const auto B = static_cast<Eigen::Index>(state.range(0));
  const auto x0 = start(B);
  for (auto _ : state) {
    state.PauseTiming();
    soa_state s(x0);
    state.ResumeTiming();
    if constexpr (Rk4) {
      kpe ? soa_rk4_steps<Coef, true>(s) : soa_rk4_steps<Coef, false>(s);
    } else {
      kpe ? soa_euler_steps<Coef, true>(s) : soa_euler_steps<Coef, false>(s);
    }
    benchmark::DoNotOptimize(s.x0.data());
    benchmark::DoNotOptimize(s.x1.data());
    benchmark::DoNotOptimize(s.early.data());
    benchmark::DoNotOptimize(s.late.data());
  }
  per_sample_step(state, B);
}

}  // namespace

int main(int argc, char** argv) {
  // Names are <method>[_nonlinear]/<who>/<kpe>/<B>; ratios pair them by substituting one token.
  for (const long B : {1000L, 100000L}) {
    const std::string b;  // the batch size is appended as the benchmark's argument
    auto reg = [&](const std::string& name, auto fn) {
      benchmark::RegisterBenchmark(name.c_str(), fn)->Arg(B)->Unit(benchmark::kMillisecond)->UseRealTime();
    };
    for (const bool kpe : {false, true}) {
      const std::string k = kpe ? "/kpe_on" : "/kpe_off";
      // Linear field (the Gaussian flow).
      reg("euler/kinflow_default" + k + b, [kpe](benchmark::State& s) { kinflow_run<sample_flow>(s, kinflow::euler, kpe, 0, kAuto); });
      reg("euler/kinflow_sample" + k + b, [kpe](benchmark::State& s) { kinflow_run<sample_flow>(s, kinflow::euler, kpe); });
      reg("euler/kinflow_batched" + k + b, [kpe](benchmark::State& s) { kinflow_run<gaussian_flow>(s, kinflow::euler, kpe); });
      reg("euler/kinflow_soa" + k + b, [kpe](benchmark::State& s) { kinflow_run<sample_flow>(s, kinflow::euler, kpe, 0, kSoa); });
      reg("euler/handwritten" + k + b, [kpe](benchmark::State& s) { handwritten_euler<linear_coef>(s, kpe); });
      reg("euler/handwritten_soa" + k + b, [kpe](benchmark::State& s) { handwritten_soa<linear_coef, false>(s, kpe); });
      reg("rk4/kinflow_default" + k + b, [kpe](benchmark::State& s) { kinflow_run<sample_flow>(s, kinflow::rk4, kpe, 0, kAuto); });
      reg("rk4/kinflow_sample" + k + b, [kpe](benchmark::State& s) { kinflow_run<sample_flow>(s, kinflow::rk4, kpe); });
      reg("rk4/kinflow_batched" + k + b, [kpe](benchmark::State& s) { kinflow_run<gaussian_flow>(s, kinflow::rk4, kpe); });
      reg("rk4/kinflow_soa" + k + b, [kpe](benchmark::State& s) { kinflow_run<sample_flow>(s, kinflow::rk4, kpe, 0, kSoa); });
      reg("rk4/handwritten" + k + b, [kpe](benchmark::State& s) { handwritten_rk4<linear_coef>(s, kpe); });
      reg("rk4/handwritten_soa" + k + b, [kpe](benchmark::State& s) { handwritten_soa<linear_coef, true>(s, kpe); });
      // The linear field written with Eigen vector operations.
      reg("rk4/kinflow_default_eigen" + k + b, [kpe](benchmark::State& s) { kinflow_run<sample_flow_eigen>(s, kinflow::rk4, kpe, 0, kAuto); });
      reg("rk4/kinflow_sample_eigen" + k + b, [kpe](benchmark::State& s) { kinflow_run<sample_flow_eigen>(s, kinflow::rk4, kpe); });
      reg("rk4/kinflow_soa_eigen" + k + b, [kpe](benchmark::State& s) { kinflow_run<sample_flow_eigen>(s, kinflow::rk4, kpe, 0, kSoa); });
      // Nonlinear field (per-sample form only).
      reg("euler_nonlinear/kinflow_default" + k + b, [kpe](benchmark::State& s) { kinflow_run<sample_nonlinear>(s, kinflow::euler, kpe, 0, kAuto); });
      reg("euler_nonlinear/kinflow_sample" + k + b, [kpe](benchmark::State& s) { kinflow_run<sample_nonlinear>(s, kinflow::euler, kpe); });
      reg("euler_nonlinear/kinflow_soa" + k + b, [kpe](benchmark::State& s) { kinflow_run<sample_nonlinear>(s, kinflow::euler, kpe, 0, kSoa); });
      reg("euler_nonlinear/handwritten" + k + b, [kpe](benchmark::State& s) { handwritten_euler<nonlinear_coef>(s, kpe); });
      reg("euler_nonlinear/handwritten_soa" + k + b, [kpe](benchmark::State& s) { handwritten_soa<nonlinear_coef, false>(s, kpe); });
      reg("rk4_nonlinear/kinflow_default" + k + b, [kpe](benchmark::State& s) { kinflow_run<sample_nonlinear>(s, kinflow::rk4, kpe, 0, kAuto); });
      reg("rk4_nonlinear/kinflow_sample" + k + b, [kpe](benchmark::State& s) { kinflow_run<sample_nonlinear>(s, kinflow::rk4, kpe); });
      reg("rk4_nonlinear/kinflow_soa" + k + b, [kpe](benchmark::State& s) { kinflow_run<sample_nonlinear>(s, kinflow::rk4, kpe, 0, kSoa); });
      reg("rk4_nonlinear/handwritten" + k + b, [kpe](benchmark::State& s) { handwritten_rk4<nonlinear_coef>(s, kpe); });
      reg("rk4_nonlinear/handwritten_soa" + k + b, [kpe](benchmark::State& s) { handwritten_soa<nonlinear_coef, true>(s, kpe); });
    }
    if (B < 100000) continue;
    // Column tiling of the batched path: whole-batch stepping and a few fixed tiles
    // (the default tile is automatic).
    for (const long tile : {256L, 1024L, 4096L, 1L << 30}) {
      const std::string name = "rk4/batched_tile_" + (tile == (1L << 30) ? std::string("whole") : std::to_string(tile)) + "/kpe_on" + b;
      reg(name, [tile](benchmark::State& s) { kinflow_run<gaussian_flow>(s, kinflow::rk4, true, tile); });
    }
    // Tile of the SoA kernel (samples per tile; the state of a tile stays in L1).
    auto soa_tiles = [&]<Eigen::Index... T>(std::integer_sequence<Eigen::Index, T...>) {
      (reg("rk4/soa_tile_" + std::to_string(T) + "/kpe_on" + b,
           [](benchmark::State& s) { kinflow_soa_run<sample_flow, T>(s, kinflow::rk4, true); }), ...);
      (reg("rk4_nonlinear/soa_tile_" + std::to_string(T) + "/kpe_on" + b,
           [](benchmark::State& s) { kinflow_soa_run<sample_nonlinear, T>(s, kinflow::rk4, true); }), ...);
      (reg("euler/soa_tile_" + std::to_string(T) + "/kpe_on" + b,
           [](benchmark::State& s) { kinflow_soa_run<sample_flow, T>(s, kinflow::euler, true); }), ...);
    };
    soa_tiles(std::integer_sequence<Eigen::Index, 16, 64, 128, 256, 512, 1024, 2048>{});
  }
  return kinflow_bench::run_with_ratios(
      argc, argv,
      {{"kinflow_default", "handwritten_soa", "vs SoA loop"},
       {"kinflow_default", "kinflow_sample", "vs fused"},
       {"kinflow_default_eigen", "kinflow_sample_eigen", "vs fused"},
       {"kinflow_sample", "handwritten", "vs loop"},
       {"kinflow_batched", "handwritten", "vs loop"},
       {"kinflow_sample", "handwritten_soa", "vs SoA loop"},
       {"kinflow_soa", "handwritten_soa", "vs SoA loop"},
       {"kinflow_soa", "kinflow_sample", "vs fused"},
       {"kinflow_soa_eigen", "kinflow_sample_eigen", "vs fused"},
       {"handwritten_soa", "handwritten", "SoA/interl."},
       {"kinflow_sample/kpe_on", "kinflow_sample/kpe_off", "KPE cost"},
       {"kinflow_batched/kpe_on", "kinflow_batched/kpe_off", "KPE cost"},
       {"kinflow_soa/kpe_on", "kinflow_soa/kpe_off", "KPE cost"},
       {"handwritten/kpe_on", "handwritten/kpe_off", "KPE cost"},
       {"handwritten_soa/kpe_on", "handwritten_soa/kpe_off", "KPE cost"}});
}
