// Kinetic path energy against the Gaussian-target oracle (docs/math.md §3.4): the exact trajectory
// x(t) = t mu + σ(t) x0 gives E = ½∫‖mu + σ'(t) x0‖² dt, a 1-D integral evaluated here by
// long-double Gauss–Legendre quadrature.

#include <cmath>
#include <vector>

#include "kinflow/integrators/explicit_rk.hpp"
#include "kinflow_catch.hpp"
#include "support/oracles.hpp"

using kinflow::batch;
using kinflow::time_grid;
using vecl = Eigen::Matrix<long double, Eigen::Dynamic, 1>;

namespace {

template <class Scalar>
struct gaussian_case {
  kinflow_test::gaussian_target<Scalar, 2> field{{Scalar(1.5), Scalar(-0.5)}, Scalar(0.5)};
  std::vector<vecl> x0;
  gaussian_case() {
    for (auto [a, b] : {std::pair{0.8L, -1.1L}, std::pair{-0.3L, 0.4L}, std::pair{2.0L, 1.0L}}) {
      vecl v(2);
      v << a, b;
      x0.push_back(v);
    }
  }
  batch<Scalar, 2> start() const {
    batch<Scalar, 2> X(2, static_cast<Eigen::Index>(x0.size()));
    for (std::size_t i = 0; i < x0.size(); ++i) X.col(static_cast<Eigen::Index>(i)) = x0[i].cast<Scalar>();
    return X;
  }
};

template <class Scalar, std::size_t S>
double energy_order(const kinflow::butcher_tableau<S>& method, const std::vector<int>& steps,
                    kinflow::kpe_quadrature q) {
  gaussian_case<Scalar> c;
  std::vector<double> h, e;
  for (int n : steps) {
    auto X = c.start();
    kinflow::fixed_step_options opt;
    opt.kpe.quadrature = q;
    const auto r = kinflow::integrate(c.field, method, time_grid<>::uniform(n), X, opt);
    double worst = 0;
    for (std::size_t i = 0; i < c.x0.size(); ++i)
      worst = std::max(worst, static_cast<double>(std::abs(
                                  static_cast<long double>(r.kpe.total(static_cast<Eigen::Index>(i))) -
                                  c.field.exact_energy(c.x0[i]))));
    h.push_back(1.0 / n);
    e.push_back(worst);
  }
  return kinflow_test::convergence_slope(h, e);
}

}  // namespace

TEMPLATE_TEST_CASE("stage-consistent KPE converges at the integrator's order", "[kpe][order]",
                   float, double) {
  const bool is_float = std::is_same_v<TestType, float>;
  const auto stage = kinflow::kpe_quadrature::stage;
  CHECK(energy_order<TestType>(kinflow::euler, {32, 64, 128, 256}, stage) == Approx(1.0).margin(0.2));
  CHECK(energy_order<TestType>(kinflow::midpoint, {16, 32, 64, 128}, stage) == Approx(2.0).margin(0.2));
  CHECK(energy_order<TestType>(kinflow::heun, {16, 32, 64, 128}, stage) == Approx(2.0).margin(0.2));
  CHECK(energy_order<TestType>(kinflow::ralston, {16, 32, 64, 128}, stage) == Approx(2.0).margin(0.2));
  const std::vector<int> rk4_steps = is_float ? std::vector<int>{4, 8, 16} : std::vector<int>{8, 16, 32, 64};
  CHECK(energy_order<TestType>(kinflow::rk4, rk4_steps, stage) == Approx(4.0).margin(0.2));
}

TEMPLATE_TEST_CASE("left-Riemann KPE converges at order 1 whatever the integrator", "[kpe][order]",
                   float, double) {
  const auto left = kinflow::kpe_quadrature::left_riemann;
  CHECK(energy_order<TestType>(kinflow::euler, {32, 64, 128, 256}, left) == Approx(1.0).margin(0.2));
  CHECK(energy_order<TestType>(kinflow::rk4, {32, 64, 128, 256}, left) == Approx(1.0).margin(0.2));
}

