// Adaptive embedded Runge–Kutta (Dormand–Prince 5(4), Bogacki–Shampine 3(2)) with
// per-sample step-size control: tolerance met on problems with known solutions,
// independence of samples, NFE accounting, statuses, backward integration, bad input.

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kinflow/integrators/adaptive.hpp"
#include "kinflow_catch.hpp"
#include "support/oracles.hpp"

using kinflow::batch;

namespace {

using kinflow_test::decay_field;  // x(t) = x0 / (1 + x0 t²)

// Rotation at a per-sample angular speed: state (a, b, ω), a' = -ω(1+t) b, b' = ω(1+t) a,
// ω' = 0. Exact: angle θ = ω (t + t²/2). Samples with large ω are hard (many oscillations).
struct spinning_field {
  template <class Scalar, class X, class V>
  void operator()(Scalar t, const X& x, V& v) const {
    v.row(0) = -(1 + t) * x.row(2).cwiseProduct(x.row(1));
    v.row(1) = (1 + t) * x.row(2).cwiseProduct(x.row(0));
    v.row(2).setZero();
  }
};
// The same field offering one time per column (the batched adaptive path).
struct spinning_field_timed : spinning_field {
  template <class Scalar, class X, class V>
  void velocity_at_times(const kinflow::sample_times<Scalar>& T, const X& x, V& v) const {
    for (Eigen::Index i = 0; i < x.cols(); ++i) {
      const Scalar w = (1 + T(i)) * x(2, i);
      v(0, i) = -w * x(1, i);
      v(1, i) = w * x(0, i);
      v(2, i) = 0;
    }
  }
};

Eigen::Vector3d spin_exact(double omega, double t, double a0, double b0) {
  const double th = omega * (t + 0.5 * t * t);
  return {a0 * std::cos(th) - b0 * std::sin(th), a0 * std::sin(th) + b0 * std::cos(th), omega};
}

}  // namespace

// SciPy's RK45 on the same problems (tests/support/scipy_rk45_reference.py): the
// reference sampler's adaptive path uses the same Dormand–Prince pair and controller.
struct scipy_run {
  double tol;
  std::int64_t nfev, steps;
  double x;
};
constexpr scipy_run scipy_decay[3][3] = {  // [tol][x0 = 0.5, 1, 2]
    {{1e-4, 50, 7, 0.1667343783408778}, {1e-4, 62, 9, 0.2001901328387624}, {1e-4, 68, 10, 0.22237928227981846}},
    {{1e-6, 86, 11, 0.16666722121641409}, {1e-6, 104, 14, 0.20000069652733443}, {1e-6, 122, 18, 0.2222229889628556}},
    {{1e-8, 134, 19, 0.16666667071428182}, {1e-8, 182, 27, 0.20000000485000036}, {1e-8, 242, 36, 0.2222222269210278}}};
constexpr scipy_run scipy_spin[3] = {{1e-4, 116, 17, 0.844163217113618},
                                     {1e-6, 254, 42, 0.8438502850718249},
                                     {1e-8, 644, 107, 0.8438539115072596}};

TEST_CASE("Dormand–Prince takes the reference algorithm's steps (SciPy RK45)", "[adaptive][reference]") {
  for (int k = 0; k < 3; ++k) {
    kinflow::adaptive_options opt;
    opt.rtol = opt.atol = scipy_spin[k].tol;
    batch<double, 3> Y(3, 1);
    Y << 1, 0, 3;
    auto r = kinflow::integrate_adaptive(spinning_field{}, kinflow::dopri5, 0.0, 2.0, Y, opt);
    REQUIRE(r.all_success());
    CHECK(r.nfe(0) == scipy_spin[k].nfev);
    CHECK(r.accepted(0) == scipy_spin[k].steps);
    CHECK(Y(0, 0) == Approx(scipy_spin[k].x).epsilon(1e-12));

    // Three decay samples in one batch: each must match its own SciPy run.
    batch<double, 1> X(1, 3);
    X << 0.5, 1.0, 2.0;
    r = kinflow::integrate_adaptive(decay_field{}, kinflow::dopri5, 0.0, 2.0, X, opt);
    REQUIRE(r.all_success());
    for (int i = 0; i < 3; ++i) {
      CHECK(r.nfe(i) == scipy_decay[k][i].nfev);
      CHECK(r.accepted(i) == scipy_decay[k][i].steps);
      CHECK(X(0, i) == Approx(scipy_decay[k][i].x).epsilon(1e-12));
    }
  }
}

