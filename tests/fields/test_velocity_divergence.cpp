// Velocity and divergence in one pass (docs/math.md §4.5): the divergence of
// velocity_and_divergence against a long-double brute-force trace of the posterior covariance
// where the posterior concentrates (t near 1, duplicated points, far samples, data far from
// the origin), with direct and product distances, float and double; its agreement with the
// separate calls, over threads and block sizes; and the solve carrying the log-likelihood
// getting the divergence from the velocity's evaluation.
#include "kinflow_catch.hpp"

#include <kinflow/fields/empirical.hpp>
#include <kinflow/fields/gaussian_mixture.hpp>
#include <kinflow/fields/shaped.hpp>
#include <kinflow/fields/velocity_divergence.hpp>
#include <kinflow/integrators/adaptive.hpp>
#include <kinflow/integrators/explicit_rk.hpp>

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
using kinflow_test::max_abs_diff;
using kinflow_test::test_rng;

static_assert(kinflow::velocity_divergence_field<const kinflow::empirical_field<double, 2>, double, 2>);
static_assert(kinflow::velocity_divergence_field<const kinflow::empirical_field<float>, float, Eigen::Dynamic>);
static_assert(kinflow::velocity_divergence_field<const kinflow::gaussian_mixture_field<double>, double, Eigen::Dynamic>);

