// Tests of kinflow::gaussian_mixture_field and kinflow::smoothed_empirical (docs/math.md §3):
// against a plain long-double reference, the continuity equation, transport of N(0, I) to
// the mixture, the s -> 0 limit, and errors for bad input.
#include "kinflow_catch.hpp"

#include <kinflow/core/concepts.hpp>
#include <kinflow/fields/empirical.hpp>
#include <kinflow/fields/gaussian_mixture.hpp>
#include <kinflow/integrators/explicit_rk.hpp>
#include <kinflow/schedules/time_grid.hpp>

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "closed_form_reference.hpp"

using kinflow_test::ld;
using kinflow_test::ld_matrix;
using kinflow_test::ld_vector;
using kinflow_test::test_rng;
using kinflow_test::max_abs_diff;
using kinflow_test::random_mixture;
using kinflow_test::vec;

static_assert(kinflow::batched_velocity_field<kinflow::gaussian_mixture_field<double, 2>, double, 2>);
static_assert(kinflow::per_column_time_field<kinflow::gaussian_mixture_field<float>, float, Eigen::Dynamic>);
static_assert(kinflow::field_with_dim<kinflow::gaussian_mixture_field<float>>);

#define REQUIRE_THROWS_TYPE_WITH(expr, type, matcher) \
  do {                                                \
    REQUIRE_THROWS_AS(expr, type);                    \
    REQUIRE_THROWS_WITH(expr, matcher);               \
  } while (false)

namespace {

// Field against reference; tolerances as in test_empirical.cpp: 32x the change of the
// reference under relative input perturbations of one roundoff, plus the rounding of each
// logit (and the documented ε^(2/3) of expanded distances) times what it moves.
template <class Scalar, int Dim>
void check_mixture(Eigen::Index d, bool equal_stds, bool equal_weights,
                   kinflow::distance_method method, std::uint64_t seed) {
  const Eigen::Index K = 37, B = 12;
  const ld eps = std::numeric_limits<Scalar>::epsilon();
  test_rng rng(seed);
  const random_mixture<Scalar, Dim> mix(d, K, equal_stds, equal_weights, rng);
  kinflow::gaussian_mixture_options<Scalar> opt;
  opt.distances = method;
  const kinflow::gaussian_mixture_field<Scalar, Dim> field(mix.pi, mix.mu, mix.s, opt);
  const ld_vector pil = field.weights().template cast<ld>();
  const ld_matrix mul = mix.mu.template cast<ld>();
  const ld_vector sl = mix.s.template cast<ld>();
  const bool expanded = method == kinflow::distance_method::expanded ||
                        (method == kinflow::distance_method::automatic && d > kinflow::detail::direct_distance_max_dim);

  for (const double td : {0.0, 0.3, 0.9, 0.999, 1.0 - 1e-9, 1.0}) {
    const auto t = static_cast<Scalar>(td);
    const ld tl = t;
    CAPTURE(d, td, equal_stds, equal_weights, static_cast<int>(method), sizeof(Scalar));
    kinflow::batch<Scalar, Dim> X(d, B);
    for (Eigen::Index j = 0; j < B; ++j) {
      const auto k = static_cast<Eigen::Index>(rng.next() % static_cast<std::uint64_t>(K));
      for (Eigen::Index i = 0; i < d; ++i) {
        const double sig = std::sqrt((1 - td) * (1 - td) + td * td * static_cast<double>(mix.s(k) * mix.s(k)));
        X(i, j) = static_cast<Scalar>(j < B / 2 ? td * static_cast<double>(mix.mu(i, k)) + sig * rng.normal()
                                                : 3.0 * rng.normal());
      }
    }
    X.col(B - 1).setConstant(Scalar(25));
    kinflow::batch<Scalar, Dim> V, Vt;
    field(t, X, V);
    field.velocity_at_times(kinflow::sample_times<Scalar>::Constant(B, t), X, Vt);
    const auto W = field.posterior_weights(t, X);
    const auto lp = field.log_density(t, X);
    REQUIRE(V.allFinite());
    REQUIRE(W.allFinite());
    REQUIRE(lp.allFinite());
    CHECK(max_abs_diff(V, Vt) == 0);
    for (Eigen::Index j = 0; j < B; ++j) {
      CAPTURE(j);
      const ld_vector x = X.col(j).template cast<ld>();
      const auto ref = kinflow_test::mixture_reference(pil, mul, sl, x, tl);
      ld sw = 0, sv = 0, slp = 0;
      for (int p = 0; p < 3; ++p) {
        const auto r = kinflow_test::mixture_reference(
            pil, kinflow_test::perturbed(mul, eps, rng), kinflow_test::perturbed(sl, eps, rng),
            kinflow_test::perturbed(x, eps, rng), tl * (1 + eps * static_cast<ld>(rng.uniform(-1, 1))));
        sw = std::max(sw, max_abs_diff(r.weights, ref.weights));
        sv = std::max(sv, max_abs_diff(r.velocity, ref.velocity));
        slp = std::max(slp, std::abs(r.log_density - ref.log_density));
      }
      const ld logit_err = 8 * std::sqrt(static_cast<ld>(d)) * eps * ref.logit_abs +
                           (expanded ? std::pow(eps, 2.0L / 3) : 0);
      const ld tol_w = 32 * sw + (64 * eps + 4 * logit_err) * ref.weights.maxCoeff();
      const ld tol_v = 32 * sv + 64 * eps * ref.v_abs + 4 * logit_err * ref.v_spread;
      const ld tol_lp = 32 * slp + 4 * logit_err + 64 * eps * (std::abs(ref.log_density) + d);
      CHECK(max_abs_diff(W.col(j), ref.weights) <= tol_w);
      CHECK(max_abs_diff(V.col(j), ref.velocity) <= tol_v);
      CHECK(std::abs(static_cast<ld>(lp(j)) - ref.log_density) <= tol_lp);
      CHECK((W.col(j).array() >= 0).all());
      CHECK(std::abs(static_cast<ld>(W.col(j).sum()) - 1) <= 16 * eps);
    }
  }
}

}  // namespace