TEMPLATE_TEST_CASE("Dormand–Prince meets the tolerance on problems with known solutions",
                   "[adaptive][tolerance]", float, double) {
  // Global error is not bounded by the tolerance (local error is); the bound used here is
  // twice the reference algorithm's own global error on the same problem, plus rounding.
  const bool is_float = std::is_same_v<TestType, float>;
  const double rounding = 64 * std::numeric_limits<TestType>::epsilon();
  for (int k = 0; k < (is_float ? 1 : 3); ++k) {
    const double tol = scipy_spin[k].tol;
    kinflow::adaptive_options opt;
    opt.rtol = opt.atol = tol;
    batch<TestType, 1> X(1, 3);
    X << TestType(0.5), TestType(1), TestType(2);
    auto r = kinflow::integrate_adaptive(decay_field{}, kinflow::dopri5, 0.0, 2.0, X, opt);
    REQUIRE(r.all_success());
    for (int i = 0; i < 3; ++i) {
      const double x0 = i == 0 ? 0.5 : i == 1 ? 1.0 : 2.0;
      const double exact = x0 / (1 + 4 * x0);
      const double reference_error = std::abs(scipy_decay[k][i].x - exact);
      CHECK(std::abs(static_cast<double>(X(0, i)) - exact) <= 2 * reference_error + rounding);
      CHECK(std::abs(static_cast<double>(X(0, i)) - exact) <= 5 * tol);
    }
    batch<TestType, 3> Y(3, 1);
    Y << TestType(1), TestType(0), TestType(3);
    r = kinflow::integrate_adaptive(spinning_field{}, kinflow::dopri5, 0.0, 2.0, Y, opt);
    REQUIRE(r.all_success());
    const Eigen::Vector3d e = spin_exact(3, 2, 1, 0);
    const double reference_error = std::abs(scipy_spin[k].x - e(0));
    CHECK(std::abs(static_cast<double>(Y(0, 0)) - e(0)) <= 2 * reference_error + rounding);
  }
}

TEST_CASE("Dormand–Prince global error shrinks with the tolerance", "[adaptive][tolerance]") {
  std::vector<double> errs;
  for (double tol : {1e-4, 1e-6, 1e-8, 1e-10}) {
    batch<double, 3> Y(3, 1);
    Y << 1, 0, 3;
    kinflow::adaptive_options opt;
    opt.rtol = opt.atol = tol;
    kinflow::integrate_adaptive(spinning_field{}, kinflow::dopri5, 0.0, 2.0, Y, opt);
    errs.push_back((Y.col(0) - spin_exact(3, 2, 1, 0)).norm());
  }
  for (std::size_t i = 1; i < errs.size(); ++i) CHECK(errs[i] < errs[i - 1] / 10);
}

TEST_CASE("Bogacki–Shampine meets the tolerance too", "[adaptive][tolerance]") {
  batch<double, 3> Y(3, 2);
  Y << 1, 0, 0, 1, 3, 1;
  kinflow::adaptive_options opt;
  opt.rtol = opt.atol = 1e-7;
  const auto r = kinflow::integrate_adaptive(spinning_field{}, kinflow::bs32, 0.0, 2.0, Y, opt);
  REQUIRE(r.all_success());
  CHECK((Y.col(0) - spin_exact(3, 2, 1, 0)).norm() < 1e-5);
  CHECK((Y.col(1) - spin_exact(1, 2, 0, 1)).norm() < 1e-5);
}

