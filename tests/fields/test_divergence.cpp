// Hutchinson's divergence estimator and kinflow::divergence_evaluator: against a linear
// field v = A x, whose probe distribution is enumerated exactly here (all 2^d sign vectors:
// mean tr A, the documented variance, the fourth moment for the spread of the sample
// variance); against the empirical field's exact divergence; reproducibility from the
// seed; the choice between exact and estimated divergence; errors naming the option.

#include "kinflow/fields/divergence.hpp"

#include <Eigen/Core>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "kinflow/data/random.hpp"
#include "kinflow/fields/empirical.hpp"
#include "kinflow_catch.hpp"

using kinflow::batch;
using kinflow::per_sample;
using kinflow::sample_times;

namespace {

template <class Scalar>
using matrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;

// v = A x, batched; counts calls and evaluated columns.
template <class Scalar, int Dim = Eigen::Dynamic>
struct linear_field {
  matrix<Scalar> A;
  int calls = 0;
  Eigen::Index columns = 0;
  void operator()(Scalar, const batch<Scalar, Dim>& X, batch<Scalar, Dim>& V) {
    ++calls;
    columns += X.cols();
    V.noalias() = A * X;
  }
};

// The same with a time per column (v = (1 + t) A x), counting each form's calls.
struct linear_at_times {
  matrix<double> A;
  int batched_calls = 0, per_column_calls = 0;
  void operator()(double t, const batch<double>& X, batch<double>& V) {
    ++batched_calls;
    V.noalias() = (1 + t) * A * X;
  }
  void velocity_at_times(const sample_times<double>& T, const batch<double>& X, batch<double>& V) {
    ++per_column_calls;
    V.noalias() = A * X;
    V.array().rowwise() *= 1 + T.array();
  }
};

// Exact distribution of q(z) = zᵀ A z over the 2^d equally likely sign vectors z.
struct exact_moments {
  double mean = 0, var = 0, m4 = 0;  // mean, variance, fourth central moment
};

exact_moments rademacher_moments(const matrix<double>& A) {
  const Eigen::Index d = A.rows();
  const std::uint64_t n = std::uint64_t{1} << d;
  std::vector<double> q(n);
  Eigen::VectorXd z(d);
  for (std::uint64_t m = 0; m < n; ++m) {
    for (Eigen::Index r = 0; r < d; ++r) z(r) = ((m >> r) & 1u) != 0 ? -1.0 : 1.0;
    q[m] = z.dot(A * z);
  }
  exact_moments e;
  for (const double v : q) e.mean += v / static_cast<double>(n);
  for (const double v : q) {
    e.var += (v - e.mean) * (v - e.mean) / static_cast<double>(n);
    e.m4 += std::pow(v - e.mean, 4) / static_cast<double>(n);
  }
  return e;
}

// The variance formula of the documentation: Σ_{r≠c} (J_rc² + J_rc J_cr).
double documented_variance(const matrix<double>& J) {
  double v = 0;
  for (Eigen::Index r = 0; r < J.rows(); ++r)
    for (Eigen::Index c = 0; c < J.cols(); ++c)
      if (r != c) v += J(r, c) * J(r, c) + J(r, c) * J(c, r);
  return v;
}

matrix<double> random_matrix(Eigen::Index d, std::uint64_t seed) {
  return kinflow::standard_normal<double>(d, d, seed);
}

// Samples of very different scales: columns multiplied by 1, 10, 100, ...
template <class Scalar>
batch<Scalar> scaled_samples(Eigen::Index d, Eigen::Index B, std::uint64_t seed) {
  batch<Scalar> X = kinflow::standard_normal<Scalar>(d, B, seed);
  for (Eigen::Index i = 0; i < B; ++i) X.col(i) *= static_cast<Scalar>(std::pow(10.0, static_cast<double>(i % 3)));
  return X;
}

}  // namespace