TEMPLATE_TEST_CASE("gaussian mixture: velocity, posterior and log density match a long-double reference",
                   "[mixture][reference]", float, double) {
  using kinflow::distance_method;
  SECTION("different stds and weights, d = 1, 2, 3, 64") {
    check_mixture<TestType, Eigen::Dynamic>(1, false, false, distance_method::automatic, 101);
    check_mixture<TestType, 2>(2, false, false, distance_method::automatic, 102);
    check_mixture<TestType, Eigen::Dynamic>(3, false, false, distance_method::automatic, 103);
    check_mixture<TestType, Eigen::Dynamic>(64, false, false, distance_method::direct, 104);
    check_mixture<TestType, Eigen::Dynamic>(64, false, false, distance_method::expanded, 105);
  }
  SECTION("equal stds (shared-variance path), equal or different weights") {
    check_mixture<TestType, 2>(2, true, true, distance_method::automatic, 111);
    check_mixture<TestType, Eigen::Dynamic>(3, true, false, distance_method::automatic, 112);
    check_mixture<TestType, Eigen::Dynamic>(64, true, false, distance_method::expanded, 113);
  }
}

TEST_CASE("gaussian mixture: satisfies the continuity equation", "[mixture][continuity]") {
  // ∂_t p + div(p v) = 0  ⇔  ∂_t log p + v·∇log p + div v = 0, all by central differences.
  test_rng rng(3);
  const random_mixture<double, 2> mix(2, 4, false, false, rng);
  const kinflow::gaussian_mixture_field<double, 2> field(mix.pi, mix.mu, mix.s);
  const double h = 1e-5;
  for (const double t : {0.05, 0.3, 0.6, 0.9, 0.99}) {
    kinflow::batch<double, 2> X(2, 20);
    rng.fill_normal(X, 2.0);
    const auto lp_tp = field.log_density(t + h, X);
    const auto lp_tm = field.log_density(t - h, X);
    kinflow::batch<double, 2> V;
    field(t, X, V);
    for (Eigen::Index j = 0; j < X.cols(); ++j) {
      CAPTURE(t, j);
      const double dt_logp = (lp_tp(j) - lp_tm(j)) / (2 * h);
      double transport = 0, div = 0;
      for (Eigen::Index k = 0; k < 2; ++k) {
        kinflow::batch<double, 2> Xp = X.col(j), Xm = X.col(j), Vp, Vm;
        Xp(k, 0) += h;
        Xm(k, 0) -= h;
        field(t, Xp, Vp);
        field(t, Xm, Vm);
        div += (Vp(k, 0) - Vm(k, 0)) / (2 * h);
        transport += V(k, j) * (field.log_density(t, Xp)(0) - field.log_density(t, Xm)(0)) / (2 * h);
      }
      const double scale = std::abs(dt_logp) + std::abs(transport) + std::abs(div) + 1;
      CHECK(std::abs(dt_logp + transport + div) <= 1e-5 * scale);
    }
  }
}