TEST_CASE("per-sample control: an easy sample is not slowed by a hard one", "[adaptive][per_sample]") {
  // Column 0 easy (ω = 1), column 1 hard (ω = 60).
  batch<double, 3> both(3, 2);
  both << 1, 1, 0, 0, 1, 60;
  batch<double, 3> easy = both.col(0), hard = both.col(1);
  const auto rb = kinflow::integrate_adaptive(spinning_field{}, kinflow::dopri5, 0.0, 1.0, both);
  const auto re = kinflow::integrate_adaptive(spinning_field{}, kinflow::dopri5, 0.0, 1.0, easy);
  const auto rh = kinflow::integrate_adaptive(spinning_field{}, kinflow::dopri5, 0.0, 1.0, hard);
  REQUIRE(rb.all_success());
  CHECK(rb.accepted(0) * 5 < rb.accepted(1));
  // Each sample's solve is exactly what it would be alone.
  CHECK(rb.accepted(0) == re.accepted(0));
  CHECK(rb.rejected(0) == re.rejected(0));
  CHECK(rb.nfe(0) == re.nfe(0));
  CHECK(rb.accepted(1) == rh.accepted(0));
  CHECK(rb.nfe(1) == rh.nfe(0));
  CHECK(both.col(0) == easy.col(0));
  CHECK(both.col(1) == hard.col(0));
  CHECK(rb.kpe.total(0) == re.kpe.total(0));
  // and both are accurate
  CHECK((both.col(0) - spin_exact(1, 1, 1, 0)).norm() < 1e-4);
  CHECK((both.col(1) - spin_exact(60, 1, 1, 0)).norm() < 1e-3);
}

TEST_CASE("fields with per-column times get the same answer in one batched call per stage",
          "[adaptive][per_sample]") {
  batch<double, 3> A(3, 4);
  A << 1, 0, 1, 0.5, 0, 1, 1, -0.5, 1, 7, 20, 3;
  batch<double, 3> B = A;
  const auto ra = kinflow::integrate_adaptive(spinning_field{}, kinflow::dopri5, 0.0, 1.0, A);
  const auto rb = kinflow::integrate_adaptive(spinning_field_timed{}, kinflow::dopri5, 0.0, 1.0, B);
  CHECK((A - B).cwiseAbs().maxCoeff() <= 1e-14);
  CHECK(ra.accepted == rb.accepted);
  CHECK(ra.nfe == rb.nfe);
}

TEST_CASE("NFE per sample counts every field evaluation of that sample", "[adaptive][nfe]") {
  // Count the columns the field is actually evaluated on.
  std::int64_t columns_evaluated = 0;
  auto counting = [&](double t, const batch<double, 3>& x, batch<double, 3>& v) {
    columns_evaluated += x.cols();
    spinning_field{}(t, x, v);
  };
  batch<double, 3> Y(3, 3);
  Y << 1, 0, 1, 0, 1, 1, 2, 15, 40;
  auto r = kinflow::integrate_adaptive(counting, kinflow::dopri5, 0.0, 1.0, Y);
  CHECK(r.nfe.sum() == columns_evaluated);
  for (Eigen::Index i = 0; i < 3; ++i)  // FSAL: 1 first stage + 1 initial-step + 6 per attempt
    CHECK(r.nfe(i) == 2 + 6 * (r.accepted(i) + r.rejected(i)));

  columns_evaluated = 0;
  batch<double, 3> Z(3, 1);
  Z << 1, 0, 2;
  kinflow::adaptive_options given;
  given.dt_initial = 0.01;
  r = kinflow::integrate_adaptive(counting, kinflow::bs32, 0.0, 1.0, Z, given);
  CHECK(r.nfe(0) == 1 + 3 * (r.accepted(0) + r.rejected(0)));
  CHECK(r.nfe.sum() == columns_evaluated);
}

