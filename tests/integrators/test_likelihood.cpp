// The log-likelihood carried by a solve (kinflow/integrators/likelihood.hpp). Oracle: the
// exact flows transport N(0, I) to a known density, so the log-likelihood at each sample's
// end point must be that density's log there, within the solver's accuracy, and converge
// at the integrator's order; backward solves give the likelihood of given points.

#include <algorithm>
#include <cmath>
#include <numbers>
#include <vector>

#include "kinflow/fields/field_ref.hpp"
#include "kinflow/fields/gaussian_mixture.hpp"
#include "kinflow/fields/shaped.hpp"
#include "kinflow/integrators/adaptive.hpp"
#include "kinflow/integrators/explicit_rk.hpp"
#include "kinflow_catch.hpp"
#include "support/oracles.hpp"

using kinflow::batch;

namespace {

// The Gaussian target's flow N(0, I) → N(μ, s² I) with its exact divergence d·g(t), in
// double or float. Its Jacobian is g(t)·I.
template <class Scalar, int Dim>
struct gaussian_flow_with_divergence : kinflow_test::gaussian_target<Scalar, Dim> {
  static Scalar gain(Scalar t, Scalar s) {
    return (t * s * s - (1 - t)) / ((1 - t) * (1 - t) + t * t * s * s);
  }
  void divergence(Scalar t, const batch<Scalar, Dim>& X, kinflow::per_sample<Scalar>& D) const {
    D.setConstant(X.cols(), static_cast<Scalar>(X.rows()) * gain(t, this->s));
  }
};

// log N(x; μ, s² I) in long double: the density the flow transports N(0, I) to.
template <class Mu, class X>
long double target_log_density(const Mu& mu, long double s, const X& x) {
  const long double d = static_cast<long double>(x.size());
  const long double r2 = (x.template cast<long double>() - mu.template cast<long double>()).squaredNorm();
  return -0.5L * r2 / (s * s) - d * std::log(s) - 0.5L * d * std::log(2 * std::numbers::pi_v<long double>);
}

template <class Scalar>
batch<Scalar, 3> starts() {
  batch<double, 3> X(3, 4);
  X << 0.3, -1.2, 2.0, 0.0,  //
      1.1, 0.4, -0.9, 0.0,   //
      -0.5, 0.8, 0.1, 0.0;
  return X.cast<Scalar>();
}

template <class Scalar>
gaussian_flow_with_divergence<Scalar, 3> flow() {
  gaussian_flow_with_divergence<Scalar, 3> f;
  f.mu = Eigen::Matrix<Scalar, 3, 1>(Scalar(1.5), Scalar(-0.5), Scalar(0.25));
  f.s = Scalar(0.5);
  return f;
}

}  // namespace

TEMPLATE_TEST_CASE("The log-likelihood of the Gaussian flow is the target's log density",
                   "[likelihood]", float, double) {
  const auto f = flow<TestType>();
  const double tol = std::is_same_v<TestType, float> ? 2e-4 : 1e-9;
  // Fixed grid, RK4: forward from noise.
  {
    batch<TestType, 3> X = starts<TestType>();
    kinflow::fixed_step_options opt;
    opt.likelihood.enabled = true;
    const auto r = kinflow::integrate(f, kinflow::rk4, kinflow::time_grid<>::uniform(200), X, opt);
    REQUIRE(r.all_success());
    REQUIRE(r.log_likelihood.size() == X.cols());
    for (Eigen::Index i = 0; i < X.cols(); ++i)
      CHECK(std::abs(static_cast<double>(r.log_likelihood(i) - target_log_density(f.mu, f.s, X.col(i)))) <= tol);
  }
  // Adaptive, Dormand–Prince.
  {
    batch<TestType, 3> X = starts<TestType>();
    kinflow::adaptive_options opt;
    opt.rtol = opt.atol = std::is_same_v<TestType, float> ? 1e-5 : 1e-10;
    opt.likelihood.enabled = true;
    const auto r = kinflow::integrate_adaptive(f, kinflow::dopri5, 0.0, 1.0, X, opt);
    REQUIRE(r.all_success());
    for (Eigen::Index i = 0; i < X.cols(); ++i)
      CHECK(std::abs(static_cast<double>(r.log_likelihood(i) - target_log_density(f.mu, f.s, X.col(i)))) <= 10 * tol);
  }
}

