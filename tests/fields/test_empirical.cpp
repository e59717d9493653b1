// Tests of kinflow::empirical_field (docs/math.md §2): every quantity against a plain long-double
// reference, derivatives against finite differences, behaviour at t = 1, independence of
// threads and block sizes, ownership, and errors for bad input.
#include "kinflow_catch.hpp"

#include <kinflow/core/concepts.hpp>
#include <kinflow/fields/empirical.hpp>

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <tuple>
#include <type_traits>
#include <vector>

#include "closed_form_reference.hpp"

using kinflow_test::ld;
using kinflow_test::ld_matrix;
using kinflow_test::ld_vector;
using kinflow_test::test_rng;
using kinflow_test::max_abs_diff;
using kinflow_test::make_samples;

static_assert(kinflow::batched_velocity_field<kinflow::empirical_field<double, 2>, double, 2>);
static_assert(kinflow::per_column_time_field<kinflow::empirical_field<double, 2>, double, 2>);
static_assert(kinflow::field_with_dim<kinflow::empirical_field<double, 2>>);
static_assert(kinflow::batched_velocity_field<kinflow::empirical_field<float>, float, Eigen::Dynamic>);
static_assert(kinflow::per_column_time_field<kinflow::empirical_field<float>, float, Eigen::Dynamic>);

// Checks both the exception type and its message.
#define REQUIRE_THROWS_TYPE_WITH(expr, type, matcher) \
  do {                                                \
    REQUIRE_THROWS_AS(expr, type);                    \
    REQUIRE_THROWS_WITH(expr, matcher);               \
  } while (false)