TEST_CASE("observers see every accepted step of every sample", "[adaptive][observer]") {
  batch<double, 3> Y(3, 2);
  Y << 1, 0, 0, 1, 2, 9;
  const batch<double, 3> start = Y;
  std::vector<double> span(2, 0.0);
  std::vector<std::int64_t> calls(2, 0);
  double worst = 0, worst_stage = 0;
  auto obs = [&](const kinflow::adaptive_step_view<double, 3, 7>& v) {
    const auto i = static_cast<std::size_t>(v.sample);
    span[i] += v.dt;
    ++calls[i];
    const Eigen::Vector3d exact = spin_exact(start(2, v.sample), v.t + v.dt, start(0, v.sample), start(1, v.sample));
    worst = std::max(worst, (v.x() - exact).norm());
    // FSAL: the last stage is the field at the new state and time.
    batch<double, 3> xb = v.x(), vb(3, 1);
    spinning_field{}(v.t + v.dt, xb, vb);
    worst_stage = std::max(worst_stage, (v.k(6) - vb.col(0)).norm());
  };
  const auto r = kinflow::integrate_adaptive(spinning_field{}, kinflow::dopri5, 0.0, 1.5, Y, {}, obs);
  for (std::size_t i = 0; i < 2; ++i) {
    CHECK(span[i] == Approx(1.5).epsilon(1e-12));
    CHECK(calls[i] == r.accepted(static_cast<Eigen::Index>(i)));
  }
  CHECK(worst < 1e-3);
  CHECK(worst_stage < 1e-12);
}

TEST_CASE("backward integration returns to the start within tolerance", "[adaptive][backward]") {
  batch<double, 1> X(1, 3);
  X << 0.5, 1.0, 2.0;
  const batch<double, 1> start = X;
  kinflow::adaptive_options opt;
  opt.rtol = opt.atol = 1e-8;
  auto r = kinflow::integrate_adaptive(decay_field{}, kinflow::dopri5, 0.0, 2.0, X, opt);
  REQUIRE(r.all_success());
  r = kinflow::integrate_adaptive(decay_field{}, kinflow::dopri5, 2.0, 0.0, X, opt);
  REQUIRE(r.all_success());
  CHECK((X - start).cwiseAbs().maxCoeff() < 1e-6);
  CHECK((r.kpe.total.array() > 0).all());
}

TEST_CASE("adaptive KPE matches the Gaussian-target oracle", "[adaptive][kpe]") {
  kinflow_test::gaussian_target<double, 2> g{{1.5, -0.5}, 0.5};
  Eigen::Matrix<long double, Eigen::Dynamic, 1> x0(2);
  x0 << 0.8L, -1.1L;
  const double exact = static_cast<double>(g.exact_energy(x0));
  const double exact_early = static_cast<double>(g.exact_energy(x0, 0, 0.6L));
  for (bool in_norm : {false, true}) {
    batch<double, 2> X(2, 1);
    X.col(0) = x0.cast<double>();
    kinflow::adaptive_options opt;
    opt.rtol = opt.atol = 1e-9;
    opt.kpe.in_error_norm = in_norm;
    const auto r = kinflow::integrate_adaptive(g, kinflow::dopri5, 0.0, 1.0, X, opt);
    REQUIRE(r.all_success());
    CHECK(r.kpe.total(0) == Approx(exact).epsilon(1e-7));
    CHECK((X.col(0).cast<long double>() - g.exact_state(1, x0)).norm() < 1e-7);
    // The split is by step start, so early overshoots ½∫_0^0.6 by at most the step across τ.
    CHECK(r.kpe.early(0) >= exact_early * (1 - 1e-7));
    CHECK(r.kpe.early(0) + r.kpe.late(0) == Approx(r.kpe.total(0)).epsilon(1e-14));
  }
}