TEST_CASE("gaussian mixture: transports N(0, I) to the mixture", "[mixture][transport]") {
  test_rng rng(23);
  const Eigen::Index B = 4000;
  vec<double> pi(3), s(3);
  pi << 0.5, 0.3, 0.2;
  s << 0.3, 0.5, 0.2;
  kinflow::batch<double, 2> mu(2, 3);
  mu << -2.0, 2.0, 0.0, 0.0, 0.5, 2.5;
  const kinflow::gaussian_mixture_field<double, 2> field(pi, mu, s);

  kinflow::batch<double, 2> X(2, B);
  rng.fill_normal(X);
  const auto result = kinflow::integrate(field, kinflow::rk4, kinflow::time_grid<double>::uniform(100), X);
  REQUIRE(result.count(kinflow::solve_status::success) == static_cast<std::size_t>(B));
  REQUIRE(X.allFinite());

  // Moments of the mixture: mean Σ π μ, covariance Σ π (s² I + μ μᵀ) - mean meanᵀ.
  const Eigen::Vector2d mean = mu * pi;
  Eigen::Matrix2d cov = -mean * mean.transpose();
  for (Eigen::Index k = 0; k < 3; ++k)
    cov += pi(k) * (s(k) * s(k) * Eigen::Matrix2d::Identity() + mu.col(k) * mu.col(k).transpose());
  const Eigen::Vector2d sample_mean = X.rowwise().mean();
  const kinflow::batch<double, 2> centred = X.colwise() - sample_mean;
  const Eigen::Matrix2d sample_cov = centred * centred.transpose() / static_cast<double>(B - 1);
  for (Eigen::Index i = 0; i < 2; ++i) {
    CAPTURE(i, sample_mean(i), mean(i), sample_cov(i, i), cov(i, i));
    CHECK(std::abs(sample_mean(i) - mean(i)) <= 5 * std::sqrt(cov(i, i) / B));
    CHECK(std::abs(sample_cov(i, i) - cov(i, i)) <= 0.2 * cov(i, i));
  }
  CHECK(std::abs(sample_cov(0, 1) - cov(0, 1)) <= 0.2 * std::sqrt(cov(0, 0) * cov(1, 1)));

  // Component occupation: for x ~ mixture, E[w_k(x, 1)] = π_k.
  const auto W = field.posterior_weights(1.0, X);
  const Eigen::VectorXd occupation = W.rowwise().mean();
  for (Eigen::Index k = 0; k < 3; ++k) {
    CAPTURE(k, occupation(k));
    CHECK(std::abs(occupation(k) - pi(k)) <= 5 * std::sqrt(pi(k) * (1 - pi(k)) / B));
  }
}

