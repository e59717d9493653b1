// Acceleration-equidistributing grids on the Gaussian target of docs/math.md §3.4, whose paths
// x(t) = t·μ + σ(t)·x0 have dv/dt = σ''(t)·x0 with σ'' = s²/σ³ (worked out below), against the
// quantiles of ∫ σ^{-3γ} computed here by quadrature; make_grid() by name against the builders
// it names; pilot failures and bad options are rejected.

#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

#include "kinflow/integrators/explicit_rk.hpp"
#include "kinflow/integrators/pilot_grid.hpp"
#include "kinflow_catch.hpp"

using kinflow::energy_grid_options;
using kinflow::time_grid;

namespace {

// The exact velocity of the target N(m, s² I) on the linear path:
// v(x, t) = m + (σ'/σ)(x - t m), σ² = (1-t)² + t² s².
struct gaussian_target {
  Eigen::Vector2d m{1.5, -0.5};
  double s = 0.5;
  double sigma(double t) const { return std::sqrt((1 - t) * (1 - t) + t * t * s * s); }
  void operator()(double t, const kinflow::batch<double, 2>& X, kinflow::batch<double, 2>& V) const {
    const double sg = sigma(t), dsg = (-(1 - t) + t * s * s) / sg;
    V = (dsg / sg) * (X - t * m * Eigen::RowVectorXd::Ones(X.cols()));
    V.colwise() += m;
  }
};

// σ'' = (2 q q'' - q'²)/(4 σ³) with q = σ² = 1 - 2t + t²(1 + s²): 2 q q'' - q'² = 4 s², so
// ‖dv/dt‖ = s² ‖x0‖ / σ³ and the grid is the quantiles of W(t) = ∫₀ᵗ σ^{-3γ}.
// W by Simpson in long double on 2·10⁵ intervals, inverted by bisection.
std::vector<double> reference_grid(const gaussian_target& f, double gamma, std::size_t steps) {
  const int n = 200000;
  const long double h = 1.0L / n;
  std::vector<long double> W(n + 1, 0.0L);
  auto w = [&](long double t) { return std::pow(static_cast<long double>(f.sigma(static_cast<double>(t))), -3 * gamma); };
  for (int k = 0; k < n; ++k) {
    const long double a = k * h;
    W[k + 1] = W[k] + h / 6 * (w(a) + 4 * w(a + h / 2) + w(a + h));
  }
  std::vector<double> t(steps + 1);
  t.front() = 0;
  t.back() = 1;
  for (std::size_t i = 1; i < steps; ++i) {
    const long double target = W[n] * i / steps;
    std::size_t k = 0;
    while (W[k + 1] < target) ++k;
    t[i] = static_cast<double>((k + (target - W[k]) / (W[k + 1] - W[k])) * h);  // interpolation error ~1e-11
  }
  return t;
}

}  // namespace

TEST_CASE("acceleration grid: equal shares of the integral of |dv/dt|^gamma on the Gaussian target",
          "[pilot_grid]") {
  const gaussian_target field;
  const kinflow::batch<double, 2> x0 = kinflow::batch<double, 2>::Random(2, 6);
  energy_grid_options o;
  o.bandwidth = 0;
  o.pilot_steps = 512;
  // Tolerance: the pilot differences are ‖x0‖·|σ'(s_{m+1}) - σ'(s_m)|, the exact integral of
  // ‖dv/dt‖ over each pilot step (RK4's path error is ~1e-12); between the nodes W is linear,
  // off by h²/8·max|w'| ≈ (1/512)²/8·40 ≈ 2e-5, and the last step's copied density moves the
  // total by about h²·max|w'| ≈ 1.5e-4 of W(1) ≈ 3, so each time by < 1e-4.
  for (double gamma : {1.0, 0.5, 2.0}) {
    INFO("gamma = " << gamma);
    o.gamma = gamma;
    const auto g = kinflow::pilot_acceleration_grid(field, kinflow::rk4, x0, 10, o);
    const auto ref = reference_grid(field, gamma, 10);
    REQUIRE(g.steps() == 10);
    CHECK(g.front() == 0.0);
    CHECK(g.back() == 1.0);
    for (std::size_t i = 0; i <= 10; ++i) CHECK(g[i] == Approx(ref[i]).margin(1e-4));
    for (std::size_t i = 0; i < 10; ++i) CHECK(g[i + 1] > g[i]);
  }
  // σ'' peaks at σ's minimum, t = 1/(1 + s²) = 0.8, where σ^-3 ≈ 11 against 1 at t = 0: the
  // step across t = 0.8 is several times shorter than the first.
  o.gamma = 1;
  const auto g = kinflow::pilot_acceleration_grid(field, kinflow::rk4, x0, 20, o);
  std::size_t at = 0;
  while (g[at + 1] <= 0.8) ++at;
  CHECK(g[1] - g[0] > 4 * (g[at + 1] - g[at]));
  // γ = 0 is the uniform grid.
  o.gamma = 0;
  const auto flat = kinflow::pilot_acceleration_grid(field, kinflow::euler, x0, 8, o);
  for (std::size_t i = 0; i <= 8; ++i) CHECK(flat[i] == Approx(i / 8.0).margin(1e-14));
}

