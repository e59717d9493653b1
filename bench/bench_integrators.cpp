// Fixed-step integration cost on a cheap analytic field: kinflow's Euler and RK4 against
// hand-written fused loops in the same program, and the cost of the kinetic path energy.
// B = 100 000 samples in 2D, 100 uniform steps; reported as ns per sample-step.
//
// The field is the exact flow of the Gaussian target N(mu, s² I):
//     v(x, t) = mu + g(t) (x - t mu),   g(t) = (t s² - (1 - t)) / ((1 - t)² + t² s²),
// a few flops per coordinate, so the integrator's own overhead is what is measured.
//
// smoke-filter: /1000/

#include <benchmark/benchmark.h>

#include <cmath>
#include <string>

#include "bench_ratios.hpp"
#include "kinflow/integrators/explicit_rk.hpp"

namespace {

constexpr int kSteps = 100;
constexpr double kMu0 = 1.5, kMu1 = -0.5, kS = 0.5;

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

template <class Field, std::size_t S>
void kinflow_run(benchmark::State& state, const kinflow::butcher_tableau<S>& method, bool kpe,
                 Eigen::Index tile = 0) {
  const auto B = static_cast<Eigen::Index>(state.range(0));
  const auto grid = kinflow::time_grid<>::uniform(kSteps);
  const auto x0 = start(B);
  kinflow::fixed_step_options opt;
  opt.kpe.enabled = kpe;
  opt.tile_columns = tile;
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

// Hand-written fused loops: one pass over the samples per step, stages kept in registers.
void handwritten_euler(benchmark::State& state, bool kpe) {
  const auto B = static_cast<Eigen::Index>(state.range(0));
  const auto x0 = start(B);
  for (auto _ : state) {
    state.PauseTiming();
    auto X = x0;
    Eigen::VectorXd E = Eigen::VectorXd::Zero(B);
    state.ResumeTiming();
    double* x = X.data();
    double* e = E.data();
    const double h = 1.0 / kSteps;
    for (int n = 0; n < kSteps; ++n) {
      const double t = static_cast<double>(n) / kSteps, g = gain(t);
      const double c0 = kMu0 - g * t * kMu0, c1 = kMu1 - g * t * kMu1;
      for (Eigen::Index i = 0; i < B; ++i) {
        const double v0 = g * x[2 * i] + c0, v1 = g * x[2 * i + 1] + c1;
        x[2 * i] += h * v0;
        x[2 * i + 1] += h * v1;
        if (kpe) e[i] += 0.5 * h * (v0 * v0 + v1 * v1);
      }
    }
    benchmark::DoNotOptimize(X.data());
    benchmark::DoNotOptimize(E.data());
  }
  per_sample_step(state, B);
}

void handwritten_rk4(benchmark::State& state, bool kpe) {
  const auto B = static_cast<Eigen::Index>(state.range(0));
  const auto x0 = start(B);
  for (auto _ : state) {
    state.PauseTiming();
    auto X = x0;
    Eigen::VectorXd E = Eigen::VectorXd::Zero(B);
    state.ResumeTiming();
    double* x = X.data();
    double* e = E.data();
    const double h = 1.0 / kSteps;
    for (int n = 0; n < kSteps; ++n) {
      const double t = static_cast<double>(n) / kSteps;
      const double ts[3] = {t, t + 0.5 * h, t + h};
      double g[3], c0[3], c1[3];
      for (int j = 0; j < 3; ++j) {
        g[j] = gain(ts[j]);
        c0[j] = kMu0 - g[j] * ts[j] * kMu0;
        c1[j] = kMu1 - g[j] * ts[j] * kMu1;
      }
      for (Eigen::Index i = 0; i < B; ++i) {
        const double a = x[2 * i], b = x[2 * i + 1];
        const double k10 = g[0] * a + c0[0], k11 = g[0] * b + c1[0];
        const double k20 = g[1] * (a + 0.5 * h * k10) + c0[1], k21 = g[1] * (b + 0.5 * h * k11) + c1[1];
        const double k30 = g[1] * (a + 0.5 * h * k20) + c0[1], k31 = g[1] * (b + 0.5 * h * k21) + c1[1];
        const double k40 = g[2] * (a + h * k30) + c0[2], k41 = g[2] * (b + h * k31) + c1[2];
        x[2 * i] = a + h / 6 * (k10 + 2 * k20 + 2 * k30 + k40);
        x[2 * i + 1] = b + h / 6 * (k11 + 2 * k21 + 2 * k31 + k41);
        if (kpe)
          e[i] += 0.5 * h / 6 *
                  ((k10 * k10 + k11 * k11) + 2 * (k20 * k20 + k21 * k21) + 2 * (k30 * k30 + k31 * k31) +
                   (k40 * k40 + k41 * k41));
      }
    }
    benchmark::DoNotOptimize(X.data());
    benchmark::DoNotOptimize(E.data());
  }
  per_sample_step(state, B);
}

}  // namespace

int main(int argc, char** argv) {
  // Names are <method>/<who>/<kpe>/<B>; ratios pair them by substituting one token.
  for (const long B : {1000L, 100000L}) {
    const std::string b;  // the batch size is appended as the benchmark's argument
    auto reg = [&](const std::string& name, auto fn) {
      benchmark::RegisterBenchmark(name.c_str(), fn)->Arg(B)->Unit(benchmark::kMillisecond)->UseRealTime();
    };
    for (const bool kpe : {false, true}) {
      const std::string k = kpe ? "/kpe_on" : "/kpe_off";
      reg("euler/kinflow_sample" + k + b, [kpe](benchmark::State& s) { kinflow_run<sample_flow>(s, kinflow::euler, kpe); });
      reg("euler/kinflow_batched" + k + b, [kpe](benchmark::State& s) { kinflow_run<gaussian_flow>(s, kinflow::euler, kpe); });
      reg("euler/handwritten" + k + b, [kpe](benchmark::State& s) { handwritten_euler(s, kpe); });
      reg("rk4/kinflow_sample" + k + b, [kpe](benchmark::State& s) { kinflow_run<sample_flow>(s, kinflow::rk4, kpe); });
      reg("rk4/kinflow_batched" + k + b, [kpe](benchmark::State& s) { kinflow_run<gaussian_flow>(s, kinflow::rk4, kpe); });
      reg("rk4/handwritten" + k + b, [kpe](benchmark::State& s) { handwritten_rk4(s, kpe); });
    }
    // Column tiling of the batched path: whole-batch stepping and a few fixed tiles
    // (the default tile is automatic).
    for (const long tile : {256L, 1024L, 4096L, 1L << 30}) {
      const std::string name = "rk4/batched_tile_" + (tile == (1L << 30) ? std::string("whole") : std::to_string(tile)) + "/kpe_on" + b;
      reg(name, [tile](benchmark::State& s) { kinflow_run<gaussian_flow>(s, kinflow::rk4, true, tile); });
    }
  }
  return kinflow_bench::run_with_ratios(
      argc, argv,
      {{"kinflow_sample", "handwritten", "vs loop"},
       {"kinflow_batched", "handwritten", "vs loop"},
       {"kinflow_sample/kpe_on", "kinflow_sample/kpe_off", "KPE cost"},
       {"kinflow_batched/kpe_on", "kinflow_batched/kpe_off", "KPE cost"},
       {"handwritten/kpe_on", "handwritten/kpe_off", "KPE cost"}});
}
