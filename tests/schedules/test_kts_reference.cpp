// Reference reproduction: Euler + KTS + left-Riemann KPE on kinflow's empirical field against
// a plain loop written from the formulas of the paper's reference sampler (docs/math.md §2, §3.4, §7.1):
// softmax posterior weights, v = (m - x)/(1 - t), x += h·η(t_n)·v, E += ½ h ‖η v‖², early
// steps n < floor(τN). Nothing in the loop calls the library. Plus: KTS with α0 = β0 = 0 is
// bit-identical to no KTS.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "kinflow/fields/empirical.hpp"
#include "kinflow/fields/shaped.hpp"
#include "kinflow/integrators/explicit_rk.hpp"
#include "kinflow_catch.hpp"

using kinflow::kts_form;
using kinflow::kts_gain;
using kinflow::kts_options;

namespace {

// Deterministic normal draws (splitmix64 + Box–Muller), the same with every compiler.
struct normal_source {
  std::uint64_t state;
  double uniform() {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return (static_cast<double>(z >> 11) + 0.5) * 0x1.0p-53;
  }
  double operator()() {
    const double u = uniform(), v = uniform();
    return std::sqrt(-2 * std::log(u)) * std::cos(6.283185307179586 * v);
  }
};

using matrix = Eigen::MatrixXd;

// Training set: n points around 8 centres on a circle of radius 2 (first two coordinates),
// small noise everywhere.
matrix training_set(int d, int n, normal_source& rng) {
  matrix Y(d, n);
  for (int i = 0; i < n; ++i) {
    for (int r = 0; r < d; ++r) Y(r, i) = 0.3 * rng();
    const double angle = 0.7853981633974483 * (i % 8);
    Y(0, i) += 2 * std::cos(angle);
    Y(1, i) += 2 * std::sin(angle);
  }
  return Y;
}

// The reference gain, literally as in docs/math.md §7.1.
double reference_eta(const kts_options& o, double t) {
  if (t < o.tau) {
    const double r = t / o.tau;
    switch (o.early_form) {
      case kts_form::linear: return 1 + o.alpha0 * (1 - r);
      case kts_form::constant: return 1 + o.alpha0;
      case kts_form::exponential: return 1 + o.alpha0 * (std::exp(o.k * (1 - r)) - 1) / (std::exp(o.k) - 1);
    }
  }
  const double u = (t - o.tau) / (1 - o.tau);
  switch (o.late_form) {
    case kts_form::exponential: return 1 - o.beta0 * (std::exp(o.k * u) - 1);
    case kts_form::linear: return 1 - o.beta0 * u;
    case kts_form::constant: return 1 - o.beta0;
  }
  return 1;
}

struct reference_run {
  matrix x;                              // samples at t = 1
  std::vector<double> total, early, late;  // energies per sample
};

// The reference sampler: uniform Euler grid, KTS gain, left-Riemann energy.
reference_run reference_sampler(const matrix& Y, matrix x, int steps, const kts_options& o) {
  const int d = static_cast<int>(Y.rows()), n = static_cast<int>(Y.cols()), B = static_cast<int>(x.cols());
  reference_run run;
  run.total.assign(B, 0.0);
  run.early.assign(B, 0.0);
  run.late.assign(B, 0.0);
  const int split = static_cast<int>(std::floor(o.tau * steps));
  std::vector<double> logit(n), v(d);
  for (int step = 0; step < steps; ++step) {
    const double t = static_cast<double>(step) / steps;
    const double h = static_cast<double>(step + 1) / steps - t;
    const double eta = reference_eta(o, t);
    for (int b = 0; b < B; ++b) {
      // posterior weights: softmax of -‖x - t y_i‖² / (2 (1-t)²), with max subtraction
      double top = -INFINITY;
      for (int i = 0; i < n; ++i) {
        double dist2 = 0;
        for (int r = 0; r < d; ++r) {
          const double diff = x(r, b) - t * Y(r, i);
          dist2 += diff * diff;
        }
        logit[i] = -dist2 / (2 * (1 - t) * (1 - t));
        top = std::max(top, logit[i]);
      }
      double norm = 0;
      for (int i = 0; i < n; ++i) norm += std::exp(logit[i] - top);
      // v = (m - x) / (1 - t), shaped by η; energy ½ h ‖η v‖² at the step's start
      double speed2 = 0;
      for (int r = 0; r < d; ++r) {
        double m = 0;
        for (int i = 0; i < n; ++i) m += std::exp(logit[i] - top) / norm * Y(r, i);
        v[r] = eta * (m - x(r, b)) / (1 - t);
        speed2 += v[r] * v[r];
      }
      const double de = 0.5 * h * speed2;
      run.total[b] += de;
      (step < split ? run.early[b] : run.late[b]) += de;
      for (int r = 0; r < d; ++r) x(r, b) += h * v[r];
    }
  }
  run.x = x;
  return run;
}

double relative(double a, double b) { return std::abs(a - b) / std::max(std::abs(b), 1e-300); }

template <int Dim>
void compare_with_reference(int d, int n_train, int B, int steps, const kts_options& o, std::uint64_t seed) {
  normal_source rng{seed};
  const matrix Y = training_set(d, n_train, rng);
  matrix X0(d, B);
  for (int b = 0; b < B; ++b)
    for (int r = 0; r < d; ++r) X0(r, b) = rng();

  const reference_run ref = reference_sampler(Y, X0, steps, o);

  using batch = kinflow::batch<double, Dim>;
  const batch Yb = Y;
  const kinflow::empirical_field<double, Dim> field(Yb);
  batch X = X0;
  kinflow::fixed_step_options fo;
  fo.kpe.quadrature = kinflow::kpe_quadrature::left_riemann;
  fo.kpe.tau = o.tau;
  const auto r = kinflow::integrate(kinflow::shaped(field, kts_gain(o)), kinflow::euler,
                                    kinflow::time_grid<double>::uniform(static_cast<std::size_t>(steps)), X, fo);
  REQUIRE(r.all_success());
  CHECK((r.nfe.array() == steps).all());

  double worst_x = 0, worst_e = 0;
  for (int b = 0; b < B; ++b) {
    worst_x = std::max(worst_x, (X.col(b) - ref.x.col(b)).norm() / ref.x.col(b).norm());
    worst_e = std::max({worst_e, relative(r.kpe.total(b), ref.total[b]), relative(r.kpe.early(b), ref.early[b]),
                        relative(r.kpe.late(b), ref.late[b])});
  }
  INFO("d = " << d << ", worst relative differences: samples " << worst_x << ", energies " << worst_e);
  CHECK(worst_x < 1e-12);
  CHECK(worst_e < 1e-12);
}

}  // namespace