namespace {

const std::vector<double> test_times{0.0, 0.3, 0.9, 0.999, 1.0 - 1e-9, 1.0};



// Compares every quantity of the field with the long-double reference. The tolerance of each
// quantity is what the problem itself allows: 32x its change under relative perturbations of
// all inputs by one unit roundoff of Scalar (so it follows the conditioning, which is severe
// near t = 1), plus a few roundoffs of the magnitudes the result is summed from.
template <class Scalar, int Dim>
void check_against_reference(Eigen::Index d, kinflow::distance_method method, std::uint64_t seed,
                             Scalar sigma_min = 0) {
  using batch_t = kinflow::batch<Scalar, Dim>;
  const Eigen::Index n = 97, B = 16;
  const ld eps = std::numeric_limits<Scalar>::epsilon();
  test_rng rng(seed);
  batch_t Y(d, n);
  rng.fill_normal(Y);

  kinflow::empirical_options<Scalar> opt;
  opt.sigma_min = sigma_min;
  opt.distances = method;
  const kinflow::empirical_field<Scalar, Dim> field(Y, opt);
  const ld_matrix Yl = Y.template cast<ld>();
  const ld c = 1 - static_cast<ld>(sigma_min);

  for (const double td : test_times) {
    const auto t = static_cast<Scalar>(td);
    const ld tl = t;
    const ld sigma = std::max<ld>(1 - c * tl, static_cast<ld>(opt.eps));
    CAPTURE(d, td, static_cast<int>(method), sizeof(Scalar));
    REQUIRE(std::abs(static_cast<ld>(field.sigma(t)) - sigma) <= 4 * eps);

    const batch_t X = make_samples(Y, B, td, static_cast<double>(sigma), rng);
    batch_t V, Vt, M, S;
    field(t, X, V);
    field.velocity_at_times(kinflow::sample_times<Scalar>::Constant(B, t), X, Vt);
    field.posterior_mean(t, X, M);
    field.score(t, X, S);
    const auto W = field.posterior_weights(t, X);
    const auto logp = field.log_density(t, X);
    const auto div = field.divergence(t, X);
    REQUIRE(V.allFinite());
    REQUIRE(M.allFinite());
    REQUIRE(S.allFinite());
    REQUIRE(W.allFinite());
    REQUIRE(logp.allFinite());
    REQUIRE(div.allFinite());
    REQUIRE(W.rows() == n);
    REQUIRE(W.cols() == B);
    CHECK(max_abs_diff(V, Vt) == 0);  // the same computation, one time per column

    for (Eigen::Index j = 0; j < B; ++j) {
      CAPTURE(j);
      const ld_vector x = X.col(j).template cast<ld>();
      const auto ref = kinflow_test::empirical_reference(Yl, x, tl, sigma, c);
      ld sw = 0, sm = 0, sv = 0, ss = 0, slp = 0, sdiv = 0;
      for (int p = 0; p < 3; ++p) {
        const auto r = kinflow_test::empirical_reference(
            kinflow_test::perturbed(Yl, eps, rng), kinflow_test::perturbed(x, eps, rng),
            tl * (1 + eps * static_cast<ld>(rng.uniform(-1, 1))),
            sigma * (1 + eps * static_cast<ld>(rng.uniform(-1, 1))), c);
        sw = std::max(sw, max_abs_diff(r.weights, ref.weights));
        sm = std::max(sm, max_abs_diff(r.mean, ref.mean));
        sv = std::max(sv, max_abs_diff(r.velocity, ref.velocity));
        ss = std::max(ss, max_abs_diff(r.score, ref.score));
        slp = std::max(slp, std::abs(r.log_density - ref.log_density));
        sdiv = std::max(sdiv, std::abs(r.divergence - ref.divergence));
      }
      // Besides the conditioning: each logit L_i is rounded on its own (relative error up
      // to about sqrt(d) ε for direct distances); the expanded path is documented to be
      // accurate to ε^(2/3) in the logits. A logit error δ moves the weights by w δ, the
      // mean by δ Σ w |y - m|, and so on.
      const ld xabs = x.cwiseAbs().maxCoeff();
      const ld dd = static_cast<ld>(d);
      const ld logit_err = 8 * std::sqrt(dd) * eps * ref.logit_abs +
                           (method == kinflow::distance_method::expanded ||
                                    (method == kinflow::distance_method::automatic && d > kinflow::detail::direct_distance_max_dim)
                                ? std::pow(eps, 2.0L / 3)
                                : 0);
      const ld tol_w = 32 * sw + 64 * eps * ref.weights.maxCoeff() +
                       4 * logit_err * ref.weights.maxCoeff();
      const ld tol_m = 32 * sm + 64 * eps * ref.weighted_abs + 4 * logit_err * ref.spread;
      const ld tol_v = 32 * sv + (64 * eps * (ref.weighted_abs + c * xabs) + 4 * logit_err * ref.spread) / sigma;
      const ld tol_s = 32 * ss + (64 * eps * (tl * ref.weighted_abs + xabs) + 4 * logit_err * tl * ref.spread) / (sigma * sigma);
      const ld tol_lp = 32 * slp + 4 * logit_err +
                        64 * eps * (std::abs(ref.log_density) + std::log(ld(n)) + dd * std::abs(std::log(sigma)) + dd);
      const ld tol_div = 32 * sdiv + 64 * eps * dd / sigma +
                         (64 * eps + 4 * logit_err) * tl * ref.trace / (sigma * sigma * sigma);

      CHECK(max_abs_diff(W.col(j), ref.weights) <= tol_w);
      CHECK(max_abs_diff(M.col(j), ref.mean) <= tol_m);
      CHECK(max_abs_diff(V.col(j), ref.velocity) <= tol_v);
      CHECK(max_abs_diff(S.col(j), ref.score) <= tol_s);
      CHECK(std::abs(static_cast<ld>(logp(j)) - ref.log_density) <= tol_lp);
      CHECK(std::abs(static_cast<ld>(div(j)) - ref.divergence) <= tol_div);

      // Invariants: weights are a probability vector, the mean is in the convex hull.
      CHECK((W.col(j).array() >= 0).all());
      CHECK(std::abs(static_cast<ld>(W.col(j).sum()) - 1) <= 4 * eps * std::sqrt(ld(n)) + 4 * eps);
      for (Eigen::Index k = 0; k < d; ++k) {
        CHECK(M(k, j) >= Y.row(k).minCoeff() - 4 * eps * Y.row(k).cwiseAbs().maxCoeff());
        CHECK(M(k, j) <= Y.row(k).maxCoeff() + 4 * eps * Y.row(k).cwiseAbs().maxCoeff());
      }
    }
  }
}

}  // namespace

