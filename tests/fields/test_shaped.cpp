// The shaped field η(t)·v(x, t): with every integrator it converges to the shaped ODE's
// analytic solution at the integrator's order; KPE measures the energy of η·v; the extras
// (velocity_at_times, dim) are forwarded; per-sample fields are accepted; the identity
// gain changes nothing, bit for bit.

#include <algorithm>
#include <cmath>
#include <optional>
#include <limits>
#include <cstddef>
#include <type_traits>
#include <vector>

#include "kinflow/fields/gaussian_mixture.hpp"
#include "kinflow/fields/shaped.hpp"
#include "kinflow/integrators/adaptive.hpp"
#include "kinflow/integrators/explicit_rk.hpp"
#include "kinflow_catch.hpp"
#include "support/oracles.hpp"

using kinflow::batch;
using kinflow::kts_form;
using kinflow::kts_gain;
using kinflow::kts_options;
using kinflow::time_grid;

namespace {

// v(t, x) = -(1 + t) x, batched. The shaped ODE x' = -η(t)(1 + t) x has the solution
// x(1) = x0 exp(-∫₀¹ η(t)(1 + t) dt).
struct decay {
  void operator()(double t, const batch<double, 1>& X, batch<double, 1>& V) const { V = -(1 + t) * X; }
};

// The same field with one time per column, counting the calls of each form.
struct decay_per_column {
  int batched_calls = 0, per_column_calls = 0;
  void operator()(double t, const batch<double, 1>& X, batch<double, 1>& V) {
    ++batched_calls;
    V = -(1 + t) * X;
  }
  void velocity_at_times(const kinflow::sample_times<double>& T, const batch<double, 1>& X, batch<double, 1>& V) {
    ++per_column_calls;
    V.resize(1, X.cols());
    for (Eigen::Index i = 0; i < X.cols(); ++i) V(0, i) = -(1 + T(i)) * X(0, i);
  }
};

// The same field, per sample.
auto decay_sample = [](double t, const kinflow::point<double, 1>& x) -> kinflow::point<double, 1> {
  return -(1 + t) * x;
};

constexpr double x0s[3] = {0.5, 1.0, 2.0};

// ∫₀¹ η(t)(1 + t) dt by Gauss–Legendre, split at τ.
long double shaped_rate(const kts_gain& g) {
  auto f = [&](long double t) { return g(t) * (1 + t); };
  return kinflow_test::gauss_legendre(f, 0, g.tau(), 128) + kinflow_test::gauss_legendre(f, g.tau(), 1, 128);
}

batch<double, 1> starts() {
  batch<double, 1> X(1, 3);
  for (int i = 0; i < 3; ++i) X(0, i) = x0s[i];
  return X;
}

double max_error(const batch<double, 1>& X, long double rate) {
  double e = 0;
  for (int i = 0; i < 3; ++i) {
    const long double exact = x0s[i] * std::exp(-rate);
    e = std::max(e, static_cast<double>(std::abs(static_cast<long double>(X(0, i)) - exact)));
  }
  return e;
}

template <std::size_t S>
double observed_order(const kts_gain& gain, const kinflow::butcher_tableau<S>& method, const std::vector<int>& steps) {
  const long double rate = shaped_rate(gain);
  std::vector<double> h, err;
  for (int n : steps) {
    batch<double, 1> X = starts();
    const auto r = kinflow::integrate(kinflow::shaped(decay{}, gain), method, time_grid<double>::uniform(n), X);
    REQUIRE(r.all_success());
    h.push_back(1.0 / n);
    err.push_back(max_error(X, rate));
    INFO(method.name << " N = " << n << " error " << err.back());
    CHECK(err.back() > 1e-14);  // above rounding, so that the slope means something
  }
  return kinflow_test::convergence_slope(h, err);
}

// Two gains, continuous at τ, with τ on every grid's nodes (τN integer; the kink of η at τ
// then falls between steps).
const kts_gain launch_and_landing(kts_options{.alpha0 = 0.5, .beta0 = 0.02, .tau = 0.6, .k = 3});
const kts_gain exp_launch_linear_landing(kts_options{
    .alpha0 = 0.6, .beta0 = 0.05, .tau = 0.5, .k = 2, .early_form = kts_form::exponential, .late_form = kts_form::linear});

}  // namespace

