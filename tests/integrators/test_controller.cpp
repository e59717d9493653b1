// Step-size controllers of adaptive solves: the I controller (the default), the PI
// controller, and a user's own. Oracles: SciPy RK45's step counts (the I controller's
// published behaviour; a PI controller with β₁ = 1, β₂ = 0 is the same formula), known
// solutions for the tolerance, and step-count arithmetic for a user controller.

#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>
#include <vector>

#include "kinflow/integrators/adaptive.hpp"
#include "kinflow_catch.hpp"
#include "support/oracles.hpp"

using kinflow::batch;
using kinflow_test::decay_field;  // x(t) = x0 / (1 + x0 t²)

namespace {

// SciPy's RK45 (rtol = atol = tol) on decay_field from x0 = 1 over [0, 2]: nfev, steps and
// x(2), from tests/support/scipy_rk45_reference.py (as in test_adaptive.cpp).
struct scipy_run {
  double tol;
  std::int64_t nfev, steps;
  double x;
};
constexpr scipy_run scipy_decay_x0_1[3] = {
    {1e-4, 62, 9, 0.2001901328387624}, {1e-6, 104, 14, 0.20000069652733443}, {1e-8, 182, 27, 0.20000000485000036}};

// A problem whose step size is limited by stability, not accuracy, where the I
// controller oscillates: x' = -50 (x - cos t), x(0) = 0 (Hairer & Wanner II, §IV.2).
struct stiffish_field {
  template <class Scalar, class X, class V>
  void operator()(Scalar t, const X& x, V& v) const {
    v = -50 * (x.array() - std::cos(t)).matrix();
  }
};
double stiffish_exact(double t) {
  // x = (2500 cos t + 50 sin t - 2500 e^{-50 t}) / 2501
  return (2500 * std::cos(t) + 50 * std::sin(t) - 2500 * std::exp(-50 * t)) / 2501;
}

// A user's controller: keeps the step on acceptance and halves it on rejection.
struct keep_or_halve {
  struct memory {
    int rejections = 0;
  };
  double next_factor(double, bool accepted, int, memory& m) const {
    if (!accepted) ++m.rejections;
    return accepted ? 1.0 : 0.5;
  }
};

}  // namespace

TEST_CASE("The default controller is the I controller of the reference algorithm", "[controller]") {
  for (const auto& ref : scipy_decay_x0_1) {
    kinflow::adaptive_options opt;
    opt.rtol = opt.atol = ref.tol;
    for (int which = 0; which < 3; ++which) {
      batch<double, 1> X(1, 1);
      X << 1.0;
      kinflow::solve_result<double> r;
      if (which == 0) r = kinflow::integrate_adaptive(decay_field{}, kinflow::dopri5, 0.0, 2.0, X, opt);
      if (which == 1)
        r = kinflow::integrate_adaptive(decay_field{}, kinflow::dopri5, 0.0, 2.0, X, opt, kinflow::i_controller{});
      if (which == 2)  // PI with β₁ = 1, β₂ = 0 is the I controller's formula
        r = kinflow::integrate_adaptive(decay_field{}, kinflow::dopri5, 0.0, 2.0, X, opt,
                                        kinflow::pi_controller{.beta1 = 1.0, .beta2 = 0.0});
      REQUIRE(r.all_success());
      CHECK(r.nfe(0) == ref.nfev);
      CHECK(r.accepted(0) == ref.steps);
      CHECK(X(0, 0) == Approx(ref.x).epsilon(1e-12));
    }
  }
}

TEMPLATE_TEST_CASE("The PI controller meets the tolerance", "[controller]", float, double) {
  const bool is_float = std::is_same_v<TestType, float>;
  for (double tol : is_float ? std::vector<double>{1e-4} : std::vector<double>{1e-4, 1e-6, 1e-8}) {
    kinflow::adaptive_options opt;
    opt.rtol = opt.atol = tol;
    batch<TestType, 1> X(1, 3);
    X << TestType(0.5), TestType(1), TestType(2);
    const auto r = kinflow::integrate_adaptive(decay_field{}, kinflow::dopri5, 0.0, 2.0, X, opt,
                                               kinflow::pi_controller{});
    REQUIRE(r.all_success());
    for (int i = 0; i < 3; ++i) {
      const double x0 = i == 0 ? 0.5 : i == 1 ? 1.0 : 2.0;
      CHECK(std::abs(static_cast<double>(X(0, i)) - x0 / (1 + 4 * x0)) <= 5 * tol + 64 * std::numeric_limits<TestType>::epsilon());
    }
  }
}

TEST_CASE("The PI controller damps the I controller's rejections on a stability-limited problem",
          "[controller]") {
  kinflow::adaptive_options opt;
  opt.rtol = opt.atol = 1e-3;
  batch<double, 1> XI = batch<double, 1>::Zero(1, 1), XPI = XI;
  const auto ri = kinflow::integrate_adaptive(stiffish_field{}, kinflow::dopri5, 0.0, 10.0, XI, opt);
  const auto rp = kinflow::integrate_adaptive(stiffish_field{}, kinflow::dopri5, 0.0, 10.0, XPI, opt,
                                              kinflow::pi_controller{});
  REQUIRE(ri.all_success());
  REQUIRE(rp.all_success());
  CHECK(std::abs(XI(0, 0) - stiffish_exact(10)) <= 1e-2);
  CHECK(std::abs(XPI(0, 0) - stiffish_exact(10)) <= 1e-2);
  INFO("I: " << ri.accepted(0) << " accepted, " << ri.rejected(0) << " rejected; PI: "
             << rp.accepted(0) << " accepted, " << rp.rejected(0) << " rejected");
  CHECK(rp.rejected(0) < ri.rejected(0));
}