namespace {

// A training set whose posterior concentrates: clusters of exact duplicates, pairs a tiny
// distance apart, and the rest spread out; shifted by `offset` in every coordinate.
template <class Scalar>
kinflow::batch<Scalar> concentrated_set(Eigen::Index d, Eigen::Index n, double offset, test_rng& rng) {
  kinflow::batch<Scalar> Y(d, n);
  rng.fill_normal(Y);
  for (Eigen::Index i = 1; i < 6; ++i) Y.col(i) = Y.col(0);                 // six duplicates
  for (Eigen::Index i = 6; i < 9; ++i) Y.col(i) = Y.col(0) * Scalar(1.001);  // close to them
  Y.col(10) = Y.col(9);
  Y.array() += static_cast<Scalar>(offset);
  return Y;
}

// Samples: on duplicated and close points (t y + a little noise), next to one point, midway
// between two, and far from all (along a direction, and off every axis).
template <class Scalar>
kinflow::batch<Scalar> concentrated_samples(const kinflow::batch<Scalar>& Y, double t, double sigma,
                                            test_rng& rng) {
  const Eigen::Index d = Y.rows();
  kinflow::batch<Scalar> X(d, 8);
  const auto ts = static_cast<Scalar>(t), ss = static_cast<Scalar>(sigma);
  for (Eigen::Index k = 0; k < d; ++k) {
    X(k, 0) = ts * Y(k, 0) + ss * static_cast<Scalar>(rng.normal());
    X(k, 1) = ts * Y(k, 7) + Scalar(0.1) * ss * static_cast<Scalar>(rng.normal());
    X(k, 2) = ts * Y(k, 9);
    X(k, 3) = ts * (Y(k, 12) + Y(k, 13)) / 2;
    X(k, 4) = ts * Y(k, 20) + Scalar(3) * ss * static_cast<Scalar>(rng.normal());
    X(k, 5) = Scalar(1000) + ts * Y(k, 0);
    X(k, 6) = Scalar(k % 2 == 0 ? 200 : -150);
    X(k, 7) = ts * Y(k, 30) + ss * static_cast<Scalar>(rng.normal());
  }
  return X;
}

// The divergence (and velocity) of velocity_and_divergence against the long-double
// reference, with the tolerance of test_empirical.cpp's check_against_reference: 32x the
// change under relative perturbations of all inputs by one roundoff (the conditioning), plus
// roundoffs of the terms' sizes; the divergence also bit for bit equal to divergence().
// The logits' rounding is modelled as 8 sqrt(d) ε |L| (+ ε^(2/3) for product distances,
// what they may keep unrefined), or @p logit_err when given.
template <class Scalar>
void check_columns(const kinflow::empirical_field<Scalar>& field, const kinflow::batch<Scalar>& Y,
                   const kinflow::batch<Scalar>& X, Scalar t, bool expanded, test_rng& rng,
                   ld logit_err_given = -1) {
  const ld eps = std::numeric_limits<Scalar>::epsilon();
  const ld_matrix Yl = Y.template cast<ld>();
  const ld tl = t;
  const ld sigma = field.sigma(t);
  const Eigen::Index d = Y.rows();
  kinflow::batch<Scalar> V, V_alone;
  kinflow::per_sample<Scalar> D;
  field.velocity_and_divergence(t, X, V, D);
  field(t, X, V_alone);
  const kinflow::per_sample<Scalar> D_alone = field.divergence(t, X);
  REQUIRE(D.allFinite());
  REQUIRE(V.allFinite());
  for (Eigen::Index j = 0; j < X.cols(); ++j) {
    CAPTURE(j);
    CHECK(D(j) == D_alone(j));
    const ld_vector x = X.col(j).template cast<ld>();
    const auto ref = kinflow_test::empirical_reference(Yl, x, tl, sigma);
    ld sdiv = 0, sv = 0;
    for (int p = 0; p < 3; ++p) {
      const auto r = kinflow_test::empirical_reference(kinflow_test::perturbed(Yl, eps, rng),
                                                       kinflow_test::perturbed(x, eps, rng),
                                                       tl * (1 + eps * static_cast<ld>(rng.uniform(-1, 1))),
                                                       sigma * (1 + eps * static_cast<ld>(rng.uniform(-1, 1))));
      sdiv = std::max(sdiv, std::abs(r.divergence - ref.divergence));
      sv = std::max(sv, max_abs_diff(r.velocity, ref.velocity));
    }
    const ld dd = static_cast<ld>(d);
    const ld logit_err = logit_err_given >= 0 ? logit_err_given
                                              : 8 * std::sqrt(dd) * eps * ref.logit_abs +
                                                    (expanded ? std::pow(eps, 2.0L / 3) : 0);
    const ld xabs = x.cwiseAbs().maxCoeff();
    const ld tol_div = 32 * sdiv + 64 * eps * dd / sigma +
                       (64 * eps + 4 * logit_err) * tl * ref.trace / (sigma * sigma * sigma);
    const ld tol_v = 32 * sv + (64 * eps * (ref.weighted_abs + xabs) + 4 * logit_err * ref.spread) / sigma;
    CHECK(std::abs(static_cast<ld>(D(j)) - ref.divergence) <= tol_div);
    CHECK(max_abs_diff(V.col(j), ref.velocity) <= tol_v);
    CHECK(max_abs_diff(V.col(j), V_alone.col(j)) <= 2 * tol_v);
  }
}

template <class Scalar>
void check_concentrated(Eigen::Index d, kinflow::distance_method method, double offset,
                        const std::vector<double>& times, std::uint64_t seed) {
  test_rng rng(seed);
  const Eigen::Index n = 120;
  const kinflow::batch<Scalar> Y = concentrated_set<Scalar>(d, n, offset, rng);
  kinflow::empirical_options<Scalar> opt;
  opt.distances = method;
  const kinflow::empirical_field<Scalar> field(Y, opt);
  const bool expanded = method == kinflow::distance_method::expanded ||
                        (method == kinflow::distance_method::automatic &&
                         d > kinflow::detail::direct_distance_max_dim);
  for (const double td : times) {
    const auto t = static_cast<Scalar>(td);
    CAPTURE(d, td, offset, static_cast<int>(method), sizeof(Scalar));
    const kinflow::batch<Scalar> X = concentrated_samples<Scalar>(Y, td, static_cast<double>(field.sigma(t)), rng);
    check_columns<Scalar>(field, Y, X, t, expanded, rng);
  }
}

// A set on which a sample first looks spread about the origin and then concentrates far
// from it (d = 16): 32 points at radius 2.28 orthogonal to e_0 (±2.28 e_k, k = 1..15, and
// ±2.28 (e_1 + e_2)/√2), then K points within 0.01 of F = 4 e_0. At t = 1/2 and x near
// t F / 2, the first 32 points' logits are 2.6 nats below the others', two maximum weights'
// worth of pairs about the mean 0 with spread 5.2: the split trace relaxes. But the K points
// end with nearly all the weight about a mean near F, where the far expansion about the
// origin cancels to about 2/K of its terms: the stream must run again with the cut.
template <class Scalar>
kinflow::batch<Scalar> spread_then_concentrated(Eigen::Index copies, test_rng& rng) {
  const Eigen::Index d = 16;
  const Scalar s = Scalar(2.28);
  kinflow::batch<Scalar> Y = kinflow::batch<Scalar>::Zero(d, 32 + copies);
  for (Eigen::Index k = 1; k < d; ++k) {
    Y(k, 2 * (k - 1)) = s;
    Y(k, 2 * (k - 1) + 1) = -s;
  }
  Y(1, 30) = Y(2, 30) = s / std::sqrt(Scalar(2));
  Y(1, 31) = Y(2, 31) = -s / std::sqrt(Scalar(2));
  for (Eigen::Index i = 32; i < 32 + copies; ++i)
    for (Eigen::Index k = 0; k < d; ++k)
      Y(k, i) = (k == 0 ? Scalar(4) : Scalar(0)) + Scalar(0.01) * static_cast<Scalar>(rng.normal());
  return Y;
}

}  // namespace