TEST_CASE("shaped: fixed-step methods converge to the shaped solution at their order", "[shaped][order]") {
  for (const kts_gain* g : {&launch_and_landing, &exp_launch_linear_landing}) {
    INFO("tau = " << g->tau());
    // The shaped solution is far from the unshaped one: the test would notice a missing η.
    CHECK(std::abs(shaped_rate(*g) - 1.5L) > 0.05L);
    CHECK(observed_order(*g, kinflow::euler, {40, 80, 160, 320, 640}) == Approx(1.0).margin(0.2));
    CHECK(observed_order(*g, kinflow::heun, {20, 40, 80, 160}) == Approx(2.0).margin(0.2));
    CHECK(observed_order(*g, kinflow::midpoint, {20, 40, 80, 160}) == Approx(2.0).margin(0.2));
    CHECK(observed_order(*g, kinflow::rk4, {10, 20, 40, 80}) == Approx(4.0).margin(0.2));
    CHECK(observed_order(*g, kinflow::dopri5, {20, 40, 80}) == Approx(5.0).margin(0.2));
  }
}

TEST_CASE("shaped: Dormand-Prince with per-sample steps reaches the shaped solution", "[shaped][adaptive]") {
  const kts_gain& g = launch_and_landing;
  const long double rate = shaped_rate(g);
  const double tau = g.tau();
  // Starts of very different size, so that each sample takes steps of its own.
  const double x0[3] = {0.01, 1.0, 100.0};
  auto start = [&] {
    batch<double, 1> X(1, 3);
    for (int i = 0; i < 3; ++i) X(0, i) = x0[i];
    return X;
  };
  // Global error in units of the local tolerance, atol + rtol |x| with atol = rtol = tol.
  auto scaled_error = [&](const batch<double, 1>& X, double tol) {
    double e = 0;
    for (int i = 0; i < 3; ++i) {
      const long double exact = x0[i] * std::exp(-rate);
      e = std::max(e, static_cast<double>(std::abs(X(0, i) - exact) / (tol * (1 + std::abs(exact)))));
    }
    return e;
  };
  kinflow::adaptive_options o;

  SECTION("integrating [0, tau] and [tau, 1], where eta is smooth") {
    for (double tol : {1e-6, 1e-8, 1e-10}) {
      INFO("tol = " << tol);
      o.rtol = o.atol = tol;
      // Inner field with one time per column: forwarded, one batched call per stage.
      decay_per_column inner;
      batch<double, 1> X = start();
      auto s = kinflow::shaped(inner, g);
      const auto r1 = kinflow::integrate_adaptive(s, kinflow::dopri5, 0.0, tau, X, o);
      const auto r2 = kinflow::integrate_adaptive(s, kinflow::dopri5, tau, 1.0, X, o);
      REQUIRE(r1.all_success());
      REQUIRE(r2.all_success());
      CHECK(inner.per_column_calls > 0);
      CHECK(inner.batched_calls == 2);  // only each solve's first stage, where all samples share t0
      CHECK(r1.accepted(0) != r1.accepted(2));
      CHECK(scaled_error(X, tol) < 10);

      // Inner field without it: per-column calls of the batched form, same steps.
      batch<double, 1> Y = start();
      kinflow::integrate_adaptive(kinflow::shaped(decay{}, g), kinflow::dopri5, 0.0, tau, Y, o);
      kinflow::integrate_adaptive(kinflow::shaped(decay{}, g), kinflow::dopri5, tau, 1.0, Y, o);
      CHECK(scaled_error(Y, tol) < 10);

      // Per-sample inner field.
      batch<double, 1> Z = start();
      kinflow::integrate_adaptive(kinflow::shaped(decay_sample, g), kinflow::dopri5, 0.0, tau, Z, o);
      kinflow::integrate_adaptive(kinflow::shaped(decay_sample, g), kinflow::dopri5, tau, 1.0, Z, o);
      CHECK(scaled_error(Z, tol) < 10);
    }
  }
  SECTION("in one piece: the shaped field's tau is a breakpoint by itself") {
    // The solve ends a step exactly at the kink of η (the shaped field's switch time), so
    // no step straddles it and the tolerance is met as in two pieces.
    std::vector<double> errors;
    for (double tol : {1e-6, 1e-8, 1e-10}) {
      INFO("tol = " << tol);
      o.rtol = o.atol = tol;
      batch<double, 1> X = start();
      const auto r = kinflow::integrate_adaptive(kinflow::shaped(decay{}, g), kinflow::dopri5, 0.0, 1.0, X, o);
      REQUIRE(r.all_success());
      CHECK(scaled_error(X, tol) < 10);
      errors.push_back(scaled_error(X, 1.0));
    }
    CHECK(errors[1] < 1e-1 * errors[0]);
    CHECK(errors[2] < 1e-3 * errors[0]);
  }
}