TEST_CASE("pilot grids by name: make_grid runs the builder the spec names", "[pilot_grid]") {
  const gaussian_target field;
  const kinflow::batch<double, 2> x0 = kinflow::batch<double, 2>::Random(2, 4);
  energy_grid_options o;
  o.pilot_steps = 64;
  auto acc = kinflow::make_grid(kinflow::parse_grid_spec("acceleration:0.5"), 7, field, kinflow::heun, x0, o);
  o.gamma = 0.5;
  CHECK(acc.times() == kinflow::pilot_acceleration_grid(field, kinflow::heun, x0, 7, o).times());
  const auto energy = kinflow::make_grid(kinflow::parse_grid_spec("energy"), 7, field, kinflow::heun, x0);
  CHECK(energy.times() == kinflow::pilot_energy_grid(field, kinflow::heun, x0, 7).times());
  const auto beta = kinflow::make_grid(kinflow::parse_grid_spec("beta:0.5,0.5"), 7, field, kinflow::heun, x0);
  CHECK(beta.times() == time_grid<double>::beta(7, 0.5, 0.5).times());
}

TEST_CASE("acceleration grid: failing pilot samples are left out; bad input is rejected",
          "[pilot_grid][errors]") {
  using kinflow_test::contains;
  const gaussian_target field;
  kinflow::batch<double, 2> good(2, 2), mixed(2, 3), bad(2, 1);
  good << 0.3, -1.0, 0.7, 0.2;
  mixed << 0.3, std::nan(""), -1.0, 0.7, 0.0, 0.2;
  bad << std::nan(""), 0.0;
  energy_grid_options o;
  o.pilot_steps = 32;
  CHECK(kinflow::pilot_acceleration_grid(field, kinflow::rk4, good, 6, o).times() ==
        kinflow::pilot_acceleration_grid(field, kinflow::rk4, mixed, 6, o).times());
  CHECK_THROWS_WITH(kinflow::pilot_acceleration_grid(field, kinflow::rk4, bad, 6, o),
                    contains("pilot samples") && contains("finite"));
  CHECK_THROWS_WITH(kinflow::pilot_acceleration_grid(field, kinflow::rk4, kinflow::batch<double, 2>(2, 0), 6),
                    contains("pilot samples = 0"));
  CHECK_THROWS_WITH(kinflow::pilot_acceleration_grid(field, kinflow::rk4, good, 0), contains("steps = 0"));
  o.pilot_steps = 1;
  CHECK_THROWS_WITH(kinflow::pilot_acceleration_grid(field, kinflow::rk4, good, 6, o),
                    contains("pilot_steps = 1") && contains("at least 2"));
  o.pilot_steps = 32;
  o.gamma = -1;
  CHECK_THROWS_WITH(kinflow::pilot_acceleration_grid(field, kinflow::rk4, good, 6, o), contains("gamma = -1"));
}
