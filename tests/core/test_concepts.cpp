// Which callables are velocity fields (docs/guide.md, "Fields"), checked at compile time, and the
// optional extras detected without being required.

#include "kinflow/core/concepts.hpp"
#include "kinflow/core/field_evaluator.hpp"
#include "kinflow_catch.hpp"

using kinflow::batch;
using kinflow::point;

namespace {
struct sample_functor {
  point<double, 2> operator()(double t, const point<double, 2>& x) const { return t * x; }
};
struct batched_functor {
  void operator()(double t, const batch<double, 2>& x, batch<double, 2>& v) const { v = t * x; }
};
struct eigen_ref_functor {  // Eigen::Ref parameters bind to kinflow's batches without copies
  void operator()(double t, Eigen::Ref<const Eigen::Matrix<double, 2, Eigen::Dynamic>> x,
                  Eigen::Ref<Eigen::Matrix<double, 2, Eigen::Dynamic>> v) const {
    v = t * x;
  }
};
struct timed_functor : batched_functor {
  void velocity_at_times(const kinflow::sample_times<double>& T, const batch<double, 2>& x,
                         batch<double, 2>& v) const {
    v = x * T.asDiagonal();
  }
  [[nodiscard]] Eigen::Index dim() const { return 2; }
};
}  // namespace

// Probed only through decltype: types of lambdas, declared without defining variables.
namespace concept_probes {
using generic_sample = decltype([](auto t, const auto& x) { return (t * x).eval(); });
using generic_batched = decltype([](auto t, const auto& x, auto& v) { v = t * x; });
using returns_scalar = decltype([](double t, const point<double, 2>& x) { return t * x.sum(); });
using missing_time = decltype([](const point<double, 2>& x) { return x; });
}  // namespace concept_probes

TEST_CASE("velocity-field concepts accept both forms and reject the rest", "[concepts]") {
  STATIC_REQUIRE(kinflow::sample_velocity_field<sample_functor, double, 2>);
  STATIC_REQUIRE(kinflow::velocity_field<sample_functor, double, 2>);
  STATIC_REQUIRE(kinflow::batched_velocity_field<batched_functor, double, 2>);
  STATIC_REQUIRE(kinflow::batched_velocity_field<eigen_ref_functor, double, 2>);
  STATIC_REQUIRE(kinflow::velocity_field<concept_probes::generic_sample, float, 3>);
  STATIC_REQUIRE(kinflow::velocity_field<concept_probes::generic_sample, double, Eigen::Dynamic>);
  STATIC_REQUIRE(kinflow::batched_velocity_field<concept_probes::generic_batched, double, Eigen::Dynamic>);
  STATIC_REQUIRE_FALSE(kinflow::velocity_field<concept_probes::returns_scalar, double, 2>);
  STATIC_REQUIRE_FALSE(kinflow::velocity_field<concept_probes::missing_time, double, 2>);
  STATIC_REQUIRE_FALSE(kinflow::velocity_field<int, double, 2>);
  // Extras are detected by name only, never by probing call operators.
  STATIC_REQUIRE(kinflow::per_column_time_field<timed_functor, double, 2>);
  STATIC_REQUIRE_FALSE(kinflow::per_column_time_field<concept_probes::generic_batched, double, 2>);
  STATIC_REQUIRE(kinflow::field_with_dim<timed_functor>);
  STATIC_REQUIRE_FALSE(kinflow::field_with_dim<batched_functor>);
}

TEST_CASE("the evaluator agrees across forms, and per-column times reach each column", "[concepts]") {
  batch<double, 2> X(2, 3), V1, V2, V3(2, 3), V4(2, 3);
  X << 1, 2, 3, 4, 5, 6;
  kinflow::evaluate(sample_functor{}, 0.5, X, V1);
  kinflow::evaluate(eigen_ref_functor{}, 0.5, X, V2);
  CHECK(V1 == 0.5 * X);
  CHECK(V2 == 0.5 * X);
  // Per-column times: the timed member when present, column-by-column calls otherwise.
  kinflow::sample_times<double> T(3);
  T << 0.1, 0.2, 0.3;
  timed_functor timed;
  kinflow::field_evaluator<timed_functor, double, 2> e_timed(timed, 2);
  e_timed(T, X, V3);
  batched_functor plain;
  kinflow::field_evaluator<batched_functor, double, 2> e_plain(plain, 2);
  e_plain(T, X, V4);
  for (Eigen::Index i = 0; i < 3; ++i) {
    CHECK(V3.col(i) == T(i) * X.col(i));
    CHECK(V4.col(i) == T(i) * X.col(i));
  }
}