TEMPLATE_TEST_CASE("Backward solves give the likelihood of given points", "[likelihood]", float, double) {
  const auto f = flow<TestType>();
  const double tol = std::is_same_v<TestType, float> ? 2e-4 : 1e-9;
  batch<TestType, 3> X1 = starts<TestType>();  // data points at t = 1
  {
    batch<TestType, 3> X = X1;
    kinflow::fixed_step_options opt;
    opt.likelihood.enabled = true;
    const auto r = kinflow::integrate(f, kinflow::rk4, kinflow::time_grid<>::uniform(200).reversed(), X, opt);
    REQUIRE(r.all_success());
    for (Eigen::Index i = 0; i < X.cols(); ++i)
      CHECK(std::abs(static_cast<double>(r.log_likelihood(i) - target_log_density(f.mu, f.s, X1.col(i)))) <= tol);
  }
  {
    batch<TestType, 3> X = X1;
    kinflow::adaptive_options opt;
    opt.rtol = opt.atol = std::is_same_v<TestType, float> ? 1e-5 : 1e-10;
    opt.likelihood.enabled = true;
    const auto r = kinflow::integrate_adaptive(f, kinflow::dopri5, 1.0, 0.0, X, opt);
    REQUIRE(r.all_success());
    for (Eigen::Index i = 0; i < X.cols(); ++i)
      CHECK(std::abs(static_cast<double>(r.log_likelihood(i) - target_log_density(f.mu, f.s, X1.col(i)))) <= 10 * tol);
  }
}

TEST_CASE("The log-likelihood converges at the integrator's order", "[likelihood]") {
  const auto f = flow<double>();
  for (int which = 0; which < 3; ++which) {
    std::vector<double> hs, errs;
    for (int n : {8, 16, 32, 64}) {
      batch<double, 3> X = starts<double>();
      kinflow::fixed_step_options opt;
      opt.likelihood.enabled = true;
      const auto grid = kinflow::time_grid<>::uniform(static_cast<std::size_t>(n));
      kinflow::solve_result<double> r;
      if (which == 0) r = kinflow::integrate(f, kinflow::euler, grid, X, opt);
      if (which == 1) r = kinflow::integrate(f, kinflow::heun, grid, X, opt);
      if (which == 2) r = kinflow::integrate(f, kinflow::rk4, grid, X, opt);
      double err = 0;
      // The error of log p at the computed end point, against the exact flow's value
      // (the end point's own error enters too, at the same order).
      for (Eigen::Index i = 0; i < X.cols(); ++i)
        err = std::max(err, static_cast<double>(std::abs(r.log_likelihood(i) - target_log_density(f.mu, f.s, X.col(i)))));
      hs.push_back(1.0 / n);
      errs.push_back(err);
    }
    const double order = which == 0 ? 1 : which == 1 ? 2 : 4;
    CHECK(kinflow_test::convergence_slope(hs, errs) == Approx(order).margin(0.2));
  }
}

TEST_CASE("Hutchinson's estimate where the field has no divergence", "[likelihood]") {
  // The Gaussian flow's Jacobian is g(t)·I, so every Rademacher probe gives zᵀJz = d·g
  // exactly, and the central difference of a linear field is exact up to rounding: the
  // estimate equals the exact divergence, at 2 evaluations per probe and stage.
  const auto exact_field = flow<double>();
  const kinflow_test::gaussian_target<double, 3> plain{exact_field.mu, exact_field.s};
  batch<double, 3> X = starts<double>(), Y = X;
  kinflow::fixed_step_options opt;
  opt.likelihood.enabled = true;
  const auto grid = kinflow::time_grid<>::uniform(50);
  const auto exact = kinflow::integrate(exact_field, kinflow::rk4, grid, X, opt);
  opt.likelihood.divergence.hutchinson.probes = 2;
  const auto est = kinflow::integrate(plain, kinflow::rk4, grid, Y, opt);
  CHECK(X == Y);
  for (Eigen::Index i = 0; i < X.cols(); ++i) CHECK(est.log_likelihood(i) == Approx(exact.log_likelihood(i)).epsilon(1e-8));
  CHECK(exact.nfe(0) == 4 * 50);
  CHECK(est.nfe(0) == 4 * 50 + 4 * 50 * 2 * 2);  // each stage: 2 probes × 2 evaluations

  // Asking for the exact divergence of a field without one is an error naming the option.
  opt.likelihood.divergence.method = kinflow::divergence_method::exact;
  Y = starts<double>();
  CHECK_THROWS_WITH(kinflow::integrate(plain, kinflow::rk4, grid, Y, opt),
                    kinflow_test::contains("divergence_options.method"));
}