TEMPLATE_TEST_CASE("velocity_and_divergence: the trace of a concentrated posterior matches long-double brute force",
                   "[divergence][pass]", float, double) {
  using S = TestType;
  const bool is_float = std::is_same_v<S, float>;
  const std::vector<double> near_one = is_float ? std::vector<double>{0.5, 0.9, 0.99, 0.999, 1.0}
                                                : std::vector<double>{0.5, 0.9, 0.999, 0.99999, 1.0 - 1e-9, 1.0};
  using kinflow::distance_method;
  SECTION("direct distances, d = 2") {
    check_concentrated<S>(2, distance_method::automatic, 0.0, near_one, 1);
  }
  SECTION("product distances, d = 8 and 64") {
    check_concentrated<S>(8, distance_method::automatic, 0.0, near_one, 2);
    check_concentrated<S>(64, distance_method::expanded, 0.0, near_one, 3);
  }
  SECTION("data far from the origin: the expansion about it would cancel") {
    check_concentrated<S>(2, distance_method::direct, 50.0, near_one, 4);
    check_concentrated<S>(16, distance_method::expanded, 50.0, near_one, 5);
  }
  SECTION("diffuse posteriors too (t near 0)") {
    check_concentrated<S>(16, distance_method::expanded, 0.0, {0.0, 1e-3, 0.05, 0.2}, 6);
  }
  SECTION("spread about the origin at first, concentrated far from it at the end") {
    test_rng rng(7);
    const kinflow::batch<S> Y = spread_then_concentrated<S>(40000, rng);
    kinflow::empirical_options<S> opt;
    opt.distances = distance_method::expanded;
    const kinflow::empirical_field<S> field(Y, opt);
    const S t = S(0.5);
    kinflow::batch<S> X = kinflow::batch<S>::Zero(16, 4);
    X.row(0).setConstant(t * S(2));
    for (Eigen::Index j = 1; j < 4; ++j) X(j, j) = S(0.01) * static_cast<S>(j);
    // The logits' rounding: the expansion's bound of docs/math.md §4.4 (no refinement here).
    const long double eps = std::numeric_limits<S>::epsilon(), sigma = field.sigma(t);
    const long double r = static_cast<long double>(X.colwise().norm().maxCoeff()) +
                          t * static_cast<long double>(Y.colwise().norm().maxCoeff());
    const long double logit_err = (2 * std::sqrt(16.0L) + 4) * eps / 2 * r * r / (2 * sigma * sigma);
    check_columns<S>(field, Y, X, t, true, rng, logit_err);
    // The trace itself (the posterior state's Q / W), where the divergence's d/σ term does not
    // hide it: within 64 roundoffs plus what the logits' rounding can do to it (4x), plus 32x
    // its change under perturbations of the inputs.
    const auto state = field.partial_state(t, X, {true, true});
    const ld_matrix Yl = Y.template cast<ld>();
    for (Eigen::Index j = 0; j < X.cols(); ++j) {
      CAPTURE(j);
      const ld_vector x = X.col(j).template cast<ld>();
      const auto ref = kinflow_test::empirical_reference(Yl, x, ld(t), sigma);
      ld strace = 0;
      for (int p = 0; p < 3; ++p)
        strace = std::max(strace, std::abs(kinflow_test::empirical_reference(kinflow_test::perturbed(Yl, eps, rng),
                                                                             kinflow_test::perturbed(x, eps, rng), ld(t), sigma)
                                               .trace -
                                           ref.trace));
      const ld trace = static_cast<ld>(state.deviation_sum(j)) / static_cast<ld>(state.weight_sum(j));
      CHECK(std::abs(trace - ref.trace) <= 32 * strace + (64 * eps + 4 * logit_err) * ref.trace);
    }
  }
}