TEST_CASE("shaped: per-sample and batched inner fields give the same result", "[shaped]") {
  for (const kts_gain* g : {&launch_and_landing, &exp_launch_linear_landing}) {
    batch<double, 1> X = starts(), Y = starts();
    const auto grid = time_grid<double>::cosine(17);
    const auto a = kinflow::integrate(kinflow::shaped(decay{}, *g), kinflow::rk4, grid, X);
    const auto b = kinflow::integrate(kinflow::shaped(decay_sample, *g), kinflow::rk4, grid, Y);
    // Same arithmetic per column: identical results. The energy is summed by the fused
    // per-sample kernel and by the batched quadrature in two expressions, which a compiler
    // with FMA (-march=native) may contract differently: then they agree to a rounding of
    // each of the 4 stage terms per step.
    CHECK(X == Y);
#if defined(__FMA__)
    CHECK(((a.kpe.total - b.kpe.total).array().abs() <=
           (4.0 * 4 * grid.steps() * std::numeric_limits<double>::epsilon()) * a.kpe.total.array().abs())
              .all());
#else
    CHECK(a.kpe.total == b.kpe.total);
#endif
    CHECK(a.nfe == b.nfe);
  }
}

TEST_CASE("shaped: kinetic path energy is the energy of eta * v", "[shaped][kpe]") {
  // v = c, independent of x and t: the shaped velocity is η(t) c, so
  // x(1) = x0 + c ∫η,  E = ½‖c‖² ∫η²,  split at τ into ½‖c‖² ∫₀^τ η² and ½‖c‖² ∫_τ^1 η².
  const Eigen::Vector2d c(1.0, -2.0);
  auto constant = [&](double, const batch<double, 2>& X, batch<double, 2>& V) {
    V.resize(2, X.cols());
    V.colwise() = c;
  };
  for (const kts_gain* g : {&launch_and_landing, &exp_launch_linear_landing}) {
    const long double tau = g->tau();
    auto eta2 = [&](long double t) { return g->operator()(t) * g->operator()(t); };
    auto eta = [&](long double t) { return g->operator()(t); };
    const long double half_c2 = 0.5L * static_cast<long double>(c.squaredNorm());
    const long double early = half_c2 * kinflow_test::gauss_legendre(eta2, 0, tau, 128);
    const long double late = half_c2 * kinflow_test::gauss_legendre(eta2, tau, 1, 128);
    const long double drift = kinflow_test::gauss_legendre(eta, 0, tau, 128) + kinflow_test::gauss_legendre(eta, tau, 1, 128);

    {  // RK4 with the stage-consistent quadrature
      batch<double, 2> X = batch<double, 2>::Zero(2, 2);
      kinflow::fixed_step_options fo;
      fo.kpe.tau = g->tau();
      const auto r = kinflow::integrate(kinflow::shaped(constant, *g), kinflow::rk4, time_grid<double>::uniform(100), X, fo);
      // Simpson's rule on each smooth piece: error ~ h⁴/180 max|(η²)⁗| ≈ 1e-8 relative.
      CHECK(r.kpe.early(0) == Approx(static_cast<double>(early)).epsilon(1e-7));
      CHECK(r.kpe.late(0) == Approx(static_cast<double>(late)).epsilon(1e-7));
      CHECK(r.kpe.total(1) == Approx(static_cast<double>(early + late)).epsilon(1e-7));
      CHECK(X(0, 0) == Approx(static_cast<double>(drift) * c(0)).epsilon(1e-7));
      CHECK(X(1, 1) == Approx(static_cast<double>(drift) * c(1)).epsilon(1e-7));
    }
    {  // Euler with the left-Riemann quadrature
      batch<double, 2> X = batch<double, 2>::Zero(2, 1);
      kinflow::fixed_step_options fo;
      fo.kpe.quadrature = kinflow::kpe_quadrature::left_riemann;
      const auto grid = time_grid<double>::uniform(50);
      const auto r = kinflow::integrate(kinflow::shaped(constant, *g), kinflow::euler, grid, X, fo);
      long double sum = 0;
      for (std::size_t n = 0; n < 50; ++n) sum += 0.5L * (grid[n + 1] - grid[n]) * eta2(grid[n]);
      CHECK(r.kpe.total(0) == Approx(static_cast<double>(sum * 2 * half_c2)).epsilon(1e-14));
    }
  }
}