TEST_CASE("hutchinson: the documented variance is the exact variance of z^T A z", "[divergence][hutchinson]") {
  for (const Eigen::Index d : {Eigen::Index{1}, Eigen::Index{2}, Eigen::Index{3}, Eigen::Index{6}}) {
    const matrix<double> A = random_matrix(d, 10 + static_cast<std::uint64_t>(d));
    const exact_moments e = rademacher_moments(A);
    CAPTURE(d);
    CHECK(e.mean == Approx(A.trace()).margin(1e-12));
    CHECK(e.var == Approx(documented_variance(A)).margin(1e-12));
    // = Σ_{r<c} (A_rc + A_cr)²
    double pairs = 0;
    for (Eigen::Index r = 0; r < d; ++r)
      for (Eigen::Index c = r + 1; c < d; ++c) pairs += (A(r, c) + A(c, r)) * (A(r, c) + A(c, r));
    CHECK(e.var == Approx(pairs).margin(1e-12));
  }
  // A diagonal or antisymmetric-off-diagonal Jacobian: zero variance.
  matrix<double> D = matrix<double>::Zero(3, 3);
  D.diagonal() << 1, -2, 5;
  D(0, 1) = 2;
  D(1, 0) = -2;
  CHECK(documented_variance(D) == 0);
  CHECK(rademacher_moments(D).var == 0);
}

TEMPLATE_TEST_CASE("hutchinson: on a linear field each probe gives z^T A z up to rounding",
                   "[divergence][hutchinson]", float, double) {
  using S = TestType;
  const Eigen::Index d = 4, B = 30, P = 3;
  linear_field<S> field{random_matrix(d, 21).cast<S>()};
  kinflow::hutchinson_divergence<linear_field<S>, S, Eigen::Dynamic> h(field, d, {.probes = 3, .seed = 5});
  CHECK(h.evaluations_per_sample() == 6);
  const batch<S> X = scaled_samples<S>(d, B, 22);
  per_sample<S> D;
  h(S(0.5), X, D);
  REQUIRE(D.size() == B);
  CHECK(field.calls == 1);  // all 2·P·B perturbed samples in one batched call
  CHECK(field.columns == 2 * P * B);

  const batch<S>& Z = h.last_probes();
  REQUIRE(Z.rows() == d);
  REQUIRE(Z.cols() == P * B);
  CHECK((Z.array().abs() == S(1)).all());
  const per_sample<S>& delta = h.last_steps();
  REQUIRE(delta.size() == B);

  // Rounding: each velocity component of A(x ± δz) is off by about d ε (|A| (|x| + δ))_r,
  // the perturbation x ± δz itself by at most ε|x| where not exact; divided by 2δ with
  // δ ≥ ε^{1/3} max(1, ‖x‖∞) / 2, this is at most about 4 d ε^{2/3} Σ|A|. Twice that.
  const double eps = std::numeric_limits<S>::epsilon();
  const double tol = 8.0 * static_cast<double>(d) * std::pow(eps, 2.0 / 3) * field.A.cwiseAbs().sum();
  const matrix<double> Ad = field.A.template cast<double>();
  const double rel = std::cbrt(eps);
  for (Eigen::Index i = 0; i < B; ++i) {
    CAPTURE(i);
    double want = 0;
    for (Eigen::Index p = 0; p < P; ++p) {
      const Eigen::VectorXd z = Z.col(p * B + i).template cast<double>();
      want += z.dot(Ad * z) / P;
    }
    CHECK(std::abs(static_cast<double>(D(i)) - want) <= tol);
    // The documented step: a power of two in (rel·scale/2, rel·scale], scale = max(1, ‖x‖∞).
    const double scale = std::max(1.0, static_cast<double>(X.col(i).cwiseAbs().maxCoeff()));
    const double di = static_cast<double>(delta(i));
    int e = 0;
    CHECK(std::frexp(di, &e) == 0.5);
    CHECK(di <= rel * scale);
    CHECK(di > rel * scale / 2);
  }
  // The signs are balanced: the share of +1 among the d·P·B entries is ½ within 5 standard
  // deviations of a fair coin.
  const double n = static_cast<double>(Z.size());
  const double plus = static_cast<double>((Z.array() > 0).count());
  CHECK(std::abs(plus / n - 0.5) <= 5 * 0.5 / std::sqrt(n));

  // A relative step of the caller's choice, rounded down to a power of two.
  linear_field<S> field2{field.A};
  kinflow::hutchinson_divergence<linear_field<S>, S, Eigen::Dynamic> h2(field2, d, {.step = 1e-2});
  h2(S(0.5), X, D);
  for (Eigen::Index i = 0; i < B; ++i) {
    const double scale = std::max(1.0, static_cast<double>(X.col(i).cwiseAbs().maxCoeff()));
    CHECK(static_cast<double>(h2.last_steps()(i)) <= 1e-2 * scale);
    CHECK(static_cast<double>(h2.last_steps()(i)) > 0.5e-2 * scale);
  }
}