TEST_CASE("Euler + left Riemann reproduces the reference script's loop and index split", "[kpe][reference]") {
  // The reference sampler, written out plainly: x += h v(x_i, t_i); E += ½ h ‖v‖²;
  // early when i < floor(τ N).
  gaussian_case<double> c;
  const int N = 50;
  const double tau = 0.6;
  auto X = c.start();
  batch<double, 2> Y = X, V(2, X.cols());
  Eigen::VectorXd E = Eigen::VectorXd::Zero(X.cols()), Ee = E, El = E;
  const int split = static_cast<int>(std::floor(tau * N));
  for (int i = 0; i < N; ++i) {
    const double t = static_cast<double>(i) / N, h = 1.0 / N;
    c.field(t, Y, V);
    const Eigen::VectorXd dE = 0.5 * h * V.colwise().squaredNorm().transpose();
    Y += h * V;
    E += dE;
    (i < split ? Ee : El) += dE;
  }
  kinflow::fixed_step_options opt;
  opt.kpe.quadrature = kinflow::kpe_quadrature::left_riemann;
  opt.kpe.tau = tau;
  const auto r = kinflow::integrate(c.field, kinflow::euler, time_grid<>::uniform(N), X, opt);
  CHECK((X - Y).cwiseAbs().maxCoeff() <= 1e-14);
  for (Eigen::Index i = 0; i < X.cols(); ++i) {
    CHECK(r.kpe.total(i) == Approx(E(i)).epsilon(1e-13));
    CHECK(r.kpe.early(i) == Approx(Ee(i)).epsilon(1e-13));
    CHECK(r.kpe.late(i) == Approx(El(i)).epsilon(1e-13));
  }
}

TEST_CASE("early and late parts converge to the exact split energies", "[kpe][split]") {
  // With τ on the grid, the early part is ½∫_0^τ and the late part ½∫_τ^1.
  gaussian_case<double> c;
  auto X = c.start();
  kinflow::fixed_step_options opt;
  opt.kpe.tau = 0.6;
  const auto r = kinflow::integrate(c.field, kinflow::rk4, time_grid<>::uniform(200), X, opt);
  for (std::size_t i = 0; i < c.x0.size(); ++i) {
    const auto ii = static_cast<Eigen::Index>(i);
    CHECK(r.kpe.early(ii) == Approx(static_cast<double>(c.field.exact_energy(c.x0[i], 0, 0.6L))).epsilon(1e-9));
    CHECK(r.kpe.late(ii) == Approx(static_cast<double>(c.field.exact_energy(c.x0[i], 0.6L, 1))).epsilon(1e-9));
    CHECK(r.kpe.early(ii) + r.kpe.late(ii) == Approx(r.kpe.total(ii)).epsilon(1e-14));
    CHECK(r.kpe.early(ii) > 0);
    CHECK(r.kpe.late(ii) > 0);
  }
}

TEST_CASE("per-step profiles add up to the energies", "[kpe][profile]") {
  gaussian_case<double> c;
  const auto grid = time_grid<>::cosine(40);
  auto X1 = c.start(), X2 = c.start();
  kinflow::fixed_step_options per, mean;
  per.kpe.profile = kinflow::kpe_profile::per_sample;
  mean.kpe.profile = kinflow::kpe_profile::batch_mean;
  const auto r1 = kinflow::integrate(c.field, kinflow::heun, grid, X1, per);
  const auto r2 = kinflow::integrate(c.field, kinflow::heun, grid, X2, mean);
  REQUIRE(r1.kpe.profile.rows() == X1.cols());
  REQUIRE(r1.kpe.profile.cols() == 40);
  REQUIRE(r2.kpe.profile.rows() == 40);
  REQUIRE(r2.kpe.profile.cols() == 1);
  for (Eigen::Index i = 0; i < X1.cols(); ++i)
    CHECK(r1.kpe.profile.row(i).sum() == Approx(r1.kpe.total(i)).epsilon(1e-13));
  for (Eigen::Index n = 0; n < 40; ++n) {
    CHECK(r2.kpe.profile(n, 0) == Approx(r1.kpe.profile.col(n).mean()).epsilon(1e-13));
    CHECK((r1.kpe.profile.col(n).array() >= 0).all());
  }
  // Early steps are those starting before τ = 0.6 on this cosine grid.
  for (Eigen::Index i = 0; i < X1.cols(); ++i) {
    double early = 0;
    for (std::size_t n = 0; n < 40; ++n)
      if (grid[n] < 0.6) early += r1.kpe.profile(i, static_cast<Eigen::Index>(n));
    CHECK(r1.kpe.early(i) == Approx(early).epsilon(1e-13));
  }
}

TEST_CASE("KPE can be switched off and invalid tau is rejected", "[kpe]") {
  gaussian_case<double> c;
  auto X = c.start();
  kinflow::fixed_step_options off;
  off.kpe.enabled = false;
  const auto r = kinflow::integrate(c.field, kinflow::euler, time_grid<>::uniform(4), X, off);
  CHECK(r.kpe.total.size() == 0);
  CHECK(r.all_success());
  kinflow::fixed_step_options bad;
  bad.kpe.tau = std::nan("");
  CHECK_THROWS_WITH(kinflow::integrate(c.field, kinflow::euler, time_grid<>::uniform(4), X, bad),
                    kinflow_test::contains("kpe.tau"));
}