TEST_CASE("smoothed empirical field: the mixture of N(y_i, s² I), tending to the empirical field",
          "[mixture][smoothed]") {
  test_rng rng(29);
  kinflow::batch<double, 2> Y(2, 50), X(2, 30);
  rng.fill_normal(Y);
  rng.fill_normal(X);
  const double s = 0.2;
  const auto smoothed = kinflow::smoothed_empirical(Y, s);
  static_assert(std::is_same_v<std::remove_const_t<decltype(smoothed)>,
                               kinflow::gaussian_mixture_field<double, 2>>);
  CHECK(smoothed.size() == 50);
  CHECK((smoothed.weights().array() == smoothed.weights()(0)).all());
  CHECK(std::abs(smoothed.weights().sum() - 1) <= 1e-15);
  CHECK((smoothed.stds().array() == s).all());

  const ld_vector pil = ld_vector::Constant(50, 1.0L / 50);
  const ld_vector sl = ld_vector::Constant(50, s);
  kinflow::batch<double, 2> V;
  for (const double t : {0.2, 0.7, 1.0}) {
    smoothed(t, X, V);
    for (Eigen::Index j = 0; j < X.cols(); ++j) {
      const auto ref = kinflow_test::mixture_reference(pil, Y.cast<ld>(), sl, X.col(j).cast<ld>(), t);
      CHECK(max_abs_diff(V.col(j), ref.velocity) <= 1e-12L * (1 + ref.v_abs));
    }
  }

  // s -> 0: the smoothed field approaches the empirical one (the difference is O(s²) at t < 1).
  const kinflow::empirical_field<double, 2> empirical(Y);
  kinflow::batch<double, 2> Ve;
  for (const double t : {0.3, 0.8}) {
    empirical(t, X, Ve);
    double previous = std::numeric_limits<double>::infinity();
    for (const double si : {1e-1, 1e-2, 1e-3}) {
      kinflow::smoothed_empirical(Y, si)(t, X, V);
      const double gap = (V - Ve).cwiseAbs().maxCoeff();
      CAPTURE(t, si, gap);
      CHECK(gap < previous);
      previous = gap;
    }
    CHECK(previous <= 1e-4 * (1 + Ve.cwiseAbs().maxCoeff()));
  }

  // By reference: the same field without a copy.
  const auto by_ref = kinflow::smoothed_empirical(kinflow::keep_reference, Y, s);
  CHECK(by_ref.holds_reference());
  CHECK(by_ref.means().data() == Y.data());
  kinflow::batch<double, 2> V1, V2;
  by_ref(0.5, X, V1);
  smoothed(0.5, X, V2);
  CHECK(max_abs_diff(V1, V2) == 0);
}


TEST_CASE("gaussian mixture: bad input is rejected with a clear message", "[mixture][errors]") {
  using kinflow_test::contains;
  vec<double> pi(3), s(3);
  pi << 0.2, 0.3, 0.5;
  s << 0.1, 0.2, 0.3;
  kinflow::batch<double> mu(2, 3);
  mu.setRandom();
  using field_t = kinflow::gaussian_mixture_field<double>;

  SECTION("weights negative, zero, NaN or not summing to one") {
    vec<double> bad = pi;
    bad(1) = -0.25;
    REQUIRE_THROWS_TYPE_WITH(field_t(bad, mu, s), kinflow::invalid_argument,
                             contains("weights(1) = -0.25") && contains("> 0"));
    bad(1) = 0;
    REQUIRE_THROWS_TYPE_WITH(field_t(bad, mu, s), kinflow::invalid_argument, contains("weights(1)"));
    bad(1) = std::numeric_limits<double>::quiet_NaN();
    REQUIRE_THROWS_TYPE_WITH(field_t(bad, mu, s), kinflow::invalid_argument, contains("weights(1)"));
    bad = pi * 1.1;
    REQUIRE_THROWS_TYPE_WITH(field_t(bad, mu, s), kinflow::invalid_argument,
                             contains("sum of the weights") && contains("not renormalised"));
  }
  SECTION("weights within the tolerance are accepted and normalised") {
    const field_t field(pi * (1 + 1e-9), mu, s);
    CHECK(std::abs(field.weights().sum() - 1) <= 1e-15);
    CHECK(field.weights()(2) == Approx(0.5).epsilon(1e-15));
    kinflow::gaussian_mixture_options<double> loose;
    loose.weight_tolerance = 0.2;
    const field_t normalised(pi * 1.1, mu, s, loose);
    CHECK(normalised.weights()(0) == Approx(0.2).epsilon(1e-15));
  }
  SECTION("stds zero, negative or not finite") {
    for (const double bad_s : {0.0, -0.1, std::numeric_limits<double>::infinity()}) {
      vec<double> bad = s;
      bad(2) = bad_s;
      REQUIRE_THROWS_TYPE_WITH(field_t(pi, mu, bad), kinflow::invalid_argument,
                               contains("stds(2)") && contains("> 0"));
    }
    kinflow::batch<double, 2> Y(2, 4);
    Y.setRandom();
    REQUIRE_THROWS_TYPE_WITH(kinflow::smoothed_empirical(Y, 0.0), kinflow::invalid_argument,
                             contains("s (smoothing std)"));
    REQUIRE_THROWS_TYPE_WITH(kinflow::smoothed_empirical(Y, -1.0), kinflow::invalid_argument,
                             contains("s (smoothing std)"));
  }
  SECTION("non-finite means, empty mixture, mismatched sizes") {
    kinflow::batch<double> bad = mu;
    bad(0, 1) = std::numeric_limits<double>::infinity();
    REQUIRE_THROWS_TYPE_WITH(field_t(pi, bad, s), kinflow::invalid_argument, contains("means(0, 1)"));
    const kinflow::batch<double> empty(2, 0);
    REQUIRE_THROWS_TYPE_WITH(field_t(vec<double>(0), empty, vec<double>(0)), kinflow::invalid_argument,
                             contains("number of components K"));
    REQUIRE_THROWS_AS(field_t(pi.head(2), mu, s), kinflow::dimension_mismatch);
    REQUIRE_THROWS_AS(field_t(pi, mu, s.head(2)), kinflow::dimension_mismatch);
    REQUIRE_THROWS_AS((kinflow::gaussian_mixture_field<double, 3>(pi, mu, s)), kinflow::dimension_mismatch);
    const field_t field(pi, mu, s);
    kinflow::batch<double> X(3, 2), V;
    X.setZero();
    REQUIRE_THROWS_TYPE_WITH(field(0.5, X, V), kinflow::dimension_mismatch,
                             contains("rows of the sample batch X"));
    const kinflow::batch<double> empty_set(2, 0);
    REQUIRE_THROWS_TYPE_WITH(kinflow::smoothed_empirical(empty_set, 0.1), kinflow::invalid_argument,
                             contains("number of points N"));
  }
}