TEST_CASE("hutchinson: many probes average to tr A within the documented confidence interval",
          "[divergence][hutchinson]") {
  const Eigen::Index d = 5;
  const matrix<double> A = random_matrix(d, 31);
  const exact_moments e = rademacher_moments(A);
  REQUIRE(e.var == Approx(documented_variance(A)).margin(1e-12));
  REQUIRE(e.var > 1);  // a non-trivial spread, so that the test means something
  // Rounding of one probe (see the previous test), far below the statistical error.
  const double fd_tol = 8.0 * d * std::pow(std::numeric_limits<double>::epsilon(), 2.0 / 3) * A.cwiseAbs().sum();

  SECTION("one call with many probes, with its variance estimate") {
    const int P = 20000;
    linear_field<double> field{A};
    kinflow::hutchinson_divergence<linear_field<double>, double, Eigen::Dynamic> h(field, d, {.probes = P, .seed = 7});
    const batch<double> X = scaled_samples<double>(d, 4, 32);
    per_sample<double> D, var;
    h(0.3, X, D, var);
    REQUIRE(var.size() == 4);
    for (Eigen::Index i = 0; i < 4; ++i) {
      CAPTURE(i, D(i), A.trace(), var(i));
      // Mean: within 5 standard errors sqrt(Var / P).
      CHECK(std::abs(D(i) - A.trace()) <= 5 * std::sqrt(e.var / P) + fd_tol);
      // Sample variance of P draws: standard deviation about sqrt((μ4 - Var²) / P).
      CHECK(std::abs(var(i) * P - e.var) <= 5 * std::sqrt((e.m4 - e.var * e.var) / P) + fd_tol);
    }
  }
  SECTION("fresh probes on every call: one probe per call, many calls") {
    linear_field<double> field{A};
    kinflow::hutchinson_divergence<linear_field<double>, double, Eigen::Dynamic> h(field, d, {.seed = 8});
    const batch<double> x = kinflow::standard_normal<double>(d, 1, 33);
    const int n = 8000;
    double mean = 0, m2 = 0;
    per_sample<double> D;
    for (int k = 0; k < n; ++k) {
      h(0.3, x, D);
      const double dev = D(0) - mean;
      mean += dev / (k + 1);
      m2 += dev * (D(0) - mean);
    }
    const double var = m2 / (n - 1);
    CAPTURE(mean, var, e.var);
    CHECK(std::abs(mean - A.trace()) <= 5 * std::sqrt(e.var / n) + fd_tol);
    CHECK(std::abs(var - e.var) <= 5 * std::sqrt((e.m4 - e.var * e.var) / n) + fd_tol);
  }
}

TEST_CASE("hutchinson: agrees with the empirical field's exact divergence", "[divergence][hutchinson]") {
  const Eigen::Index d = 3;
  const batch<double> Y = kinflow::standard_normal<double>(d, 10, 41);
  const kinflow::empirical_field<double> field(Y);
  const batch<double> X = kinflow::standard_normal<double>(d, 3, 42);
  const int P = 20000;
  kinflow::hutchinson_divergence<const kinflow::empirical_field<double>, double, Eigen::Dynamic> h(
      field, d, {.probes = P, .seed = 9});
  for (const double t : {0.3, 0.7}) {
    per_sample<double> D, var;
    h(t, X, D, var);
    const per_sample<double> exact = field.divergence(t, X);
    for (Eigen::Index i = 0; i < 3; ++i) {
      CAPTURE(t, i, D(i), exact(i), var(i));
      REQUIRE(var(i) > 0);
      // 5 estimated standard errors; the difference bias O(δ² |∂³v|) with δ ≈ 6e-6 and
      // σ_t ≥ 0.3 is below 1e-8 of the divergence.
      CHECK(std::abs(D(i) - exact(i)) <= 5 * std::sqrt(var(i)) + 1e-8 * (1 + std::abs(exact(i))));
    }
    // A time per column: the field's velocity_at_times, same estimator.
    per_sample<double> Dt, vt;
    h(sample_times<double>::Constant(3, t), X, Dt, vt);
    for (Eigen::Index i = 0; i < 3; ++i)
      CHECK(std::abs(Dt(i) - exact(i)) <= 5 * std::sqrt(vt(i)) + 1e-8 * (1 + std::abs(exact(i))));
  }
}