TEST_CASE("A user's controller decides the steps", "[controller]") {
  // Step 0.125 kept throughout on a problem easy enough that no step is rejected:
  // exactly 8 accepted steps over [0, 1].
  kinflow::adaptive_options opt;
  opt.rtol = opt.atol = 1e-3;
  opt.dt_initial = 0.125;
  batch<double, 1> X(1, 2);
  X << 0.5, 1.0;
  auto r = kinflow::integrate_adaptive(decay_field{}, kinflow::dopri5, 0.0, 1.0, X, opt, keep_or_halve{});
  REQUIRE(r.all_success());
  CHECK(r.accepted(0) == 8);
  CHECK(r.rejected(0) == 0);
  CHECK(r.nfe(0) == 1 + 8 * 6);  // first stage, then 6 per FSAL step (no heuristic: dt_initial)

  // Too large a first step at a tight tolerance: halved until accepted, then kept.
  opt.rtol = opt.atol = 1e-9;
  opt.dt_initial = 1.0;
  X << 0.5, 1.0;
  r = kinflow::integrate_adaptive(decay_field{}, kinflow::dopri5, 0.0, 1.0, X, opt, keep_or_halve{});
  REQUIRE(r.all_success());
  // After m halvings the step is 2^-m, kept: 2^m accepted steps.
  const auto m = r.rejected(0);
  CHECK(r.accepted(0) == (std::int64_t{1} << m));
  CHECK(std::abs(X(0, 0) - 0.5 / 1.5) < 1e-8);
}

TEST_CASE("Controller parameters are validated", "[controller][errors]") {
  kinflow::adaptive_options opt;
  batch<double, 1> X = batch<double, 1>::Ones(1, 1);
  CHECK_THROWS_WITH(kinflow::integrate_adaptive(decay_field{}, kinflow::dopri5, 0.0, 1.0, X, opt,
                                                kinflow::pi_controller{.beta1 = 0.3, .beta2 = 0.4}),
                    kinflow_test::contains("beta2"));
  CHECK_THROWS_WITH(kinflow::integrate_adaptive(decay_field{}, kinflow::dopri5, 0.0, 1.0, X, opt,
                                                kinflow::i_controller{.safety = 1.5}),
                    kinflow_test::contains("safety"));
  CHECK_THROWS_WITH(kinflow::integrate_adaptive(decay_field{}, kinflow::dopri5, 0.0, 1.0, X, opt,
                                                kinflow::pi_controller{.factor_min = 0}),
                    kinflow_test::contains("factor_min"));
}

TEST_CASE("A controller's factor that is not finite and positive is an error", "[controller][errors]") {
  struct broken {
    struct memory {};
    double factor;
    double next_factor(double, bool, int, memory&) const { return factor; }
  };
  kinflow::adaptive_options opt;
  for (double f : {std::numeric_limits<double>::quiet_NaN(), 0.0, -1.0}) {
    batch<double, 1> X = batch<double, 1>::Ones(1, 2);
    CHECK_THROWS_WITH(kinflow::integrate_adaptive(decay_field{}, kinflow::dopri5, 0.0, 1.0, X, opt, broken{f}),
                      kinflow_test::contains("controller.next_factor"));
  }
}

TEST_CASE("Integrals in the error norm with atol = 0 and a zero integrand", "[controller]") {
  // A divergence-free field (a rotation): the log-likelihood's integral and its error are 0,
  // which with atol = 0 must not make a 0/0 in the error norm.
  struct rotation {
    void operator()(double, const batch<double, 2>& X, batch<double, 2>& V) const {
      V.row(0) = -X.row(1);
      V.row(1) = X.row(0);
    }
    void divergence(double, const batch<double, 2>& X, kinflow::per_sample<double>& D) const {
      D.setZero(X.cols());
    }
  };
  kinflow::adaptive_options opt;
  opt.atol = 0;
  opt.rtol = 1e-8;
  opt.likelihood.enabled = true;
  batch<double, 2> X(2, 2);
  X << 1, 0.5, 0.3, -2;  // no coordinate exactly 0: with atol = 0 its own scale would be 0
  const batch<double, 2> X0 = X;
  const auto r = kinflow::integrate_adaptive(rotation{}, kinflow::dopri5, 0.0, 1.0, X, opt);
  REQUIRE(r.all_success());
  // The flow is a rotation by 1 radian; it preserves N(0, I), so log p₁(x(1)) = log N(x(1)).
  for (Eigen::Index i = 0; i < 2; ++i) {
    CHECK(X(0, i) == Approx(std::cos(1.0) * X0(0, i) - std::sin(1.0) * X0(1, i)).margin(1e-7));
    CHECK(r.log_likelihood(i) == Approx(-0.5 * X.col(i).squaredNorm() - std::log(2 * std::numbers::pi)).margin(1e-7));
  }
}
