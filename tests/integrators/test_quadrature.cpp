// Integrals carried along the path (kinflow::along): a user's integrand at zero extra
// evaluations, in both forms, fixed-grid and adaptive, forward and backward. Oracles: the
// exact trajectory of the Gaussian target's flow (x(t) = tμ + σ(t)x0) integrated by
// Gauss–Legendre in long double; the convergence order of the integrator; ∫ 1 dt = t1 - t0.

#include <cmath>
#include <functional>
#include <vector>

#include "kinflow/integrators/adaptive.hpp"
#include "kinflow/integrators/explicit_rk.hpp"
#include "kinflow/integrators/multistep.hpp"
#include "kinflow_catch.hpp"
#include "support/oracles.hpp"

using kinflow::batch;

namespace {

using target = kinflow_test::gaussian_target<double, 2>;
const target kTarget{Eigen::Vector2d(1.5, -0.5), 0.5};

using ld_vector = Eigen::Matrix<long double, Eigen::Dynamic, 1>;

// ∫_a^b ‖x(t)‖² dt along the exact trajectory from x0.
long double exact_sq_norm_integral(const ld_vector& x0, long double a = 0, long double b = 1) {
  return kinflow_test::gauss_legendre([&](long double t) { return kTarget.exact_state(t, x0).squaredNorm(); }, a, b);
}

batch<double, 2> starts() {
  batch<double, 2> X(2, 5);
  X << 0.3, -1.2, 2.0, 0.0, -0.7,  //
      1.1, 0.4, -0.9, 0.0, -1.5;
  return X;
}

auto sq_norm = [](double, const auto& x, const auto&) { return x.squaredNorm(); };

// The same integrand in batched form.
struct sq_norm_batched {
  void operator()(const kinflow::sample_times<double>&, const batch<double, 2>& X, const batch<double, 2>&,
                  kinflow::per_sample<double>& G) const {
    G = X.colwise().squaredNorm().transpose();
  }
};

}  // namespace

TEST_CASE("A user's integrand converges at the integrator's order", "[quadrature]") {
  const auto X0 = starts();
  std::vector<double> hs, errs_rk4, errs_euler;
  for (int n : {16, 32, 64, 128}) {
    const auto grid = kinflow::time_grid<>::uniform(static_cast<std::size_t>(n));
    batch<double, 2> X = X0, Y = X0;
    const auto r = kinflow::integrate(kTarget, kinflow::rk4, grid, X, {}, kinflow::along(sq_norm));
    const auto e = kinflow::integrate(kTarget, kinflow::euler, grid, Y, {}, kinflow::along(sq_norm));
    REQUIRE(r.integrals.size() == 1);
    double err4 = 0, err1 = 0;
    for (Eigen::Index i = 0; i < X0.cols(); ++i) {
      const long double exact = exact_sq_norm_integral(X0.col(i).cast<long double>());
      err4 = std::max(err4, static_cast<double>(std::abs(r.integrals[0](i) - exact)));
      err1 = std::max(err1, static_cast<double>(std::abs(e.integrals[0](i) - exact)));
    }
    hs.push_back(1.0 / n);
    errs_rk4.push_back(err4);
    errs_euler.push_back(err1);
  }
  CHECK(kinflow_test::convergence_slope(hs, errs_rk4) == Approx(4).margin(0.2));
  CHECK(kinflow_test::convergence_slope(hs, errs_euler) == Approx(1).margin(0.2));
}

TEST_CASE("A user's integrand costs no evaluation and leaves the solve unchanged", "[quadrature]") {
  const auto grid = kinflow::time_grid<>::uniform(50);
  batch<double, 2> X = starts(), Y = starts(), Z = starts();
  const auto plain = kinflow::integrate(kTarget, kinflow::rk4, grid, X);
  const auto with = kinflow::integrate(kTarget, kinflow::rk4, grid, Y, {},
                                       kinflow::along(sq_norm, sq_norm_batched{}));
  CHECK(X == Y);
  CHECK(with.nfe == plain.nfe);
  CHECK(with.kpe.total == plain.kpe.total);
  REQUIRE(with.integrals.size() == 2);
  // The two forms of one integrand: the same sums.
  for (Eigen::Index i = 0; i < X.cols(); ++i)
    CHECK(with.integrals[0](i) == Approx(with.integrals[1](i)).epsilon(1e-15));

  // ½‖v‖² as a user integrand is the kinetic path energy (same stages, same weights).
  auto half_sq = [](double, const auto&, const auto& v) { return 0.5 * v.squaredNorm(); };
  const auto e = kinflow::integrate(kTarget, kinflow::rk4, grid, Z, {}, kinflow::along(half_sq));
  for (Eigen::Index i = 0; i < X.cols(); ++i)
    CHECK(e.integrals[0](i) == Approx(plain.kpe.total(i)).epsilon(1e-14));
}