TEST_CASE("velocity_and_divergence: threads and block sizes change the results only through rounding",
          "[divergence][pass]") {
  test_rng rng(11);
  for (const Eigen::Index d : {Eigen::Index{3}, Eigen::Index{40}}) {
    CAPTURE(d);
    kinflow::batch<double> Y(d, 700), X(d, 300);
    rng.fill_normal(Y);
    rng.fill_normal(X);
    kinflow::empirical_options<double> one, many, small;
    one.threads = 1;
    many.threads = 4;
    small.threads = 3;
    small.memory_budget = std::size_t{64} << 10;
    const kinflow::empirical_field<double> f1(Y, one), f4(Y, many), fs(Y, small);
    kinflow::sample_times<double> T(X.cols());
    for (Eigen::Index j = 0; j < X.cols(); ++j) T(j) = static_cast<double>(j % 10) / 9.0 * 0.999;
    kinflow::batch<double> V1, V4, Vs;
    kinflow::per_sample<double> D1, D4, Ds;
    f1.velocity_and_divergence_at_times(T, X, V1, D1);
    f4.velocity_and_divergence_at_times(T, X, V4, D4);
    fs.velocity_and_divergence_at_times(T, X, Vs, Ds);
    // Direct distances: the same bits on any number of threads. Product distances: the
    // threads' column blocks are narrower, which changes the products' summation order
    // (as for the velocity alone, test_concurrency.cpp).
    if (d == 3) {
      CHECK((V1.array() == V4.array()).all());
      CHECK((D1.array() == D4.array()).all());
    }
    for (Eigen::Index j = 0; j < X.cols(); ++j) {
      const double s = f1.sigma(T(j));
      CHECK(std::abs(D4(j) - D1(j)) <= 1e-9 * (std::abs(D1(j)) + static_cast<double>(d) / s));
      CHECK(std::abs(Ds(j) - D1(j)) <= 1e-9 * (std::abs(D1(j)) + static_cast<double>(d) / s));
    }
    CHECK(max_abs_diff(V4, V1) <= 1e-9L * (1 + V1.cwiseAbs().maxCoeff()));
    CHECK(max_abs_diff(Vs, V1) <= 1e-9L * (1 + V1.cwiseAbs().maxCoeff()));
    // V may be X.
    kinflow::batch<double> XV = X;
    kinflow::per_sample<double> Dx;
    f1.velocity_and_divergence_at_times(T, XV, XV, Dx);
    CHECK((XV.array() == V1.array()).all());
    CHECK((Dx.array() == D1.array()).all());
  }
}

namespace {

// The empirical field with or without the paired evaluation, counting the calls.
template <bool Paired>
struct counting_field {
  const kinflow::empirical_field<double>* f;
  mutable int velocity_calls = 0, divergence_calls = 0, paired_calls = 0;
  [[nodiscard]] Eigen::Index dim() const { return f->dim(); }
  void operator()(double t, const kinflow::batch<double>& X, kinflow::batch<double>& V) const {
    ++velocity_calls;
    (*f)(t, X, V);
  }
  void velocity_at_times(const kinflow::sample_times<double>& T, const kinflow::batch<double>& X,
                         kinflow::batch<double>& V) const {
    ++velocity_calls;
    f->velocity_at_times(T, X, V);
  }
  void divergence_at_times(const kinflow::sample_times<double>& T, const kinflow::batch<double>& X,
                           kinflow::per_sample<double>& D) const {
    ++divergence_calls;
    f->divergence_at_times(T, X, D);
  }
  void velocity_and_divergence(double t, const kinflow::batch<double>& X, kinflow::batch<double>& V,
                               kinflow::per_sample<double>& D) const
    requires Paired
  {
    ++paired_calls;
    f->velocity_and_divergence(t, X, V, D);
  }
  void velocity_and_divergence_at_times(const kinflow::sample_times<double>& T, const kinflow::batch<double>& X,
                                        kinflow::batch<double>& V, kinflow::per_sample<double>& D) const
    requires Paired
  {
    ++paired_calls;
    f->velocity_and_divergence_at_times(T, X, V, D);
  }
};

}  // namespace