TEST_CASE("shaped: the identity gain is bit-identical to no shaping", "[shaped]") {
  // A nonlinear, time-dependent field.
  auto field = [](double t, const batch<double, 2>& X, batch<double, 2>& V) {
    V = -X.array().cube().matrix();
    V.row(0).array() += std::sin(3 * t);
  };
  batch<double, 2> X0 = batch<double, 2>::Random(2, 6);
  const std::vector<kts_gain> identities{
      kts_gain{}, kts_gain(kts_options{.tau = 0.2, .k = 9, .early_form = kts_form::exponential, .late_form = kts_form::constant})};
  for (const auto& g : identities) {
    REQUIRE(g.is_identity());
    batch<double, 2> X = X0, Y = X0;
    const auto grid = time_grid<double>::edm(12);
    const auto a = kinflow::integrate(field, kinflow::rk4, grid, X);
    const auto b = kinflow::integrate(kinflow::shaped(field, g), kinflow::rk4, grid, Y);
    CHECK(X == Y);
    CHECK(a.kpe.total == b.kpe.total);
    CHECK(a.kpe.early == b.kpe.early);

    X = X0;
    Y = X0;
    const auto c = kinflow::integrate_adaptive(field, kinflow::dopri5, 0.0, 1.0, X);
    const auto d = kinflow::integrate_adaptive(kinflow::shaped(field, g), kinflow::dopri5, 0.0, 1.0, Y);
    CHECK(X == Y);
    CHECK(c.kpe.total == d.kpe.total);
    CHECK(c.nfe == d.nfe);
  }
}

TEST_CASE("shaped: velocity_at_times scales each column by its own gain", "[shaped]") {
  decay_per_column inner;
  auto s = kinflow::shaped(inner, launch_and_landing);
  kinflow::sample_times<double> T(4);
  T << 0.0, 0.3, 0.8, 1.0;
  batch<double, 1> X(1, 4), V;
  X << 1.0, -2.0, 3.0, 0.5;
  s.velocity_at_times(T, X, V);
  for (Eigen::Index i = 0; i < 4; ++i) {
    const double eta = launch_and_landing(T(i));
    CHECK(V(0, i) == Approx(-(1 + T(i)) * X(0, i) * eta).epsilon(1e-15));
  }
  // and through the library's evaluator
  batch<double, 1> W(1, 4);
  kinflow::field_evaluator<decltype(s), double, 1> eval(s, 1);
  eval(T, X, W);
  CHECK(W == V);
}