TEST_CASE("kts reference: Euler + KTS + left-Riemann KPE on the empirical field", "[kts][reference]") {
  const std::vector<kts_options> settings{
      kts_options{.alpha0 = 0.01, .beta0 = 0.01},  // the paper's balanced setting
      kts_options{.alpha0 = 0.02},                 // launch only
      kts_options{.beta0 = 0.02},                  // landing only
      kts_options{.alpha0 = 0.05, .beta0 = 0.03, .tau = 0.4, .k = 2},
      kts_options{.alpha0 = 0.1, .beta0 = 0.2, .tau = 0.8, .early_form = kts_form::exponential,
                  .late_form = kts_form::linear},
      kts_options{.alpha0 = 0.1, .beta0 = 0.1, .early_form = kts_form::constant, .late_form = kts_form::constant},
      kts_options{}};  // KTS off
  std::uint64_t seed = 1;
  for (const auto& o : settings) {
    INFO("alpha0 " << o.alpha0 << " beta0 " << o.beta0 << " tau " << o.tau << " k " << o.k);
    compare_with_reference<2>(2, 40, 64, 100, o, seed++);
    compare_with_reference<Eigen::Dynamic>(24, 30, 16, 50, o, seed++);
  }
}

TEST_CASE("kts reference: alpha0 = beta0 = 0 is bit-identical to no KTS", "[kts][reference]") {
  normal_source rng{99};
  const kinflow::batch<double, 2> Y = training_set(2, 25, rng);
  const kinflow::empirical_field<double, 2> field(Y);
  kinflow::batch<double, 2> X0(2, 32);
  for (Eigen::Index b = 0; b < X0.cols(); ++b) X0.col(b) << rng(), rng();
  kinflow::fixed_step_options fo;
  fo.kpe.quadrature = kinflow::kpe_quadrature::left_riemann;
  for (const kts_options& o : {kts_options{}, kts_options{.tau = 0.25, .k = 6, .early_form = kts_form::exponential,
                                                          .late_form = kts_form::constant}}) {
    for (const auto& grid : {kinflow::time_grid<double>::uniform(40), kinflow::time_grid<double>::cosine(40)}) {
      kinflow::batch<double, 2> X = X0, Z = X0;
      const auto plain = kinflow::integrate(field, kinflow::euler, grid, X, fo);
      const auto kts = kinflow::integrate(kinflow::shaped(field, kts_gain(o)), kinflow::euler, grid, Z, fo);
      CHECK(X == Z);
      CHECK(plain.kpe.total == kts.kpe.total);
      CHECK(plain.kpe.early == kts.kpe.early);
      CHECK(plain.kpe.late == kts.kpe.late);
    }
  }
}