TEST_CASE("Integrals are signed: ∫ 1 dt is the span, backward too", "[quadrature]") {
  auto one = [](double, const auto&, const auto&) { return 1.0; };
  batch<double, 2> X = starts();
  auto r = kinflow::integrate(kTarget, kinflow::heun, kinflow::time_grid<>::cosine(17), X, {}, kinflow::along(one));
  for (Eigen::Index i = 0; i < X.cols(); ++i) CHECK(r.integrals[0](i) == Approx(1.0).epsilon(1e-14));
  X = starts();
  r = kinflow::integrate(kTarget, kinflow::rk4, kinflow::time_grid<>::uniform(10).reversed(), X, {},
                         kinflow::along(one));
  for (Eigen::Index i = 0; i < X.cols(); ++i) CHECK(r.integrals[0](i) == Approx(-1.0).epsilon(1e-14));
  X = starts();
  r = kinflow::integrate_adaptive(kTarget, kinflow::dopri5, 0.9, 0.2, X, {}, kinflow::along(one));
  for (Eigen::Index i = 0; i < X.cols(); ++i) CHECK(r.integrals[0](i) == Approx(-0.7).epsilon(1e-13));
}

TEST_CASE("Adaptive solves carry integrals on their accepted steps", "[quadrature]") {
  const auto X0 = starts();
  for (double tol : {1e-6, 1e-9}) {
    batch<double, 2> X = X0;
    kinflow::adaptive_options opt;
    opt.rtol = opt.atol = tol;
    // The integrand takes part in neither the error norm nor the step count.
    batch<double, 2> Y = X0;
    const auto plain = kinflow::integrate_adaptive(kTarget, kinflow::dopri5, 0.0, 1.0, Y, opt);
    const auto r = kinflow::integrate_adaptive(kTarget, kinflow::dopri5, 0.0, 1.0, X, opt,
                                               kinflow::along(sq_norm), kinflow::pi_controller{});
    REQUIRE(r.all_success());
    for (Eigen::Index i = 0; i < X0.cols(); ++i) {
      const long double exact = exact_sq_norm_integral(X0.col(i).cast<long double>());
      CHECK(std::abs(static_cast<double>(r.integrals[0](i) - exact)) <= 20 * tol * (1 + std::abs(static_cast<double>(exact))));
    }
    // The PI controller was used: the step counts are its own, not the default's.
    CHECK(plain.accepted.sum() + plain.rejected.sum() != r.accepted.sum() + r.rejected.sum());
  }
}

TEST_CASE("A vector of integrands carries one integral per entry, as if each were listed", "[quadrature]") {
  // One type-erased integrand type, three entries; the oracle is the same integrands
  // listed one by one, which the solve computes on its compile-time channels.
  using erased = std::function<void(const kinflow::sample_times<double>&, const batch<double, 2>&,
                                    const batch<double, 2>&, kinflow::per_sample<double>&)>;
  auto scaled = [](double k) {
    return erased([k](const kinflow::sample_times<double>& T, const batch<double, 2>& X, const batch<double, 2>& V,
                      kinflow::per_sample<double>& G) {
      G = k * X.colwise().squaredNorm().transpose() + V.row(0).transpose() + T.transpose();
    });
  };
  const std::vector<erased> list{scaled(1.0), scaled(-2.0), scaled(0.5)};
  const auto one = [](double, const auto&, const auto&) { return 1.0; };
  const auto X0 = starts();
  const auto grid = kinflow::time_grid<>::uniform(20);
  auto same = [&](const kinflow::solve_result<double>& a, const kinflow::solve_result<double>& b) {
    REQUIRE(a.integrals.size() == 4);
    REQUIRE(b.integrals.size() == 4);
    for (std::size_t k = 0; k < 4; ++k) {
      INFO("integral " << k << ": " << a.integrals[k].transpose() << " vs " << b.integrals[k].transpose());
      CHECK((a.integrals[k].array() == b.integrals[k].array()).all());
    }
    CHECK((a.kpe.total.array() == b.kpe.total.array()).all());
  };
  {
    batch<double, 2> X = X0, Y = X0;
    same(kinflow::integrate(kTarget, kinflow::rk4, grid, X, {}, kinflow::along(one, list)),
         kinflow::integrate(kTarget, kinflow::rk4, grid, Y, {}, kinflow::along(one, list[0], list[1], list[2])));
  }
  {
    batch<double, 2> X = X0, Y = X0;
    same(kinflow::integrate(kTarget, kinflow::dpmpp3m, grid, X, {}, kinflow::along(one, list)),
         kinflow::integrate(kTarget, kinflow::dpmpp3m, grid, Y, {}, kinflow::along(one, list[0], list[1], list[2])));
  }
  {
    batch<double, 2> X = X0, Y = X0;
    same(kinflow::integrate_adaptive(kTarget, kinflow::dopri5, 0.0, 1.0, X, {}, kinflow::along(one, list)),
         kinflow::integrate_adaptive(kTarget, kinflow::dopri5, 0.0, 1.0, Y, {},
                                     kinflow::along(one, list[0], list[1], list[2])));
  }
  // An empty vector carries nothing.
  batch<double, 2> X = X0;
  const auto r = kinflow::integrate(kTarget, kinflow::heun, grid, X, {}, kinflow::along(one, std::vector<erased>{}));
  CHECK(r.integrals.size() == 1);
}