TEMPLATE_TEST_CASE("empirical field: every quantity matches a long-double reference",
                   "[empirical][reference]", float, double) {
  using kinflow::distance_method;
  SECTION("d = 1, 2, 3 (dynamic)") {
    check_against_reference<TestType, Eigen::Dynamic>(1, distance_method::automatic, 11);
    check_against_reference<TestType, Eigen::Dynamic>(2, distance_method::automatic, 12);
    check_against_reference<TestType, Eigen::Dynamic>(3, distance_method::automatic, 13);
  }
  SECTION("d = 2 fixed at compile time") {
    check_against_reference<TestType, 2>(2, distance_method::automatic, 21);
  }
  SECTION("d = 64, direct and expanded distances") {
    check_against_reference<TestType, Eigen::Dynamic>(64, distance_method::direct, 31);
    check_against_reference<TestType, Eigen::Dynamic>(64, distance_method::expanded, 32);
  }
  SECTION("sigma_min > 0") {
    check_against_reference<TestType, Eigen::Dynamic>(3, distance_method::automatic, 41,
                                                      TestType(0.05));
    check_against_reference<TestType, Eigen::Dynamic>(64, distance_method::expanded, 42,
                                                      TestType(0.05));
  }
}

TEST_CASE("empirical field: velocity_at_times uses each column's own time", "[empirical]") {
  test_rng rng(5);
  kinflow::batch<double> Y(3, 40), X(3, 6);
  rng.fill_normal(Y);
  rng.fill_normal(X);
  const kinflow::empirical_field<double> field(Y);
  kinflow::sample_times<double> T(6);
  T << 0.0, 0.25, 0.5, 0.9, 0.9999, 1.0;
  kinflow::batch<double> V, Vj;
  field.velocity_at_times(T, X, V);
  for (Eigen::Index j = 0; j < 6; ++j) {
    const kinflow::batch<double> xj = X.col(j);
    field(T(j), xj, Vj);
    CHECK(max_abs_diff(V.col(j), Vj.col(0)) <= 1e-14L * (1 + Vj.cwiseAbs().maxCoeff()));
  }
}

TEST_CASE("empirical field: divergence and score match finite differences", "[empirical][fd]") {
  test_rng rng(7);
  const Eigen::Index d = 3, n = 30, B = 5;
  kinflow::batch<double> Y(d, n);
  rng.fill_normal(Y);
  for (const double sigma_min : {0.0, 0.1}) {
    kinflow::empirical_options<double> opt;
    opt.sigma_min = sigma_min;
    const kinflow::empirical_field<double> field(Y, opt);
    for (const double t : {0.2, 0.6, 0.95}) {
      CAPTURE(t, sigma_min);
      const double sigma = field.sigma(t);
      kinflow::batch<double> X = make_samples(Y, B, t, sigma, rng);
      X.col(B - 1) = 0.5 * X.col(0) + 0.5 * X.col(1);  // replace the far sample
      const auto div = field.divergence(t, X);
      kinflow::batch<double> S;
      field.score(t, X, S);
      const double h = 1e-4 * sigma;
      for (Eigen::Index j = 0; j < B; ++j) {
        double fd_div = 0;
        Eigen::VectorXd fd_score(d);
        for (Eigen::Index k = 0; k < d; ++k) {
          kinflow::batch<double> Xp = X.col(j), Xm = X.col(j), Vp, Vm;
          Xp(k, 0) += h;
          Xm(k, 0) -= h;
          field(t, Xp, Vp);
          field(t, Xm, Vm);
          fd_div += (Vp(k, 0) - Vm(k, 0)) / (2 * h);
          fd_score(k) = (field.log_density(t, Xp)(0) - field.log_density(t, Xm)(0)) / (2 * h);
        }
        CHECK(div(j) == Approx(fd_div).epsilon(1e-6).margin(1e-6 * d / sigma));
        for (Eigen::Index k = 0; k < d; ++k)
          CHECK(S(k, j) == Approx(fd_score(k)).epsilon(1e-6).margin(1e-6 / sigma));
      }
    }
  }
}

static_assert(kinflow::divergence_field<kinflow::empirical_field<double, 2>, double, 2>);
static_assert(kinflow::divergence_field<const kinflow::empirical_field<float>, float, Eigen::Dynamic>);
static_assert(kinflow::per_column_time_divergence_field<kinflow::empirical_field<double, 2>, double, 2>);
static_assert(kinflow::per_column_time_divergence_field<const kinflow::empirical_field<float>, float, Eigen::Dynamic>);