TEST_CASE("The log-likelihood needs a solve between t = 0 and t = 1", "[likelihood][errors]") {
  const auto f = flow<double>();
  batch<double, 3> X = starts<double>();
  kinflow::fixed_step_options opt;
  opt.likelihood.enabled = true;
  CHECK_THROWS_WITH(kinflow::integrate(f, kinflow::rk4, kinflow::time_grid<>::uniform(10, 0.0, 0.5), X, opt),
                    kinflow_test::contains("likelihood.enabled"));
  kinflow::adaptive_options aopt;
  aopt.likelihood.enabled = true;
  CHECK_THROWS_WITH(kinflow::integrate_adaptive(f, kinflow::dopri5, 0.2, 1.0, X, aopt),
                    kinflow_test::contains("t = 0 to t = 1"));
  // Without the option, nothing is computed.
  const auto r = kinflow::integrate(f, kinflow::rk4, kinflow::time_grid<>::uniform(10), X);
  CHECK(r.log_likelihood.size() == 0);
}

namespace {

// log Σ_k π_k N(x; μ_k, s_k² I) in long double, by log-sum-exp: the density the exact
// mixture flow transports N(0, I) to.
template <class X>
long double mixture_log_density(const Eigen::VectorXd& w, const Eigen::MatrixXd& mu, const Eigen::VectorXd& s,
                                const X& x) {
  const long double d = static_cast<long double>(x.size());
  std::vector<long double> terms;
  for (Eigen::Index k = 0; k < w.size(); ++k) {
    const long double sk = s(k);
    const long double r2 = (x.template cast<long double>() - mu.col(k).cast<long double>()).squaredNorm();
    terms.push_back(std::log(static_cast<long double>(w(k))) - 0.5L * r2 / (sk * sk) - d * std::log(sk) -
                    0.5L * d * std::log(2 * std::numbers::pi_v<long double>));
  }
  const long double m = *std::max_element(terms.begin(), terms.end());
  long double z = 0;
  for (long double t : terms) z += std::exp(t - m);
  return m + std::log(z);
}

}  // namespace

TEMPLATE_TEST_CASE("The log-likelihood of the exact mixture flow is the mixture's log density",
                   "[likelihood][mixture]", float, double) {
  // Four components of different widths in 2-D, and the smoothed empirical field (equal
  // widths at every training point): both carry an exact divergence.
  Eigen::VectorXd w(4), s(4);
  w << 0.1, 0.2, 0.3, 0.4;
  s << 0.2, 0.35, 0.5, 0.25;
  Eigen::MatrixXd mu(2, 4);
  mu << 2, -1, 0.5, -2,  //
      0, 1.5, -2, -1;
  const kinflow::gaussian_mixture_field<TestType, 2> gmm(w.cast<TestType>(), mu.cast<TestType>(), s.cast<TestType>());
  const batch<TestType, 2> points = mu.cast<TestType>();
  const auto smoothed = kinflow::smoothed_empirical(points, TestType(0.3));
  const Eigen::VectorXd w_equal = Eigen::VectorXd::Constant(4, 0.25), s_equal = Eigen::VectorXd::Constant(4, 0.3);
  const bool is_float = std::is_same_v<TestType, float>;

  batch<double, 2> X0(2, 6);
  X0 << 0.3, -1.2, 2.0, 0.0, -0.7, 1.4,  //
      1.1, 0.4, -0.9, 0.0, -1.5, 2.2;
  const batch<TestType, 2> start = X0.cast<TestType>();
  for (int which = 0; which < 2; ++which) {
    INFO((which == 0 ? "mixture" : "smoothed empirical"));
    const Eigen::VectorXd& ww = which == 0 ? w : w_equal;
    const Eigen::VectorXd& ss = which == 0 ? s : s_equal;
    auto check_forward = [&](const auto& field, double tol) {
      // RK4 on a fine grid, and Dormand–Prince.
      batch<TestType, 2> X = start, Y = start;
      kinflow::fixed_step_options fo;
      fo.likelihood.enabled = true;
      const auto r = kinflow::integrate(field, kinflow::rk4, kinflow::time_grid<>::uniform(400), X, fo);
      kinflow::adaptive_options ao;
      ao.rtol = ao.atol = is_float ? 1e-5 : 1e-9;
      ao.likelihood.enabled = true;
      const auto a = kinflow::integrate_adaptive(field, kinflow::dopri5, 0.0, 1.0, Y, ao);
      REQUIRE(r.all_success());
      REQUIRE(a.all_success());
      for (Eigen::Index i = 0; i < X.cols(); ++i) {
        CHECK(std::abs(static_cast<double>(r.log_likelihood(i) - mixture_log_density(ww, mu, ss, X.col(i)))) <= tol);
        CHECK(std::abs(static_cast<double>(a.log_likelihood(i) - mixture_log_density(ww, mu, ss, Y.col(i)))) <= 10 * tol);
      }
    };
    auto check_backward = [&](const auto& field, double tol) {
      // Given points at t = 1 (the starts, read as data): their likelihood.
      batch<TestType, 2> X = start;
      kinflow::adaptive_options ao;
      ao.rtol = ao.atol = is_float ? 1e-5 : 1e-9;
      ao.likelihood.enabled = true;
      const auto a = kinflow::integrate_adaptive(field, kinflow::dopri5, 1.0, 0.0, X, ao);
      REQUIRE(a.all_success());
      for (Eigen::Index i = 0; i < X.cols(); ++i)
        CHECK(std::abs(static_cast<double>(a.log_likelihood(i) - mixture_log_density(ww, mu, ss, X0.col(i)))) <= 10 * tol);
    };
    const double tol = is_float ? 2e-3 : 1e-7;
    if (which == 0) {
      check_forward(gmm, tol);
      check_backward(gmm, tol);
    } else {
      check_forward(smoothed, tol);
      check_backward(smoothed, tol);
    }
  }
}