namespace {
struct sized_field {
  Eigen::Index d = 3;
  [[nodiscard]] Eigen::Index dim() const { return d; }
  void operator()(double, const batch<double>& X, batch<double>& V) const { V = -X; }
};
}  // namespace

TEST_CASE("shaped: forms and extras follow the inner field", "[shaped]") {
  using by_ref = decltype(kinflow::shaped(std::declval<decay&>(), kts_gain{}));
  using owned = decltype(kinflow::shaped(decay{}, kts_gain{}));
  STATIC_REQUIRE(std::is_same_v<by_ref, kinflow::shaped_field<decay&>>);
  STATIC_REQUIRE(std::is_same_v<owned, kinflow::shaped_field<decay>>);
  STATIC_REQUIRE(kinflow::batched_velocity_field<by_ref, double, 1>);
  STATIC_REQUIRE(kinflow::batched_velocity_field<const owned, double, 1>);
  STATIC_REQUIRE(!kinflow::per_column_time_field<owned, double, 1>);
  STATIC_REQUIRE(kinflow::per_column_time_field<kinflow::shaped_field<decay_per_column&>, double, 1>);
  STATIC_REQUIRE(!kinflow::field_with_dim<owned>);
  STATIC_REQUIRE(kinflow::field_with_dim<kinflow::shaped_field<sized_field>>);
  using sample = kinflow::shaped_field<decltype(decay_sample)&>;
  STATIC_REQUIRE(kinflow::sample_velocity_field<sample, double, 1>);
  STATIC_REQUIRE(!kinflow::batched_velocity_field<sample, double, 1>);

  SECTION("dim() is forwarded and checked against the state") {
    sized_field f;
    auto s = kinflow::shaped(f, launch_and_landing);
    CHECK(s.dim() == 3);
    batch<double> ok = batch<double>::Ones(3, 2), bad = batch<double>::Ones(2, 2);
    CHECK_NOTHROW(kinflow::integrate(s, kinflow::euler, time_grid<double>::uniform(4), ok));
    CHECK_THROWS_AS(kinflow::integrate(s, kinflow::euler, time_grid<double>::uniform(4), bad), kinflow::dimension_mismatch);
  }
  SECTION("lvalues are held by reference, rvalues owned") {
    sized_field f;
    auto s = kinflow::shaped(f, kts_gain{});
    f.d = 5;
    CHECK(s.dim() == 5);
    CHECK(&s.inner() == &f);
    auto o = kinflow::shaped(sized_field{}, kts_gain::balanced());
    CHECK(o.dim() == 3);
    CHECK(o.gain().alpha0() == 0.01);
  }
  SECTION("a const shaped field integrates") {
    const auto s = kinflow::shaped(decay{}, launch_and_landing);
    batch<double, 1> X = starts(), Y = starts();
    kinflow::integrate(s, kinflow::heun, time_grid<double>::uniform(10), X);
    kinflow::integrate(kinflow::shaped(decay{}, launch_and_landing), kinflow::heun, time_grid<double>::uniform(10), Y);
    CHECK(X == Y);
  }
  SECTION("options in place of a gain, validated") {
    auto s = kinflow::shaped(decay{}, {.alpha0 = 0.2, .beta0 = 0.01});
    CHECK(s.gain().alpha0() == 0.2);
    CHECK(s.gain().late_form() == kts_form::exponential);
    CHECK_THROWS_WITH(kinflow::shaped(decay{}, {.beta0 = 0.06}), kinflow_test::contains("beta0"));
    CHECK_NOTHROW(kinflow::shaped(decay{}, {.beta0 = 0.06, .allow_negative = true}));
  }
  SECTION("float fields") {
    auto f = [](float t, const batch<float, 2>& X, batch<float, 2>& V) { V = -t * X; };
    batch<float, 2> X = batch<float, 2>::Ones(2, 3);
    const auto r = kinflow::integrate(kinflow::shaped(f, kts_gain::balanced()), kinflow::rk4,
                                      time_grid<float>::uniform(50), X);
    CHECK(r.all_success());
    // x' = -η t x: x(1) = exp(-∫ η t dt)
    const kts_gain g = kts_gain::balanced();
    auto rate = [&](long double t) { return g(t) * t; };
    const long double want = std::exp(-(kinflow_test::gauss_legendre(rate, 0, 0.6L) + kinflow_test::gauss_legendre(rate, 0.6L, 1)));
    CHECK(X(1, 2) == Approx(static_cast<double>(want)).epsilon(1e-5));
  }
}