TEMPLATE_TEST_CASE("empirical field: the divergence overloads agree bit for bit", "[empirical][divergence]",
                   float, double) {
  // The out-parameter and returning forms, and a constant T, run the same arithmetic: the
  // same bits. A time per column gives each column the bits of its own one-column call.
  using S = TestType;
  test_rng rng(13);
  kinflow::batch<S, 2> Y(2, 60);
  rng.fill_normal(Y);
  for (const double sigma_min : {0.0, 0.05}) {
    kinflow::empirical_options<S> opt;
    opt.sigma_min = static_cast<S>(sigma_min);
    const kinflow::empirical_field<S, 2> field(Y, opt);
    kinflow::batch<S, 2> X = make_samples(Y, 30, 0.5, 0.5, rng);
    for (const double td : test_times) {
      const auto t = static_cast<S>(td);
      CAPTURE(sigma_min, td);
      const kinflow::per_sample<S> returned = field.divergence(t, X);
      kinflow::per_sample<S> D(3), Dt;  // wrongly sized on entry: resized
      field.divergence(t, X, D);
      field.divergence_at_times(kinflow::sample_times<S>::Constant(X.cols(), t), X, Dt);
      REQUIRE(D.size() == X.cols());
      REQUIRE(D.allFinite());
      CHECK(D == returned);
      CHECK(Dt == returned);
    }
    kinflow::sample_times<S> T(X.cols());
    for (Eigen::Index j = 0; j < X.cols(); ++j)
      T(j) = static_cast<S>(test_times[static_cast<std::size_t>(j) % test_times.size()]);
    kinflow::per_sample<S> Dt;
    field.divergence_at_times(T, X, Dt);
    REQUIRE(Dt.size() == X.cols());
    for (Eigen::Index j = 0; j < X.cols(); ++j) {
      CAPTURE(sigma_min, j, T(j));
      const kinflow::batch<S, 2> xj = X.col(j);
      CHECK(field.divergence(T(j), xj)(0) == Dt(j));
    }
    CHECK_THROWS_AS(field.divergence_at_times(kinflow::sample_times<S>::Zero(2), X, Dt), kinflow::dimension_mismatch);
    kinflow::batch<S> bad(3, 2);
    bad.setZero();
    kinflow::per_sample<S> Db;
    const kinflow::empirical_field<S> dynamic_field(Y);
    CHECK_THROWS_AS(dynamic_field.divergence(S(0.5), bad, Db), kinflow::dimension_mismatch);
  }
}

TEST_CASE("empirical field: divergence_at_times matches the long-double reference at each column's time",
          "[empirical][divergence]") {
  test_rng rng(17);
  kinflow::batch<double> Y(3, 40);
  rng.fill_normal(Y);
  const kinflow::empirical_field<double> field(Y);
  kinflow::batch<double> X(3, 7);
  rng.fill_normal(X);
  kinflow::sample_times<double> T(7);
  T << 0.0, 0.1, 0.5, 0.8, 0.99, 1.0 - 1e-9, 1.0;
  kinflow::per_sample<double> D;
  field.divergence_at_times(T, X, D);
  for (Eigen::Index j = 0; j < 7; ++j) {
    CAPTURE(j, T(j));
    const auto ref = kinflow_test::empirical_reference(Y.cast<ld>(), X.col(j).cast<ld>(), T(j), field.sigma(T(j)));
    // The divergence is t/σ³ tr Cov - d/σ: its rounding is ε times the size of both terms
    // (and the logits' rounding moves tr Cov); 1e-9 relative covers both with margin in
    // double, also at the clamp σ = ε = 1e-6, where the terms are of order 1e12.
    const ld scale = 1 + std::abs(ref.divergence) + T(j) / std::pow(field.sigma(T(j)), 3) * ref.trace +
                     3 / field.sigma(T(j));
    CHECK(std::abs(static_cast<ld>(D(j)) - ref.divergence) <= 1e-9L * scale);
  }
}