TEST_CASE("The log-likelihood of a shaped field integrates η·div v", "[likelihood][shaped]") {
  // With a KTS gain the flow no longer ends at the target, but the likelihood is still the
  // change of variables of the shaped flow: an exact divergence η·div v and Hutchinson's
  // estimate of the shaped velocity (isotropic Jacobian: exact per probe) agree.
  const auto f = flow<double>();
  const kinflow_test::gaussian_target<double, 3> plain{f.mu, f.s};
  const kinflow::kts_gain gain(kinflow::kts_options{.alpha0 = 0.3, .beta0 = 0.05, .tau = 0.5});
  batch<double, 3> X = starts<double>(), Y = X;
  kinflow::fixed_step_options opt;
  opt.likelihood.enabled = true;
  const auto grid = kinflow::time_grid<>::uniform(100);
  const auto exact = kinflow::integrate(kinflow::shaped(f, gain), kinflow::rk4, grid, X, opt);
  const auto est = kinflow::integrate(kinflow::shaped(plain, gain), kinflow::rk4, grid, Y, opt);
  CHECK(X == Y);
  for (Eigen::Index i = 0; i < X.cols(); ++i) CHECK(est.log_likelihood(i) == Approx(exact.log_likelihood(i)).epsilon(1e-8));
  // And it differs from the unshaped one (the gain changes the path and the divergence).
  batch<double, 3> Z = starts<double>();
  const auto unshaped = kinflow::integrate(f, kinflow::rk4, grid, Z, opt);
  CHECK(std::abs(unshaped.log_likelihood(0) - exact.log_likelihood(0)) > 1e-3);
}

TEST_CASE("A sample that stops early has no log-likelihood", "[likelihood][status]") {
  const auto f = flow<double>();
  batch<double, 3> X = starts<double>();
  kinflow::adaptive_options opt;
  opt.likelihood.enabled = true;
  opt.max_steps = 2;  // too few to reach t = 1
  const auto r = kinflow::integrate_adaptive(f, kinflow::dopri5, 0.0, 1.0, X, opt);
  for (Eigen::Index i = 0; i < X.cols(); ++i) {
    CHECK(r.status[static_cast<std::size_t>(i)] == kinflow::solve_status::max_steps_reached);
    CHECK(std::isnan(r.log_likelihood(i)));
  }
}