namespace {
// A field with only the one-time exact divergence (no time per column).
struct with_divergence {
  void operator()(double t, const batch<double, 2>& X, batch<double, 2>& V) const { V = -(1 + t) * X; }
  void divergence(double t, const batch<double, 2>& X, kinflow::per_sample<double>& D) const {
    D = kinflow::per_sample<double>::Constant(X.cols(), -2 * (1 + t));
  }
};

kinflow::gaussian_mixture_field<double, 2> small_mixture() {
  Eigen::Vector3d pi(0.2, 0.3, 0.5), s(0.3, 0.5, 0.2);
  batch<double, 2> mu(2, 3);
  mu << -2.0, 2.0, 0.0, 0.0, 0.5, 2.5;
  return {pi, mu, s};
}
}  // namespace

TEST_CASE("shaped: divergence is eta(t) times the inner divergence", "[shaped][divergence]") {
  const auto inner = small_mixture();
  using shaped_ref = kinflow::shaped_field<const kinflow::gaussian_mixture_field<double, 2>&>;
  STATIC_REQUIRE(kinflow::divergence_field<shaped_ref, double, 2>);
  STATIC_REQUIRE(kinflow::per_column_time_divergence_field<shaped_ref, double, 2>);
  STATIC_REQUIRE(kinflow::divergence_field<const shaped_ref, double, 2>);
  STATIC_REQUIRE(!kinflow::divergence_field<kinflow::shaped_field<decay>, double, 1>);
  STATIC_REQUIRE(!kinflow::per_column_time_divergence_field<kinflow::shaped_field<decay_per_column&>, double, 1>);
  STATIC_REQUIRE(kinflow::divergence_field<kinflow::shaped_field<with_divergence>, double, 2>);
  STATIC_REQUIRE(!kinflow::per_column_time_divergence_field<kinflow::shaped_field<with_divergence>, double, 2>);

  batch<double, 2> X = batch<double, 2>::Random(2, 9) * 3;
  kinflow::sample_times<double> T(9);
  T << 0.0, 0.1, 0.3, 0.5, 0.6, 0.7, 0.9, 0.99, 1.0;
  for (const kts_gain* g : {&launch_and_landing, &exp_launch_linear_landing}) {
    const auto s = kinflow::shaped(inner, *g);
    for (const double t : {0.0, 0.25, 0.6, 0.8, 1.0}) {
      CAPTURE(t);
      kinflow::per_sample<double> D, Din;
      s.divergence(t, X, D);
      inner.divergence(t, X, Din);
      // The inner divergence times one factor: the same bits as multiplying by hand.
      CHECK(D == ((*g)(t) * Din).eval());
    }
    kinflow::per_sample<double> D, Din;
    s.divergence_at_times(T, X, D);
    inner.divergence_at_times(T, X, Din);
    REQUIRE(D.size() == 9);
    for (Eigen::Index i = 0; i < 9; ++i) {
      CAPTURE(i, T(i));
      CHECK(D(i) == (*g)(T(i)) * Din(i));
    }
    // η varies: the shaped divergence is not the inner one (the test would notice a missing η).
    CHECK((D - Din).cwiseAbs().maxCoeff() > 1e-3);
  }
  // An owned inner field with only divergence(t, X, D).
  auto owned = kinflow::shaped(with_divergence{}, launch_and_landing);
  kinflow::per_sample<double> D;
  owned.divergence(0.3, X, D);
  CHECK(D == kinflow::per_sample<double>::Constant(9, -2 * 1.3 * launch_and_landing(0.3)));
}