TEST_CASE("per-sample statuses: one bad sample never aborts the batch", "[adaptive][status]") {
  SECTION("non-finite initial state") {
    batch<double, 3> Y(3, 2);
    Y << 1, std::nan(""), 0, 1, 2, 2;
    const auto r = kinflow::integrate_adaptive(spinning_field{}, kinflow::dopri5, 0.0, 1.0, Y);
    CHECK(r.status[0] == kinflow::solve_status::success);
    CHECK(r.status[1] == kinflow::solve_status::non_finite);
    CHECK((Y.col(0) - spin_exact(2, 1, 1, 0)).norm() < 1e-4);
  }
  SECTION("field turning NaN mid-solve for one sample") {
    // Fields without velocity_at_times see one column per call in adaptive solves, so
    // the poisoned sample is recognised by its state: x(t) = 2e^{-t} > 0.9 for t < 0.79.
    auto poisoned = [](double t, const batch<double, 1>& x, batch<double, 1>& v) {
      v = -x;
      for (Eigen::Index i = 0; i < x.cols(); ++i)
        if (t > 0.5 && x(0, i) > 0.9) v(0, i) = std::nan("");
    };
    batch<double, 1> X(1, 2);
    X << 1, 2;
    const auto r = kinflow::integrate_adaptive(poisoned, kinflow::dopri5, 0.0, 1.0, X);
    CHECK(r.status[0] == kinflow::solve_status::success);
    CHECK(r.status[1] == kinflow::solve_status::non_finite);
    CHECK(X(0, 0) == Approx(std::exp(-1.0)).epsilon(1e-4));
  }
  SECTION("max_steps_reached") {
    batch<double, 3> Y(3, 2);
    Y << 1, 1, 0, 0, 1, 200;
    kinflow::adaptive_options opt;
    opt.max_steps = 30;
    const auto r = kinflow::integrate_adaptive(spinning_field{}, kinflow::dopri5, 0.0, 1.0, Y, opt);
    CHECK(r.status[0] == kinflow::solve_status::success);
    CHECK(r.status[1] == kinflow::solve_status::max_steps_reached);
    CHECK(r.accepted(1) + r.rejected(1) == 30);
  }
  SECTION("dt_underflow") {
    batch<double, 3> Y(3, 2);
    Y << 1, 1, 0, 0, 0.5, 100;
    kinflow::adaptive_options opt;
    opt.dt_min = 0.02;
    opt.rtol = opt.atol = 1e-8;
    const auto r = kinflow::integrate_adaptive(spinning_field{}, kinflow::dopri5, 0.0, 1.0, Y, opt);
    CHECK(r.status[0] == kinflow::solve_status::success);
    CHECK(r.status[1] == kinflow::solve_status::dt_underflow);
  }
  SECTION("finite-time blow-up stops that sample only") {
    auto blowup = [](double, const batch<double, 1>& x, batch<double, 1>& v) {
      v = x.array().square().matrix();  // x(t) = x0 / (1 - x0 t): infinite at t = 1/x0
    };
    batch<double, 1> X(1, 2);
    X << 0.25, 1.0;
    const auto r = kinflow::integrate_adaptive(blowup, kinflow::dopri5, 0.0, 2.0, X);
    CHECK(r.status[0] == kinflow::solve_status::success);
    CHECK(X(0, 0) == Approx(0.25 / (1 - 0.5)).epsilon(1e-4));
    CHECK(r.status[1] != kinflow::solve_status::success);
  }
}