// ---------------------------------------------------------------------------------------
// Divergence.

namespace {

// div v in long double, written out plainly from docs/math.md §3.2: the weights from the logits,
// then div v = Σ_k w_k d g_k + Σ_k w_k (a_k - ā)·(v_k - v̄), a_k = -(x - t μ_k)/σ_k², with
// the means ā, v̄ formed first (two passes).
struct mixture_divergence {
  ld div = 0;
  ld abs = 0;        // Σ_k w_k (d |g_k| + ‖a_k - ā‖ ‖v_k - v̄‖): the scale of the rounding
  ld spread = 0;     // Σ_k w_k |c_k - div|, c_k = d g_k + (a_k - ā)·(v_k - v̄): what a weight moves
  ld logit_abs = 0;  // Σ_k w_k |L_k|
};

mixture_divergence mixture_divergence_reference(const ld_vector& pi, const ld_matrix& mu, const ld_vector& s,
                                                const ld_vector& x, ld t) {
  const Eigen::Index d = mu.rows(), K = mu.cols();
  ld_vector logit(K), var(K), g(K);
  for (Eigen::Index k = 0; k < K; ++k) {
    var(k) = (1 - t) * (1 - t) + t * t * s(k) * s(k);
    g(k) = (t * s(k) * s(k) - (1 - t)) / var(k);
    logit(k) = std::log(pi(k)) - (x - t * mu.col(k)).squaredNorm() / (2 * var(k)) -
               0.5L * static_cast<ld>(d) * std::log(var(k));
  }
  const ld mx = logit.maxCoeff();
  ld_vector w(K);
  for (Eigen::Index k = 0; k < K; ++k) w(k) = std::exp(logit(k) - mx);
  w /= w.sum();
  ld_matrix a(d, K), v(d, K);
  for (Eigen::Index k = 0; k < K; ++k) {
    a.col(k) = -(x - t * mu.col(k)) / var(k);
    v.col(k) = mu.col(k) + g(k) * (x - t * mu.col(k));
  }
  const ld_vector abar = a * w, vbar = v * w;
  mixture_divergence r;
  ld_vector c(K);
  for (Eigen::Index k = 0; k < K; ++k) {
    c(k) = static_cast<ld>(d) * g(k) + (a.col(k) - abar).dot(v.col(k) - vbar);
    r.div += w(k) * c(k);
    r.abs += w(k) * (static_cast<ld>(d) * std::abs(g(k)) + (a.col(k) - abar).norm() * (v.col(k) - vbar).norm());
    r.logit_abs += w(k) * std::abs(logit(k));
  }
  for (Eigen::Index k = 0; k < K; ++k) r.spread += w(k) * std::abs(c(k) - r.div);
  return r;
}

// Samples: half from the path marginal at t (near the mixture), half spread wider, one far.
template <class Scalar, int Dim>
kinflow::batch<Scalar, Dim> path_samples(const random_mixture<Scalar, Dim>& mix, double td, Eigen::Index B,
                                         test_rng& rng) {
  const Eigen::Index d = mix.mu.rows(), K = mix.mu.cols();
  kinflow::batch<Scalar, Dim> X(d, B);
  for (Eigen::Index j = 0; j < B; ++j) {
    const auto k = static_cast<Eigen::Index>(rng.next() % static_cast<std::uint64_t>(K));
    const double sk = static_cast<double>(mix.s(k));
    const double sig = std::sqrt((1 - td) * (1 - td) + td * td * sk * sk);
    for (Eigen::Index i = 0; i < d; ++i)
      X(i, j) = static_cast<Scalar>(j < B / 2 ? td * static_cast<double>(mix.mu(i, k)) + sig * rng.normal()
                                              : 3.0 * rng.normal());
  }
  X.col(B - 1).setConstant(Scalar(25));
  return X;
}

// Central differences of the field's own velocity, Richardson-extrapolated:
// C(h) = Σ_r (v_r(x + h e_r) - v_r(x - h e_r)) / (2h) has error (h²/6) Σ_r ∂³_r v_r + O(h⁴),
// and (4 C(h/2) - C(h)) / 3 cancels the h² term.
template <int Dim>
double fd_divergence(const kinflow::gaussian_mixture_field<double, Dim>& field, double t,
                     const kinflow::batch<double, Dim>& x, double h) {
  auto central = [&](double step) {
    double sum = 0;
    for (Eigen::Index r = 0; r < x.rows(); ++r) {
      kinflow::batch<double, Dim> xp = x, xm = x, vp, vm;
      xp(r, 0) += step;
      xm(r, 0) -= step;
      field(t, xp, vp);
      field(t, xm, vm);
      sum += (vp(r, 0) - vm(r, 0)) / (2 * step);
    }
    return sum;
  };
  return (4 * central(h / 2) - central(h)) / 3;
}

template <int Dim>
void check_divergence_fd(Eigen::Index d, bool equal_stds, std::uint64_t seed) {
  test_rng rng(seed);
  const random_mixture<double, Dim> mix(d, 5, equal_stds, false, rng);
  const kinflow::gaussian_mixture_field<double, Dim> field(mix.pi, mix.mu, mix.s);
  const double s_min = mix.s.minCoeff();
  for (const double t : {1e-3, 0.02, 0.5, 0.9, 0.999, 1.0}) {
    const auto X = path_samples(mix, t, 10, rng);
    kinflow::per_sample<double> D;
    field.divergence(t, X, D);
    REQUIRE(D.size() == X.cols());
    REQUIRE(D.allFinite());
    // Step: a small fraction of the narrowest component's std σ_min(t) ≥ s_min/sqrt(1 + s_min²),
    // the length on which v varies. The extrapolated difference then has truncation
    // ~(h/σ)⁴ |J| ≈ 1e-12 |J| and rounding ~sqrt(2d) ε |v| / h ≈ 1e-12 |v|∞ / σ (double).
    // 1e-9 of the scale 1 + |v|∞/σ + Σ_k w_k |terms| leaves a margin of ~1000 over that
    // estimate (observed errors stay below 5e-11 of the scale), while any wrong term of the
    // formula would be O(1) of the scale.
    const double sigma_min = s_min / std::sqrt(1 + s_min * s_min);
    const double h = 1e-3 * std::min(sigma_min, 1.0);
    kinflow::batch<double, Dim> V;
    field(t, X, V);
    for (Eigen::Index j = 0; j < X.cols(); ++j) {
      CAPTURE(d, equal_stds, t, j);
      const kinflow::batch<double, Dim> xj = X.col(j);
      const double fd = fd_divergence(field, t, xj, h);
      const auto ref = mixture_divergence_reference(field.weights().template cast<ld>(), mix.mu.template cast<ld>(),
                                                    mix.s.template cast<ld>(), xj.template cast<ld>(), t);
      const double scale = 1 + V.col(j).cwiseAbs().maxCoeff() / sigma_min + static_cast<double>(ref.abs);
      CAPTURE(D(j), fd, scale);
      CHECK(std::abs(D(j) - fd) <= 1e-9 * scale);
    }
  }
}

// Field against the long-double reference, float and double. Tolerance as for the velocity
// (check_mixture): 32x the change of the reference under relative input perturbations of
// one roundoff, the rounding of the terms, and the rounding of each logit times what a
// weight change moves.
template <class Scalar, int Dim>
void check_divergence_reference(Eigen::Index d, bool equal_stds, bool equal_weights, std::uint64_t seed) {
  const ld eps = std::numeric_limits<Scalar>::epsilon();
  test_rng rng(seed);
  const random_mixture<Scalar, Dim> mix(d, 23, equal_stds, equal_weights, rng);
  const kinflow::gaussian_mixture_field<Scalar, Dim> field(mix.pi, mix.mu, mix.s);
  const ld_vector pil = field.weights().template cast<ld>();
  const ld_matrix mul = mix.mu.template cast<ld>();
  const ld_vector sl = mix.s.template cast<ld>();
  for (const double td : {0.0, 1e-3, 0.3, 0.5, 0.9, 0.999, 1.0}) {
    const auto t = static_cast<Scalar>(td);
    const auto X = path_samples(mix, td, 12, rng);
    kinflow::per_sample<Scalar> D;
    field.divergence(t, X, D);
    REQUIRE(D.allFinite());
    for (Eigen::Index j = 0; j < X.cols(); ++j) {
      CAPTURE(d, td, equal_stds, equal_weights, sizeof(Scalar), j);
      const ld_vector x = X.col(j).template cast<ld>();
      const auto ref = mixture_divergence_reference(pil, mul, sl, x, t);
      ld sdiv = 0;
      for (int p = 0; p < 3; ++p) {
        const auto r = mixture_divergence_reference(
            pil, kinflow_test::perturbed(mul, eps, rng), kinflow_test::perturbed(sl, eps, rng),
            kinflow_test::perturbed(x, eps, rng), static_cast<ld>(t) * (1 + eps * static_cast<ld>(rng.uniform(-1, 1))));
        sdiv = std::max(sdiv, std::abs(r.div - ref.div));
      }
      const ld logit_err = 8 * std::sqrt(static_cast<ld>(d)) * eps * ref.logit_abs;
      const ld tol = 32 * sdiv + 64 * eps * (ref.abs + static_cast<ld>(d)) + 4 * logit_err * ref.spread;
      CAPTURE(D(j), ref.div, tol);
      CHECK(std::abs(static_cast<ld>(D(j)) - ref.div) <= tol);
    }
  }
}

}  // namespace