TEST_CASE("shaped: the identity gain passes the divergence through bit for bit", "[shaped][divergence]") {
  const auto inner = small_mixture();
  const auto s = kinflow::shaped(inner, kts_gain{});
  REQUIRE(s.gain().is_identity());
  batch<double, 2> X = batch<double, 2>::Random(2, 7) * 2;
  kinflow::sample_times<double> T = kinflow::sample_times<double>::LinSpaced(7, 0.0, 1.0);
  for (const double t : {0.0, 0.4, 1.0}) {
    kinflow::per_sample<double> D, Din;
    s.divergence(t, X, D);
    inner.divergence(t, X, Din);
    CHECK(D == Din);
  }
  kinflow::per_sample<double> D, Din;
  s.divergence_at_times(T, X, D);
  inner.divergence_at_times(T, X, Din);
  CHECK(D == Din);
}

TEST_CASE("shaped: the gain's tau is said once", "[shaped][kpe]") {
  // No breakpoints and no kpe.tau given: the shaped field names its switch time, the
  // adaptive solve ends a step exactly there and the energy is split there.
  const kts_gain& g = launch_and_landing;
  REQUIRE(g.tau() > 0);
  REQUIRE(g.tau() < 1);
  const auto field = kinflow::shaped(decay{}, g);
  REQUIRE(field.switch_time() == std::optional<double>(g.tau()));
  std::vector<double> ends;
  batch<double, 1> X = starts();
  const auto r = kinflow::integrate_adaptive(field, kinflow::dopri5, 0.0, 1.0, X, {},
                                             [&](const auto& v) { ends.push_back(v.t + v.dt); });
  REQUIRE(r.all_success());
  // Every sample has a step ending at τ exactly (one per sample), up to the rounding of t + dt.
  const auto at_tau = std::count_if(ends.begin(), ends.end(), [&](double e) { return std::abs(e - g.tau()) <= 1e-15; });
  CHECK(at_tau == X.cols());
  CHECK(r.kpe.tau == g.tau());
  // The split at τ: the fixed-step energy split at τ given explicitly is the same.
  batch<double, 1> Y = starts(), Z = starts();
  const auto grid = time_grid<double>::uniform(50);
  const auto implicit = kinflow::integrate(field, kinflow::rk4, grid, Y);
  kinflow::fixed_step_options fo;
  fo.kpe.tau = g.tau();
  const auto explicit_tau = kinflow::integrate(field, kinflow::rk4, grid, Z, fo);
  CHECK(implicit.kpe.tau == g.tau());
  CHECK(implicit.kpe.early == explicit_tau.kpe.early);
  CHECK(implicit.kpe.late == explicit_tau.kpe.late);
  // The caller's kpe.tau wins.
  fo.kpe.tau = 0.25;
  Z = starts();
  CHECK(kinflow::integrate(field, kinflow::rk4, grid, Z, fo).kpe.tau == 0.25);
  // The identity gain has no kink: no switch time, the default split 0.6.
  const auto plain = kinflow::shaped(decay{}, kts_gain{});
  CHECK_FALSE(plain.switch_time().has_value());
  Z = starts();
  CHECK(kinflow::integrate(plain, kinflow::rk4, grid, Z).kpe.tau == kinflow::default_kpe_tau);
}