TEST_CASE("hutchinson: the same seed gives the same estimates, another seed others", "[divergence][hutchinson]") {
  const Eigen::Index d = 3;
  linear_field<double> f1{random_matrix(d, 51)}, f2{f1.A}, f3{f1.A};
  using H = kinflow::hutchinson_divergence<linear_field<double>, double, Eigen::Dynamic>;
  H a(f1, d, {.probes = 2, .seed = 123}), b(f2, d, {.probes = 2, .seed = 123}), c(f3, d, {.probes = 2, .seed = 124});
  const batch<double> X = kinflow::standard_normal<double>(d, 20, 52);
  per_sample<double> a1, a2, b1, b2, c1;
  a(0.5, X, a1);
  a(0.5, X, a2);
  b(0.5, X, b1);
  b(0.5, X, b2);
  c(0.5, X, c1);
  CHECK(a1 == b1);
  CHECK(a2 == b2);
  CHECK(a1 != a2);  // fresh probes on the second call
  CHECK(a1 != c1);
  CHECK(a.last_probes() == b.last_probes());
  a.reseed(123);
  CHECK(a.options().seed == 123);
  per_sample<double> r1;
  a(0.5, X, r1);
  CHECK(r1 == a1);
}

TEST_CASE("hutchinson: every form of field; a time per column", "[divergence][hutchinson]") {
  const Eigen::Index d = 3, B = 5;
  const matrix<double> A = random_matrix(d, 61);
  const batch<double> X = kinflow::standard_normal<double>(d, B, 62);
  const double tol = 8.0 * d * std::pow(std::numeric_limits<double>::epsilon(), 2.0 / 3) * 2 * A.cwiseAbs().sum();

  SECTION("per-sample lambdas are lifted") {
    auto v = [&](double, const kinflow::point<double>& x) -> Eigen::VectorXd { return A * x; };
    kinflow::hutchinson_divergence<decltype(v), double, Eigen::Dynamic> h(v, d, {.probes = 2});
    per_sample<double> D;
    h(0.2, X, D);
    for (Eigen::Index i = 0; i < B; ++i) {
      double want = 0;
      for (Eigen::Index p = 0; p < 2; ++p) {
        const Eigen::VectorXd z = h.last_probes().col(p * B + i);
        want += z.dot(A * z) / 2;
      }
      CHECK(std::abs(D(i) - want) <= tol);
    }
  }
  SECTION("velocity_at_times is used for a time per column, one call") {
    linear_at_times f{A};
    kinflow::hutchinson_divergence<linear_at_times, double, Eigen::Dynamic> h(f, d);
    sample_times<double> T(B);
    T << 0.0, 0.25, 0.5, 0.75, 1.0;
    per_sample<double> D;
    h(T, X, D);
    CHECK(f.per_column_calls == 1);
    CHECK(f.batched_calls == 0);
    for (Eigen::Index i = 0; i < B; ++i) {
      const Eigen::VectorXd z = h.last_probes().col(i);
      CHECK(std::abs(D(i) - (1 + T(i)) * z.dot(A * z)) <= tol);
    }
  }
  SECTION("a batched field without it: one call for equal times, per column otherwise") {
    linear_field<double> f{A};
    kinflow::hutchinson_divergence<linear_field<double>, double, Eigen::Dynamic> h(f, d);
    per_sample<double> D;
    h(sample_times<double>::Constant(B, 0.4), X, D);
    CHECK(f.calls == 1);
    h(sample_times<double>::LinSpaced(B, 0.0, 1.0), X, D);
    CHECK(f.calls == 1 + 2 * B);
    CHECK(D.size() == B);
  }
  SECTION("an empty batch") {
    linear_field<double> f{A};
    kinflow::hutchinson_divergence<linear_field<double>, double, Eigen::Dynamic> h(f, d);
    per_sample<double> D(4);
    h(0.5, batch<double>(d, 0), D);
    CHECK(D.size() == 0);
    CHECK(f.calls == 0);
  }
}