static_assert(kinflow::divergence_field<kinflow::gaussian_mixture_field<double, 2>, double, 2>);
static_assert(kinflow::divergence_field<const kinflow::gaussian_mixture_field<float>, float, Eigen::Dynamic>);
static_assert(kinflow::per_column_time_divergence_field<kinflow::gaussian_mixture_field<float>, float, Eigen::Dynamic>);

TEST_CASE("gaussian mixture: divergence matches central differences of the velocity", "[mixture][divergence]") {
  SECTION("different stds, d = 2 and d = 7") {
    check_divergence_fd<2>(2, false, 201);
    check_divergence_fd<Eigen::Dynamic>(7, false, 202);
  }
  SECTION("equal stds (shared-variance path), d = 2 and d = 7") {
    check_divergence_fd<2>(2, true, 203);
    check_divergence_fd<Eigen::Dynamic>(7, true, 204);
  }
}

TEMPLATE_TEST_CASE("gaussian mixture: divergence matches a long-double reference", "[mixture][divergence]",
                   float, double) {
  check_divergence_reference<TestType, 2>(2, false, false, 211);
  check_divergence_reference<TestType, Eigen::Dynamic>(7, false, true, 212);
  check_divergence_reference<TestType, 2>(2, true, false, 213);
  check_divergence_reference<TestType, Eigen::Dynamic>(7, true, true, 214);
}