TEST_CASE("adaptive bad input raises kinflow errors naming the parameter", "[adaptive][errors]") {
  using kinflow_test::contains;
  batch<double, 1> X(1, 1);
  X << 1;
  auto run = [&](kinflow::adaptive_options o, double t0 = 0, double t1 = 1) {
    return kinflow::integrate_adaptive(decay_field{}, kinflow::dopri5, t0, t1, X, o);
  };
  kinflow::adaptive_options o;
  o.rtol = 0;
  CHECK_THROWS_WITH(run(o), contains("rtol") && contains("> 0"));
  o = {};
  o.rtol = -1e-3;
  CHECK_THROWS_AS(run(o), kinflow::invalid_argument);
  o = {};
  o.atol = -1;
  CHECK_THROWS_WITH(run(o), contains("atol"));
  o = {};
  o.max_steps = 0;
  CHECK_THROWS_WITH(run(o), contains("max_steps"));
  o = {};
  o.dt_max = 0;
  CHECK_THROWS_WITH(run(o), contains("dt_max"));
  o = {};
  o.kpe.profile = kinflow::kpe_profile::per_sample;
  CHECK_THROWS_WITH(run(o), contains("kpe.profile"));
  CHECK_THROWS_WITH(run({}, 0.5, 0.5), contains("t1"));
  CHECK_THROWS_WITH(run({}, std::nan(""), 1), contains("t0"));
  // dimension mismatch from the field
  batch<double> Y = batch<double>::Ones(2, 3);
  auto wrong = [](double, const kinflow::point<double>& x) { return Eigen::VectorXd::Ones(x.size() + 2).eval(); };
  CHECK_THROWS_AS(kinflow::integrate_adaptive(wrong, kinflow::dopri5, 0.0, 1.0, Y), kinflow::dimension_mismatch);
}

TEST_CASE("breakpoints: steps end exactly at a kink of the field", "[adaptive][breakpoints]") {
  // v = -a(t) x with a(t) = 1 + 20 max(0, t - 0.6): a' jumps at 0.6 (like a KTS gain at τ).
  // Exact: x(1) = x0 exp(-(1 + 20 · 0.4² / 2)).
  auto kinked = [](double t, const batch<double, 1>& x, batch<double, 1>& v) {
    v = -(1 + 20 * std::max(0.0, t - 0.6)) * x;
  };
  const double exact = std::exp(-(1 + 10 * 0.16));
  auto run = [&](std::vector<double> bps, std::vector<double>* ends) {
    batch<double, 1> X(1, 1);
    X << 1;
    kinflow::adaptive_options opt;
    opt.rtol = opt.atol = 1e-9;
    opt.breakpoints = std::move(bps);
    auto obs = [&](const auto& v) { ends->push_back(v.t + v.dt); };
    const auto r = kinflow::integrate_adaptive(kinked, kinflow::dopri5, 0.0, 1.0, X, opt, obs);
    REQUIRE(r.all_success());
    return std::abs(X(0, 0) - exact);
  };
  std::vector<double> with, without;
  const double err_with = run({0.6, 2.0, -1.0}, &with);  // out-of-range times are ignored
  run({}, &without);
  CHECK(std::find(with.begin(), with.end(), 0.6) != with.end());
  CHECK(std::find(without.begin(), without.end(), 0.6) == without.end());
  CHECK(err_with < 10 * 1e-9 * exact);
  CHECK(with.back() == 1.0);
  // Backward through the same breakpoint.
  std::vector<double> back;
  batch<double, 1> Y(1, 1);
  Y << exact;
  kinflow::adaptive_options opt;
  opt.rtol = opt.atol = 1e-9;
  opt.breakpoints = {0.6};
  const auto r = kinflow::integrate_adaptive(kinked, kinflow::dopri5, 1.0, 0.0, Y, opt,
                                             [&](const auto& v) { back.push_back(v.t + v.dt); });
  CHECK(r.all_success());
  CHECK(std::find(back.begin(), back.end(), 0.6) != back.end());
  CHECK(Y(0, 0) == Approx(1.0).epsilon(1e-7));
  opt.breakpoints = {std::nan("")};
  CHECK_THROWS_WITH(kinflow::integrate_adaptive(kinked, kinflow::dopri5, 0.0, 1.0, Y, opt),
                    kinflow_test::contains("breakpoints[0]"));
}
