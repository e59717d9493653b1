// Tests of kinflow::evaluate and kinflow::field_evaluator: lifting per-sample fields,
// batched fields, per-column times and dimension checks.
#include "kinflow_catch.hpp"

#include <kinflow/core/errors.hpp>
#include <kinflow/core/field_evaluator.hpp>

#include <Eigen/Core>
#include <limits>

namespace {

// Exact velocity for the Gaussian target N(mu, s^2 I) on the linear path (docs/math.md §3.4, one
// component): v(x, t) = mu + (t s^2 - (1 - t)) / sigma(t)^2 * (x - t mu),
// sigma(t)^2 = (1 - t)^2 + t^2 s^2.
template <class Scalar>
Scalar gaussian_gain(Scalar t, Scalar s) {
  const Scalar sigma2 = (1 - t) * (1 - t) + t * t * s * s;
  return (t * s * s - (1 - t)) / sigma2;
}

template <class Scalar>
Scalar tolerance() {
  return Scalar(100) * std::numeric_limits<Scalar>::epsilon();
}

}  // namespace

TEMPLATE_TEST_CASE("a per-sample field is lifted to the whole batch", "[field_evaluator]", float,
                   double) {
  using Scalar = TestType;
  const Scalar s = Scalar(0.5);
  const kinflow::point<Scalar, 2> mu(Scalar(1), Scalar(-2));
  int calls = 0;
  auto field = [&](Scalar t, const kinflow::point<Scalar, 2>& x) -> kinflow::point<Scalar, 2> {
    ++calls;
    return mu + gaussian_gain(t, s) * (x - t * mu);
  };

  kinflow::batch<Scalar, 2> X(2, 4);
  X << Scalar(0), Scalar(1), Scalar(-3), Scalar(0.25),  //
      Scalar(2), Scalar(-1), Scalar(0.5), Scalar(4);
  const Scalar t = Scalar(0.3);
  kinflow::batch<Scalar, 2> V;
  kinflow::evaluate(field, t, X, V);

  REQUIRE(calls == 4);
  REQUIRE(V.rows() == 2);
  REQUIRE(V.cols() == 4);
  // Same velocity written as one batch expression, independently of the per-column loop.
  const kinflow::batch<Scalar, 2> expected =
      mu.replicate(1, 4) + gaussian_gain(t, s) * (X - t * mu.replicate(1, 4));
  CHECK((V - expected).cwiseAbs().maxCoeff() <= tolerance<Scalar>());
}

TEMPLATE_TEST_CASE("a per-sample field works with a dynamic dimension", "[field_evaluator]", float,
                   double) {
  using Scalar = TestType;
  auto field = [](Scalar t, const kinflow::point<Scalar>& x) -> kinflow::point<Scalar> {
    return -x / (1 - t);  // straight path towards the origin
  };
  const kinflow::batch<Scalar> X = kinflow::batch<Scalar>::Random(5, 3);
  kinflow::batch<Scalar> V;
  kinflow::evaluate(field, Scalar(0.5), X, V);
  REQUIRE(V.rows() == 5);
  REQUIRE(V.cols() == 3);
  CHECK((V + Scalar(2) * X).cwiseAbs().maxCoeff() <= tolerance<Scalar>());
}

TEMPLATE_TEST_CASE("a batched field is called once for the whole batch", "[field_evaluator]",
                   float, double) {
  using Scalar = TestType;
  int calls = 0;
  auto field = [&](Scalar t, const kinflow::batch<Scalar, 2>& X, kinflow::batch<Scalar, 2>& V) {
    ++calls;
    V = (Scalar(1) + t) * X;
  };
  const kinflow::batch<Scalar, 2> X = kinflow::batch<Scalar, 2>::Random(2, 6);
  kinflow::batch<Scalar, 2> V;
  kinflow::evaluate(field, Scalar(0.25), X, V);
  REQUIRE(calls == 1);
  CHECK((V - Scalar(1.25) * X).cwiseAbs().maxCoeff() <= tolerance<Scalar>());
}