TEMPLATE_TEST_CASE("gaussian mixture: one component has div v = d g(t)", "[mixture][divergence]", float, double) {
  // v = μ + g (x - t μ) with g = (t s² - (1 - t)) / ((1 - t)² + t² s²): div v = d g exactly,
  // whatever x. Tolerance: a few roundings of g (and of the weight-1 sums).
  using S = TestType;
  const ld eps = std::numeric_limits<S>::epsilon();
  test_rng rng(41);
  for (const Eigen::Index d : {Eigen::Index{2}, Eigen::Index{7}}) {
    for (const double s : {0.05, 0.5, 2.0}) {
      vec<S> pi = vec<S>::Ones(1), sd = vec<S>::Constant(1, static_cast<S>(s));
      kinflow::batch<S> mu(d, 1);
      rng.fill_normal(mu, 2.0);
      const kinflow::gaussian_mixture_field<S> field(pi, mu, sd);
      // Two components with the same mean and std, weights ½: the same field through the
      // per-component path (different stds are only detected, so perturb one weight).
      vec<S> pi2(2), sd2(2);
      pi2 << S(0.25), S(0.75);
      sd2 << static_cast<S>(s), static_cast<S>(s) * (1 + 4 * std::numeric_limits<S>::epsilon());
      kinflow::batch<S> mu2(d, 2);
      mu2 << mu, mu;
      const kinflow::gaussian_mixture_field<S> field2(pi2, mu2, sd2);
      kinflow::batch<S> X(d, 6);
      rng.fill_normal(X, 3.0);
      for (const double td : {0.0, 1e-3, 0.4, 0.95, 1.0}) {
        const auto t = static_cast<S>(td);
        const ld tl = t, sl = static_cast<S>(s);
        const ld g = (tl * sl * sl - (1 - tl)) / ((1 - tl) * (1 - tl) + tl * tl * sl * sl);
        const ld want = static_cast<ld>(d) * g;
        const auto D = field.divergence(t, X);
        const auto D2 = field2.divergence(t, X);
        for (Eigen::Index j = 0; j < X.cols(); ++j) {
          CAPTURE(d, s, td, j);
          CHECK(std::abs(static_cast<ld>(D(j)) - want) <= 16 * eps * (std::abs(want) + static_cast<ld>(d)));
          // The second std differs by 4 roundoffs: g moves by about 8 eps |∂g/∂ log s|.
          CHECK(std::abs(static_cast<ld>(D2(j)) - want) <= 64 * eps * (std::abs(want) + static_cast<ld>(d)));
        }
        if (td == 1.0) {  // v = x at t = 1: div v = d
          CHECK(std::abs(static_cast<ld>(D(0)) - static_cast<ld>(d)) <= 4 * eps * static_cast<ld>(d));
        }
      }
    }
  }
}