namespace {
// Exact divergence in one form only (v = -(1 + t) x in d = 2: div v = -2 (1 + t)).
struct only_divergence {
  int calls = 0;
  void operator()(double t, const batch<double, 2>& X, batch<double, 2>& V) const { V = -(1 + t) * X; }
  void divergence(double t, const batch<double, 2>& X, per_sample<double>& D) {
    ++calls;
    D = per_sample<double>::Constant(X.cols(), -2 * (1 + t));
  }
};
struct only_divergence_at_times {
  void operator()(double t, const batch<double, 2>& X, batch<double, 2>& V) const { V = -(1 + t) * X; }
  void divergence_at_times(const sample_times<double>& T, const batch<double, 2>& X, per_sample<double>& D) const {
    D = (-2 * (1 + T.array())).matrix().transpose();
    (void)X;
  }
};
struct wrong_size_divergence {
  void operator()(double, const batch<double, 2>& X, batch<double, 2>& V) const { V = X; }
  void divergence(double, const batch<double, 2>& X, per_sample<double>& D) const { D.setZero(X.cols() + 1); }
};
}  // namespace

TEST_CASE("divergence_evaluator: exact when the field has it, Hutchinson otherwise", "[divergence][evaluator]") {
  using kinflow::divergence_method;
  const batch<double, 2> X = kinflow::standard_normal<double, 2>(2, 6, 71);
  sample_times<double> T(6);
  T << 0.0, 0.2, 0.4, 0.6, 0.8, 1.0;

  SECTION("the empirical field: its own divergence, bit for bit") {
    const batch<double, 2> Y = kinflow::standard_normal<double, 2>(2, 12, 72);
    const kinflow::empirical_field<double, 2> field(Y);
    kinflow::divergence_evaluator<const kinflow::empirical_field<double, 2>, double, 2> ev(field, 2);
    CHECK(ev.is_exact());
    CHECK(ev.method() == divergence_method::exact);
    CHECK(ev.requested_method() == divergence_method::automatic);
    CHECK(ev.evaluations_per_sample() == 0);
    CHECK(ev.hutchinson() == nullptr);
    per_sample<double> D, want;
    ev(T, X, D);
    field.divergence_at_times(T, X, want);
    CHECK(D == want);
    ev(0.3, X, D);
    CHECK(D == field.divergence(0.3, X));

    // Hutchinson asked for explicitly: the estimator with the given options.
    kinflow::divergence_evaluator<const kinflow::empirical_field<double, 2>, double, 2> hv(
        field, 2, {.method = divergence_method::hutchinson, .hutchinson = {.probes = 3, .seed = 4}});
    CHECK(!hv.is_exact());
    CHECK(hv.evaluations_per_sample() == 6);
    REQUIRE(hv.hutchinson() != nullptr);
    kinflow::hutchinson_divergence<const kinflow::empirical_field<double, 2>, double, 2> direct(
        field, 2, {.probes = 3, .seed = 4});
    per_sample<double> H1, H2;
    hv(T, X, H1);
    direct(T, X, H2);
    CHECK(H1 == H2);
  }
  SECTION("a field without a divergence: Hutchinson, and exact is an error naming the option") {
    auto v = [](double t, const batch<double, 2>& Xs, batch<double, 2>& V) { V = -(1 + t) * Xs; };
    kinflow::divergence_evaluator<decltype(v), double, 2> ev(v, 2, {.hutchinson = {.probes = 2}});
    CHECK(!ev.is_exact());
    CHECK(ev.method() == divergence_method::hutchinson);
    CHECK(ev.evaluations_per_sample() == 4);
    per_sample<double> D;
    ev(T, X, D);
    // A multiple of the identity: zᵀ J z = tr J for every z, up to rounding.
    for (Eigen::Index i = 0; i < 6; ++i) CHECK(D(i) == Approx(-2 * (1 + T(i))).epsilon(1e-9));
    using E = kinflow::divergence_evaluator<decltype(v), double, 2>;
    STATIC_REQUIRE(!E::field_has_divergence);
    CHECK_THROWS_AS(E(v, 2, {.method = divergence_method::exact}), kinflow::invalid_argument);
    CHECK_THROWS_WITH(E(v, 2, {.method = divergence_method::exact}),
                      kinflow_test::contains("divergence_options.method") && kinflow_test::contains("exact"));
  }
  SECTION("an exact divergence in one form serves both") {
    only_divergence f;
    kinflow::divergence_evaluator<only_divergence, double, 2> ev(f, 2, {.method = divergence_method::exact});
    per_sample<double> D;
    ev(sample_times<double>::Constant(6, 0.5), X, D);
    CHECK(f.calls == 1);  // equal times: one call
    CHECK((D.array() == -3.0).all());
    ev(T, X, D);
    CHECK(f.calls == 7);  // one call per column
    for (Eigen::Index i = 0; i < 6; ++i) CHECK(D(i) == -2 * (1 + T(i)));

    only_divergence_at_times g;
    kinflow::divergence_evaluator<only_divergence_at_times, double, 2> eg(g, 2);
    CHECK(eg.is_exact());
    eg(0.25, X, D);
    CHECK((D.array() == -2.5).all());
    eg(T, X, D);
    for (Eigen::Index i = 0; i < 6; ++i) CHECK(D(i) == -2 * (1 + T(i)));
  }
  SECTION("a divergence of the wrong size is a dimension mismatch") {
    wrong_size_divergence f;
    kinflow::divergence_evaluator<wrong_size_divergence, double, 2> ev(f, 2);
    per_sample<double> D;
    CHECK_THROWS_AS(ev(0.5, X, D), kinflow::dimension_mismatch);
    CHECK_THROWS_AS(ev(T, X, D), kinflow::dimension_mismatch);
  }
}