TEST_CASE("A user's integral that is not finite leaves the state's solve alone", "[quadrature][status]") {
  // 1/(t - 0.5) has a pole inside the interval: the integral is not finite, the state is.
  const auto f = flow<double>();
  batch<double, 3> X = starts<double>(), Y = X;
  auto pole = [](double t, const auto&, const auto&) { return 1.0 / (t - 0.5); };
  const auto r = kinflow::integrate_adaptive(f, kinflow::dopri5, 0.0, 1.0, X, {}, kinflow::along(pole),
                                             [](const auto&) {});
  const auto plain = kinflow::integrate_adaptive(f, kinflow::dopri5, 0.0, 1.0, Y);
  CHECK(r.all_success());
  CHECK(X == Y);
  CHECK(r.accepted == plain.accepted);
  (void)r.integrals.at(0);
}

TEST_CASE("A solve through a field reference gives the field's own results", "[likelihood][field_ref]") {
  // kinflow::field_ref / exact_field_ref only forward the calls, so every solve must give
  // the same bits as the field passed as it is: states, energies, likelihoods, counters.
  auto same = [](const auto& a, const auto& b, const auto& XA, const auto& XB) {
    CHECK(XA == XB);
    CHECK(a.kpe.total == b.kpe.total);
    CHECK(a.kpe.early == b.kpe.early);
    CHECK(a.log_likelihood == b.log_likelihood);
    CHECK(a.nfe == b.nfe);
    CHECK(a.status == b.status);
  };
  // RK4 on a grid and Dormand–Prince with a KTS gain outside the reference (its τ is then
  // the switch time either way), with and without the likelihood.
  auto compare = [&](const auto& field, bool expect_exact, const auto& start) {
    using Batch = std::remove_cvref_t<decltype(start)>;
    using Scalar = typename Batch::Scalar;
    constexpr int Dim = Batch::RowsAtCompileTime;
    kinflow::with_field_ref<Scalar, Dim>(field, start.rows(), [&](auto& ref) {
      using Ref = std::remove_cvref_t<decltype(ref)>;
      CHECK(std::is_same_v<Ref, kinflow::exact_field_ref<Scalar, Dim>> == expect_exact);
      CHECK(ref.dim() == start.rows());
      const auto copy = ref;  // copies refer to the same field
      const auto gain = kinflow::kts_gain(kinflow::kts_options{.alpha0 = 0.3, .beta0 = 0.05, .tau = 0.4});
      for (const bool likelihood : {false, true}) {
        INFO("likelihood " << likelihood);
        kinflow::fixed_step_options fo;
        fo.likelihood.enabled = likelihood;
        fo.likelihood.divergence.hutchinson.probes = 2;
        const auto grid = kinflow::time_grid<>::uniform(40);
        Batch X = start, Y = start;
        same(kinflow::integrate(field, kinflow::rk4, grid, X, fo), kinflow::integrate(copy, kinflow::rk4, grid, Y, fo),
             X, Y);
        kinflow::adaptive_options ao;
        ao.rtol = ao.atol = 1e-6;
        ao.likelihood = fo.likelihood;
        X = start;
        Y = start;
        same(kinflow::integrate_adaptive(kinflow::shaped(field, gain), kinflow::dopri5, 0.0, 1.0, X, ao),
             kinflow::integrate_adaptive(kinflow::shaped(ref, gain), kinflow::dopri5, 0.0, 1.0, Y, ao), X, Y);
      }
      // A reference to a shaped field has the gain's switch time.
      const auto shaped = kinflow::shaped(field, gain);
      CHECK(kinflow::with_field_ref<Scalar, Dim>(shaped, start.rows(), [](auto& r) { return r.switch_time(); }) ==
            std::optional<double>(0.4));
    });
  };
  // A closed-form mixture (velocity and divergence from one pass), a batched flow with a
  // divergence of its own, and a field without one (Hutchinson's estimate, same probes).
  Eigen::VectorXd w(3), s(3);
  w << 0.2, 0.3, 0.5;
  s << 0.3, 0.2, 0.4;
  Eigen::MatrixXd mu(2, 3);
  mu << 1, -1, 0.5,  //
      0, 1.5, -2;
  const kinflow::gaussian_mixture_field<double, 2> gmm(w, mu, s);
  batch<double, 2> X0(2, 5);
  X0 << 0.3, -1.2, 2.0, 0.0, -0.7,  //
      1.1, 0.4, -0.9, 0.0, -1.5;
  compare(gmm, true, X0);
  const auto f = flow<double>();
  compare(f, true, starts<double>());
  compare(kinflow_test::gaussian_target<double, 3>{f.mu, f.s}, false, starts<double>());
}