TEMPLATE_TEST_CASE("gaussian mixture: the divergence overloads agree; finite everywhere",
                   "[mixture][divergence]", float, double) {
  using S = TestType;
  test_rng rng(43);
  for (const bool equal_stds : {true, false}) {
    const random_mixture<S, 2> mix(2, 9, equal_stds, false, rng);
    const kinflow::gaussian_mixture_field<S, 2> field(mix.pi, mix.mu, mix.s);
    kinflow::batch<S, 2> X(2, 40);
    rng.fill_normal(X, 3.0);
    X.col(0).setConstant(S(1e6));
    X.col(1) << S(-1e4), S(3e4);
    X.col(2).setZero();
    kinflow::sample_times<S> T(40);
    for (Eigen::Index j = 0; j < 40; ++j) T(j) = static_cast<S>(j % 5 == 0 ? 1.0 : rng.uniform());
    T(3) = S(0);
    for (const double td : {0.0, 0.25, 0.999999, 1.0}) {
      const auto t = static_cast<S>(td);
      CAPTURE(equal_stds, td);
      kinflow::per_sample<S> D1, D3;
      field.divergence(t, X, D1);
      const kinflow::per_sample<S> D2 = field.divergence(t, X);
      field.divergence_at_times(kinflow::sample_times<S>::Constant(40, t), X, D3);
      REQUIRE(D1.allFinite());
      CHECK(D1 == D2);
      CHECK(D1 == D3);
    }
    // A time per column: the same bits as column by column.
    kinflow::per_sample<S> Dt;
    field.divergence_at_times(T, X, Dt);
    REQUIRE(Dt.size() == 40);
    REQUIRE(Dt.allFinite());
    for (Eigen::Index j = 0; j < 40; ++j) {
      const kinflow::batch<S, 2> xj = X.col(j);
      CHECK(field.divergence(T(j), xj)(0) == Dt(j));
    }
    kinflow::per_sample<S> De(5);
    field.divergence(S(0.5), kinflow::batch<S, 2>(2, 0), De);
    CHECK(De.size() == 0);
    CHECK_THROWS_AS(field.divergence_at_times(kinflow::sample_times<S>::Zero(3), X, Dt), kinflow::dimension_mismatch);
  }
}