TEST_CASE("A solve carrying the log-likelihood gets the divergence from the velocity's evaluation",
          "[divergence][pass][likelihood]") {
  test_rng rng(21);
  kinflow::batch<double> Y(3, 50), X0(3, 20);
  rng.fill_normal(Y);
  rng.fill_normal(X0);
  const kinflow::empirical_field<double> field(Y);
  static_assert(kinflow::velocity_divergence_field<const counting_field<true>, double, Eigen::Dynamic>);
  static_assert(!kinflow::velocity_divergence_field<const counting_field<false>, double, Eigen::Dynamic>);
  const counting_field<true> paired{&field};
  const counting_field<false> separate{&field};

  SECTION("RK4 on a fixed grid") {
    kinflow::fixed_step_options o;
    o.likelihood.enabled = true;
    kinflow::batch<double> Xp = X0, Xs = X0;
    const auto grid = kinflow::time_grid<>::uniform(50);
    const auto rp = kinflow::integrate(paired, kinflow::rk4, grid, Xp, o);
    const auto rs = kinflow::integrate(separate, kinflow::rk4, grid, Xs, o);
    CHECK(paired.paired_calls == 4 * 50);
    CHECK(paired.divergence_calls == 0);
    CHECK(paired.velocity_calls == 0);
    CHECK(separate.divergence_calls == 4 * 50);
    // The same solve up to the rounding of the velocity (one pass or two).
    CHECK(max_abs_diff(Xp, Xs) <= 1e-9L * (1 + Xs.cwiseAbs().maxCoeff()));
    for (Eigen::Index i = 0; i < X0.cols(); ++i)
      CHECK(std::abs(rp.log_likelihood(i) - rs.log_likelihood(i)) <= 1e-8 * (1 + std::abs(rs.log_likelihood(i))));
  }
  SECTION("Dormand-Prince, adaptive") {
    kinflow::adaptive_options o;
    o.likelihood.enabled = true;
    o.rtol = o.atol = 1e-8;
    kinflow::batch<double> Xp = X0, Xs = X0;
    const auto rp = kinflow::integrate_adaptive(paired, kinflow::dopri5, 0.0, 1.0, Xp, o);
    const auto rs = kinflow::integrate_adaptive(separate, kinflow::dopri5, 0.0, 1.0, Xs, o);
    REQUIRE(rp.all_success());
    REQUIRE(rs.all_success());
    CHECK(paired.paired_calls > 0);
    // Every stage's divergence came from its velocity evaluation: none evaluated apart.
    CHECK(paired.divergence_calls == 0);
    CHECK(paired.velocity_calls == 0);
    CHECK(separate.divergence_calls > 0);
    for (Eigen::Index i = 0; i < X0.cols(); ++i)
      CHECK(std::abs(rp.log_likelihood(i) - rs.log_likelihood(i)) <= 1e-5 * (1 + std::abs(rs.log_likelihood(i))));
  }
}

TEST_CASE("velocity_and_divergence of a shaped field: both scaled by the gain", "[divergence][pass][shaped]") {
  test_rng rng(31);
  kinflow::batch<double, 2> Y(2, 40), X(2, 12);
  rng.fill_normal(Y);
  rng.fill_normal(X);
  const kinflow::empirical_field<double, 2> inner(Y);
  const kinflow::kts_gain gain(kinflow::kts_options{.alpha0 = 0.5, .beta0 = 0.02, .tau = 0.6, .k = 3});
  const auto s = kinflow::shaped(inner, gain);
  static_assert(kinflow::velocity_divergence_field<decltype(s), double, 2>);
  kinflow::sample_times<double> T = kinflow::sample_times<double>::LinSpaced(12, 0.0, 1.0);
  for (const double t : {0.1, 0.7, 0.999}) {
    CAPTURE(t);
    kinflow::batch<double, 2> V, Vin;
    kinflow::per_sample<double> D, Din;
    s.velocity_and_divergence(t, X, V, D);
    inner.velocity_and_divergence(t, X, Vin, Din);
    CHECK(D == (gain(t) * Din).eval());
    CHECK(V == (gain(t) * Vin).eval());
  }
  kinflow::batch<double, 2> V, Vin;
  kinflow::per_sample<double> D, Din;
  s.velocity_and_divergence_at_times(T, X, V, D);
  inner.velocity_and_divergence_at_times(T, X, Vin, Din);
  for (Eigen::Index i = 0; i < 12; ++i) {
    CAPTURE(i);
    CHECK(D(i) == gain(T(i)) * Din(i));
    CHECK(V.col(i) == (gain(T(i)) * Vin.col(i)).eval());
  }
}