TEST_CASE("empirical field: defined and finite at t = 1 and for far samples", "[empirical][t1]") {
  test_rng rng(9);
  kinflow::batch<double, 2> Y(2, 25);
  rng.fill_normal(Y);
  const kinflow::empirical_field<double, 2> field(Y);
  const double eps = field.options().eps;
  REQUIRE(eps == kinflow::default_time_clamp<double>());
  REQUIRE(field.sigma(1.0) == eps);
  REQUIRE(field.sigma(1.0 - 1e-9) == eps);
  REQUIRE(field.sigma(0.5) == 0.5);

  SECTION("at t = 1 the weights pick the nearest training point and v = m = y_nn") {
    kinflow::batch<double, 2> X(2, 4);
    X.col(0) = Y.col(3);                                       // on a training point
    X.col(1) = Y.col(4) + kinflow::point<double, 2>(1e-7, 0);  // next to one
    X.col(2) = kinflow::point<double, 2>(1e3, -1e3);           // far from all
    X.col(3) = kinflow::point<double, 2>(1e100, 1e100);        // very far
    kinflow::batch<double, 2> V;
    field(1.0, X, V);
    REQUIRE(V.allFinite());
    // Column 3 is too far for double to tell the training points apart (1e100 - y == 1e100):
    // it only has to be finite. The others are exact.
    for (Eigen::Index j = 0; j < 3; ++j) {
      Eigen::Index nn = 0;
      (Y.colwise() - X.col(j)).colwise().squaredNorm().minCoeff(&nn);
      const kinflow::point<double, 2> expected = Y.col(nn);
      CHECK(max_abs_diff(V.col(j), expected) <= 1e-15L * (1 + expected.cwiseAbs().maxCoeff()));
    }
    // Just below t = 1 the clamped formula holds: v = (m - x)/eps.
    kinflow::batch<double, 2> Vb;
    field(1.0 - 1e-9, X, Vb);
    REQUIRE(Vb.allFinite());
    for (Eigen::Index j = 0; j < 2; ++j)
      CHECK(max_abs_diff(Vb.col(j), (V.col(j) - X.col(j)) / eps) <=
            1e-6L * (1 + std::abs(V(0, j) - X(0, j)) / eps));
    CHECK(field.log_density(1.0, X).allFinite());
    CHECK(field.divergence(1.0, X).allFinite());
    CHECK(field.score(1.0, X).allFinite());
    CHECK(field.posterior_weights(1.0, X).allFinite());
  }

  SECTION("float at t = 1 is finite too") {
    const kinflow::batch<float, 2> Yf = Y.cast<float>();
    const kinflow::empirical_field<float, 2> ff(Yf);
    kinflow::batch<float, 2> X(2, 3), V;
    X << 0.f, 1e3f, 1e12f, 0.f, -1e3f, 1e12f;
    ff(1.f, X, V);
    CHECK(V.allFinite());
    CHECK(ff.log_density(1.f, X).allFinite());
    CHECK(ff.divergence(1.f, X).allFinite());
  }
}



TEST_CASE("empirical field: a NaN sample does not affect the others", "[empirical]") {
  test_rng rng(18);
  kinflow::batch<double> Y(6, 200), X(6, 40);
  rng.fill_normal(Y);
  rng.fill_normal(X);
  for (const auto method : {kinflow::distance_method::direct, kinflow::distance_method::expanded}) {
    kinflow::empirical_options<double> opt;
    opt.distances = method;
    const kinflow::empirical_field<double> field(Y, opt);
    kinflow::batch<double> V, Vn, Xn = X;
    Xn(2, 17) = std::numeric_limits<double>::quiet_NaN();
    field(0.6, X, V);
    field(0.6, Xn, Vn);
    CHECK(std::isnan(Vn(2, 17)));
    Vn.col(17) = V.col(17);
    CHECK(max_abs_diff(V, Vn) == 0);
  }
}

TEST_CASE("empirical field: keeps a copy or a reference, as the caller asks", "[empirical]") {
  test_rng rng(19);
  kinflow::batch<double, 2> Y(2, 10), X(2, 3);
  rng.fill_normal(Y);
  rng.fill_normal(X);
  kinflow::empirical_field<double, 2> copy(Y);
  const kinflow::empirical_field<double, 2> ref(kinflow::keep_reference, Y);
  CHECK_FALSE(copy.holds_reference());
  CHECK(ref.holds_reference());
  CHECK(ref.training_set().data() == Y.data());
  CHECK(copy.training_set().data() != Y.data());

  kinflow::batch<double, 2> V1, V2;
  copy(0.5, X, V1);
  ref(0.5, X, V2);
  CHECK(max_abs_diff(V1, V2) == 0);

  // A copy of an owning field owns its own data; the original can go away.
  auto* heap = new kinflow::empirical_field<double, 2>(Y);
  const kinflow::empirical_field<double, 2> copied = *heap;
  delete heap;
  kinflow::batch<double, 2> V3;
  copied(0.5, X, V3);
  CHECK(max_abs_diff(V1, V3) == 0);

  // The owning field does not see later changes of the caller's matrix.
  Y.setZero();
  copy(0.5, X, V3);
  CHECK(max_abs_diff(V1, V3) == 0);

  // Class template argument deduction.
  const kinflow::batch<float, 2> Yf = Y.cast<float>();
  kinflow::empirical_field deduced(Yf);
  static_assert(std::is_same_v<decltype(deduced), kinflow::empirical_field<float, 2>>);
  kinflow::empirical_field deduced_ref(kinflow::keep_reference, Yf);
  static_assert(std::is_same_v<decltype(deduced_ref), kinflow::empirical_field<float, 2>>);
}