TEMPLATE_TEST_CASE("one time per column reaches the field column by column", "[field_evaluator]",
                   float, double) {
  using Scalar = TestType;
  // v(t, x) = t * x makes a wrong time pairing visible.
  auto per_sample = [](Scalar t, const kinflow::point<Scalar, 2>& x) -> kinflow::point<Scalar, 2> {
    return t * x;
  };
  auto batched = [](Scalar t, const kinflow::batch<Scalar, 2>& X, kinflow::batch<Scalar, 2>& V) {
    V = t * X;
  };
  const kinflow::batch<Scalar, 2> X = kinflow::batch<Scalar, 2>::Random(2, 3);
  kinflow::sample_times<Scalar> T(3);
  T << Scalar(0), Scalar(0.5), Scalar(0.75);
  const kinflow::batch<Scalar, 2> expected = X * T.asDiagonal();

  kinflow::batch<Scalar, 2> V(2, 3);
  kinflow::field_evaluator<decltype(per_sample), Scalar, 2> eval_sample(per_sample, 2);
  eval_sample(T, X, V);
  CHECK((V - expected).cwiseAbs().maxCoeff() <= tolerance<Scalar>());

  V.setZero();
  kinflow::field_evaluator<decltype(batched), Scalar, 2> eval_batched(batched, 2);
  eval_batched(T, X, V);
  CHECK((V - expected).cwiseAbs().maxCoeff() <= tolerance<Scalar>());
}

namespace {

// A field offering the optional per-column-time extra and its dimension.
struct timed_field {
  int batched_calls = 0;
  int timed_calls = 0;
  [[nodiscard]] Eigen::Index dim() const { return 2; }
  void operator()(double t, const kinflow::batch<double, 2>& X, kinflow::batch<double, 2>& V) {
    ++batched_calls;
    V = t * X;
  }
  void velocity_at_times(const kinflow::sample_times<double>& T, const kinflow::batch<double, 2>& X,
                         kinflow::batch<double, 2>& V) {
    ++timed_calls;
    V = X * T.asDiagonal();
  }
};

}  // namespace

TEST_CASE("a field with velocity_at_times gets one call for all columns", "[field_evaluator]") {
  timed_field field;
  const kinflow::batch<double, 2> X = kinflow::batch<double, 2>::Random(2, 4);
  kinflow::sample_times<double> T(4);
  T << 0.1, 0.2, 0.3, 0.4;
  kinflow::batch<double, 2> V(2, 4);
  kinflow::field_evaluator<timed_field, double, 2> eval(field, 2);
  eval(T, X, V);
  CHECK(field.timed_calls == 1);
  CHECK(field.batched_calls == 0);
  // Materialised first: under -march=native `V - X * T` may become one fused multiply-add,
  // which would compare against the unrounded product.
  const kinflow::batch<double, 2> expected = X * T.asDiagonal();
  CHECK(V == expected);
}

TEST_CASE("a per-sample field of the wrong dimension throws dimension_mismatch",
          "[field_evaluator]") {
  const kinflow::batch<double> X = kinflow::batch<double>::Random(3, 2);
  kinflow::batch<double> V;
  auto too_long = [](double, const kinflow::point<double>& x) -> kinflow::point<double> {
    return kinflow::point<double>::Zero(x.size() + 1);
  };
  CHECK_THROWS_AS(kinflow::evaluate(too_long, 0.0, X, V), kinflow::dimension_mismatch);

  // Fixed dimension 2 in the state, a dynamic-size vector of size 3 from the field.
  const kinflow::batch<double, 2> X2 = kinflow::batch<double, 2>::Random(2, 2);
  kinflow::batch<double, 2> V2;
  auto three = [](double, const kinflow::point<double, 2>&) -> kinflow::point<double> {
    return kinflow::point<double>::Ones(3);
  };
  CHECK_THROWS_AS(kinflow::evaluate(three, 0.0, X2, V2), kinflow::dimension_mismatch);
  // dimension_mismatch is an invalid_argument, so callers may catch the general kind.
  CHECK_THROWS_AS(kinflow::evaluate(three, 0.0, X2, V2), kinflow::invalid_argument);
}

TEST_CASE("a batched field writing the wrong shape throws dimension_mismatch",
          "[field_evaluator]") {
  const kinflow::batch<double> X = kinflow::batch<double>::Random(3, 4);
  kinflow::batch<double> V;
  auto drops_a_column = [](double, const kinflow::batch<double>& Xin, kinflow::batch<double>& Vout) {
    Vout = Xin.leftCols(Xin.cols() - 1);
  };
  CHECK_THROWS_AS(kinflow::evaluate(drops_a_column, 0.0, X, V), kinflow::dimension_mismatch);
}

TEST_CASE("a field whose dim() disagrees with the state is rejected up front",
          "[field_evaluator]") {
  timed_field field;  // dim() == 2
  CHECK_NOTHROW((kinflow::field_evaluator<timed_field, double, 2>(field, 2)));
  CHECK_THROWS_AS((kinflow::field_evaluator<timed_field, double, 2>(field, 3)),
                  kinflow::dimension_mismatch);
}