TEST_CASE("hutchinson: invalid options are rejected with messages naming them", "[divergence][errors]") {
  using kinflow_test::contains;
  linear_field<double> f{random_matrix(3, 81)};
  using H = kinflow::hutchinson_divergence<linear_field<double>, double, Eigen::Dynamic>;
  for (const int probes : {0, -1}) {
    CHECK_THROWS_AS(H(f, 3, {.probes = probes}), kinflow::invalid_argument);
    CHECK_THROWS_WITH(H(f, 3, {.probes = probes}), contains("hutchinson_options.probes") && contains("at least 1"));
  }
  // Below 1e-12 the difference quotient would be rounding alone (a subnormal step: 1/δ = inf).
  for (const double step : {-1e-3, 1.0, 2.0, 1e-13, 1e-310, std::numeric_limits<double>::quiet_NaN(),
                            std::numeric_limits<double>::infinity()}) {
    CAPTURE(step);
    CHECK_THROWS_AS(H(f, 3, {.step = step}), kinflow::invalid_argument);
    CHECK_THROWS_WITH(H(f, 3, {.step = step}), contains("hutchinson_options.step") && contains("[1e-12, 1)"));
  }
  CHECK_NOTHROW(H(f, 3, {.step = 1e-12}));
  CHECK_NOTHROW(H(f, 3, {.step = 1e-4}));
  CHECK_THROWS_WITH(H(f, 0), contains("dim (state dimension d)"));
  linear_field<double, 2> f2{random_matrix(2, 84)};
  CHECK_THROWS_AS((kinflow::hutchinson_divergence<linear_field<double, 2>, double, 2>(f2, 3)),
                  kinflow::dimension_mismatch);

  // The variance needs two probes or more.
  H one(f, 3);
  const batch<double> X = kinflow::standard_normal<double>(3, 2, 82);
  per_sample<double> D, var;
  CHECK_THROWS_WITH(one(0.5, X, D, var), contains("hutchinson_options.probes") && contains("at least 2"));
  // Shapes.
  const batch<double> bad = kinflow::standard_normal<double>(2, 2, 83);
  CHECK_THROWS_AS(one(0.5, bad, D), kinflow::dimension_mismatch);
  CHECK_THROWS_AS(one(sample_times<double>::Zero(3), X, D), kinflow::dimension_mismatch);

  // The evaluator validates the Hutchinson options whichever method it uses.
  only_divergence g;
  using E = kinflow::divergence_evaluator<only_divergence, double, 2>;
  CHECK_THROWS_WITH(E(g, 2, {.hutchinson = {.probes = 0}}), contains("hutchinson_options.probes"));
  CHECK_THROWS_AS(E(g, 3), kinflow::dimension_mismatch);
}