TEST_CASE("empirical field: bad input is rejected with a clear message", "[empirical][errors]") {
  using kinflow_test::contains;
  kinflow::batch<double> Y(2, 5);
  Y.setRandom();
  kinflow::empirical_options<double> opt;

  SECTION("empty training set") {
    const kinflow::batch<double> empty(2, 0);
    REQUIRE_THROWS_TYPE_WITH(kinflow::empirical_field<double>(empty), kinflow::invalid_argument,
                           contains("number of points N"));
  }
  SECTION("NaN or Inf in the training data") {
    kinflow::batch<double> bad = Y;
    bad(1, 3) = std::numeric_limits<double>::quiet_NaN();
    REQUIRE_THROWS_TYPE_WITH(kinflow::empirical_field<double>(bad), kinflow::invalid_argument,
                           contains("training set Y(1, 3)"));
    bad(1, 3) = std::numeric_limits<double>::infinity();
    REQUIRE_THROWS_TYPE_WITH(kinflow::empirical_field<double>(kinflow::keep_reference, bad),
                           kinflow::invalid_argument, contains("finite"));
  }
  SECTION("dimension mismatch") {
    const kinflow::batch<double> Y3(3, 5);
    REQUIRE_THROWS_AS((kinflow::empirical_field<double, 2>(Y3)), kinflow::dimension_mismatch);
    const kinflow::empirical_field<double> field(Y);
    kinflow::batch<double> X(3, 4), V;
    X.setZero();
    REQUIRE_THROWS_TYPE_WITH(field(0.5, X, V), kinflow::dimension_mismatch,
                           contains("rows of the sample batch X"));
    kinflow::batch<double> X2(2, 4);
    X2.setZero();
    REQUIRE_THROWS_AS(field.velocity_at_times(kinflow::sample_times<double>::Zero(3), X2, V),
                      kinflow::dimension_mismatch);
    REQUIRE_THROWS_AS(field.log_density(0.5, X), kinflow::dimension_mismatch);
  }
  SECTION("sigma_min outside [0, 1)") {
    for (const double bad : {-0.1, 1.0, 2.0, std::numeric_limits<double>::quiet_NaN()}) {
      opt.sigma_min = bad;
      REQUIRE_THROWS_TYPE_WITH(kinflow::empirical_field<double>(Y, opt), kinflow::invalid_argument,
                             contains("sigma_min") && contains("0 <= sigma_min < 1"));
    }
  }
  SECTION("eps outside (0, 1)") {
    for (const double bad : {0.0, -1e-6, 1.0, std::numeric_limits<double>::quiet_NaN()}) {
      opt.eps = bad;
      REQUIRE_THROWS_TYPE_WITH(kinflow::empirical_field<double>(Y, opt), kinflow::invalid_argument,
                             contains("eps"));
    }
  }
  SECTION("memory budget too small") {
    opt.memory_budget = 1000;
    REQUIRE_THROWS_TYPE_WITH(kinflow::empirical_field<double>(Y, opt), kinflow::invalid_argument,
                           contains("memory_budget"));
  }
  SECTION("memory budget too small for the dimension: an error at evaluation, not an allocation") {
    // One point of d = 4096 doubles alone takes 32 KiB, and the direct distances hold a
    // block of points plus a column: the smallest block needs more than 64 KiB.
    const Eigen::Index d = 4096;
    const kinflow::batch<double, Eigen::Dynamic> Yd = Eigen::MatrixXd::Random(d, 3);
    kinflow::empirical_options<double> small;
    small.memory_budget = std::size_t{64} << 10;
    small.distances = kinflow::distance_method::direct;
    const kinflow::empirical_field<double> f(Yd, small);
    const kinflow::batch<double, Eigen::Dynamic> X = Eigen::MatrixXd::Random(d, 2);
    kinflow::batch<double, Eigen::Dynamic> V;
    REQUIRE_THROWS_TYPE_WITH(f(0.5, X, V), kinflow::invalid_argument,
                             contains("memory_budget") && contains("at least") && contains("dimension 4096"));
    // the same field with the default budget works
    const kinflow::empirical_field<double> g(Yd);
    g(0.5, X, V);
    CHECK(V.allFinite());
  }
}
