// Tests of kinflow::memorization, bootstrap_fraction and generalization_gap: planted copies
// give F_mem = 1, points equidistant from their neighbours give 0, a planted fraction is
// recovered exactly with a CI that contains it and shrinks like 1/sqrt(B), the d1/d2 < 1/3
// rule at its boundary, duplicated training points, and the gap against brute force.
#include "kinflow_catch.hpp"

#include <kinflow/metrics/memorization.hpp>

#include <Eigen/Core>
#include <cmath>
#include <random>

namespace {

// Training points on the integer grid {0, …, g-1}², shuffled.
Eigen::MatrixXd grid_training(int g, unsigned seed) {
  Eigen::MatrixXd y(2, g * g);
  for (int a = 0; a < g; ++a)
    for (int b = 0; b < g; ++b) y.col(a * g + b) = Eigen::Vector2d(a, b);
  std::mt19937_64 engine(seed);
  for (Eigen::Index j = y.cols() - 1; j > 0; --j) {
    std::uniform_int_distribution<Eigen::Index> pick(0, j);
    y.col(j).swap(y.col(pick(engine)));
  }
  return y;
}

// B samples of which the first `copies` sit within 0.01 of a training grid point (ratio
// < 0.02) and the rest at cell centres (d1 = d2, ratio 1).
Eigen::MatrixXd planted(int g, Eigen::Index b, Eigen::Index copies, unsigned seed) {
  std::mt19937_64 engine(seed);
  std::uniform_int_distribution<int> cell(0, g - 2);
  std::uniform_real_distribution<double> jitter(-0.007, 0.007);
  Eigen::MatrixXd x(2, b);
  for (Eigen::Index j = 0; j < b; ++j) {
    const double a = cell(engine), c = cell(engine);
    if (j < copies)
      x.col(j) = Eigen::Vector2d(a + jitter(engine), c + jitter(engine));
    else
      x.col(j) = Eigen::Vector2d(a + 0.5, c + 0.5);
  }
  return x;
}

}  // namespace

TEST_CASE("planted copies: F_mem = 1 with CI [1, 1]; cell centres: F_mem = 0", "[memorization]") {
  const Eigen::MatrixXd y = grid_training(20, 1);
  const auto all = kinflow::memorization(planted(20, 400, 400, 2), y);
  REQUIRE(all.fraction == 1.0);
  REQUIRE(all.ci_low == 1.0);
  REQUIRE(all.ci_high == 1.0);
  REQUIRE(all.memorized.all());
  REQUIRE(all.ratio.maxCoeff() < 0.02);
  const auto none = kinflow::memorization(planted(20, 400, 0, 3), y);
  REQUIRE(none.fraction == 0.0);
  REQUIRE(none.ci_low == 0.0);
  REQUIRE(none.ci_high == 0.0);
  for (Eigen::Index i = 0; i < 400; ++i) {
    REQUIRE(none.d1(i) == Approx(std::sqrt(0.5)));
    REQUIRE(none.d2(i) == Approx(std::sqrt(0.5)));
  }
}

TEST_CASE("per-sample outputs match brute force", "[memorization]") {
  std::mt19937_64 engine(4);
  std::normal_distribution<double> normal;
  Eigen::MatrixXd y(3, 300), x(3, 100);
  for (auto* m : {&y, &x})
    for (Eigen::Index j = 0; j < m->cols(); ++j)
      for (Eigen::Index i = 0; i < 3; ++i) (*m)(i, j) = normal(engine);
  const auto r = kinflow::memorization(x, y);
  int copies = 0;
  for (Eigen::Index b = 0; b < x.cols(); ++b) {
    double d1 = 1e300, d2 = 1e300;
    Eigen::Index i1 = -1;
    for (Eigen::Index j = 0; j < y.cols(); ++j) {
      const double d = (x.col(b) - y.col(j)).norm();
      if (d < d1) {
        d2 = d1;
        d1 = d;
        i1 = j;
      } else if (d < d2) {
        d2 = d;
      }
    }
    REQUIRE(r.d1(b) == Approx(d1));
    REQUIRE(r.d2(b) == Approx(d2));
    REQUIRE(r.nearest(b) == i1);
    REQUIRE(r.ratio(b) == Approx(d1 / d2));
    REQUIRE(r.memorized(b) == (d1 / d2 < 1.0 / 3.0));
    copies += d1 / d2 < 1.0 / 3.0;
  }
  REQUIRE(r.fraction == copies / 100.0);
}

TEST_CASE("a planted fraction: exact estimate, CI contains it and shrinks like 1/sqrt(B)",
          "[memorization]") {
  const Eigen::MatrixXd y = grid_training(30, 5);
  const kinflow::nearest_neighbor_index<double> index(y);
  double previous_width = 0;
  for (Eigen::Index b : {100, 400, 1600}) {
    INFO("B = " << b);
    const auto r = kinflow::memorization(planted(30, b, 3 * b / 10, 6), index);
    REQUIRE(r.fraction == Approx(0.3));
    REQUIRE(r.ci_low <= r.fraction);
    REQUIRE(r.ci_high >= r.fraction);
    REQUIRE(r.ci_low < r.ci_high);
    // The percentile CI of a proportion is close to the normal one, 2·1.96·sqrt(p(1-p)/B).
    const double width = r.ci_high - r.ci_low, normal = 2 * 1.96 * std::sqrt(0.21 / b);
    REQUIRE(width == Approx(normal).epsilon(0.2));
    if (previous_width > 0) REQUIRE(previous_width / width == Approx(2.0).epsilon(0.25));
    previous_width = width;
  }
  // Same seed, same CI; the CI level is honoured.
  const auto x = planted(30, 400, 120, 7);
  kinflow::memorization_options o;
  const auto a = kinflow::memorization(x, index, o), b = kinflow::memorization(x, index, o);
  REQUIRE(a.ci_low == b.ci_low);
  REQUIRE(a.ci_high == b.ci_high);
  o.confidence = 0.5;
  const auto narrow = kinflow::memorization(x, index, o);
  REQUIRE(narrow.ci_high - narrow.ci_low < 0.5 * (a.ci_high - a.ci_low));
  o.bootstrap_resamples = 0;
  const auto no_ci = kinflow::memorization(x, index, o);
  REQUIRE(no_ci.ci_low == no_ci.fraction);
  REQUIRE(no_ci.ci_high == no_ci.fraction);
}

TEST_CASE("the d1/d2 < 1/3 rule at its boundary; duplicated training points", "[memorization]") {
  Eigen::MatrixXd y(1, 2);
  y << 0.0, 1.0;
  Eigen::MatrixXd x(1, 4);
  x << 0.2, 0.25, 0.3, 0.0;  // ratios 1/4, 1/3 (not below), 3/7, 0
  const auto r = kinflow::memorization(x, y);
  REQUIRE(r.memorized(0));
  REQUIRE_FALSE(r.memorized(1));
  REQUIRE_FALSE(r.memorized(2));
  REQUIRE(r.memorized(3));
  REQUIRE(r.fraction == 0.5);
  kinflow::memorization_options o;
  o.ratio_threshold = 0.5;
  REQUIRE(kinflow::memorization(x, y, o).fraction == 1.0);
  // A sample on a duplicated training point: d1 = d2 = 0, a copy.
  Eigen::MatrixXd dup(1, 3);
  dup << 0.0, 0.0, 5.0;
  const auto rd = kinflow::memorization(Eigen::MatrixXd::Zero(1, 1), dup);
  REQUIRE(rd.d2(0) == 0.0);
  REQUIRE(rd.ratio(0) == 0.0);
  REQUIRE(rd.fraction == 1.0);
}

TEST_CASE("bootstrap_fraction and bad arguments", "[memorization]") {
  Eigen::Array<bool, Eigen::Dynamic, 1> flags(10);
  flags << true, false, false, true, false, false, false, false, true, false;
  const auto ci = kinflow::bootstrap_fraction(flags, 2000, 0.9, 3);
  REQUIRE(ci.estimate == Approx(0.3));
  REQUIRE(ci.low >= 0.0);
  REQUIRE(ci.high <= 1.0);
  REQUIRE(ci.low < 0.3);
  REQUIRE(ci.high > 0.3);
  REQUIRE_THROWS_AS(kinflow::bootstrap_fraction(Eigen::Array<bool, Eigen::Dynamic, 1>(0)),
                    kinflow::invalid_argument);
  REQUIRE_THROWS_WITH(kinflow::bootstrap_fraction(flags, 10, 1.0),
                      kinflow_test::contains("confidence = 1"));
  const Eigen::MatrixXd one = Eigen::MatrixXd::Zero(2, 1);
  REQUIRE_THROWS_WITH(kinflow::memorization(one, one), kinflow_test::contains("training.size()"));
  kinflow::memorization_options o;
  o.ratio_threshold = 0;
  REQUIRE_THROWS_AS(kinflow::memorization(one, Eigen::MatrixXd::Zero(2, 3), o),
                    kinflow::invalid_argument);
  REQUIRE_THROWS_AS(kinflow::memorization(Eigen::MatrixXd::Zero(3, 1), Eigen::MatrixXd::Zero(2, 3)),
                    kinflow::dimension_mismatch);
}

TEST_CASE("generalization gap: copies of the training set vs fresh samples", "[memorization]") {
  std::mt19937_64 engine(9);
  std::normal_distribution<double> normal;
  auto draw = [&](Eigen::Index n) {
    Eigen::MatrixXd m(2, n);
    for (Eigen::Index j = 0; j < n; ++j) m.col(j) = Eigen::Vector2d(normal(engine), normal(engine));
    return m;
  };
  const Eigen::MatrixXd train = draw(2000), held = draw(2000);
  // Copies: distance 0 to training, the brute-force nearest distance to held-out data.
  const Eigen::MatrixXd copies = train.leftCols(300);
  const auto g = kinflow::generalization_gap(copies, train, held);
  REQUIRE(g.mean_distance_training == 0.0);
  double want = 0;
  for (Eigen::Index b = 0; b < copies.cols(); ++b)
    want += (held.colwise() - copies.col(b)).colwise().norm().minCoeff();
  want /= copies.cols();
  REQUIRE(g.mean_distance_held_out == Approx(want));
  REQUIRE(g.gap == Approx(want));
  // Fresh samples of the same distribution: the gap is small against the spacing.
  const auto f = kinflow::generalization_gap(draw(3000), train, held);
  REQUIRE(std::abs(f.gap) < 0.1 * f.mean_distance_training);
  REQUIRE(f.distance_training.size() == 3000);
}

TEST_CASE("is_memorized and nearest_neighbor_ratio: the rule memorization() applies",
          "[memorization]") {
  // The ratio: d1/d2, and 0 on a training point (also a duplicated one, d1 = d2 = 0).
  REQUIRE(kinflow::nearest_neighbor_ratio(1.0, 4.0) == 0.25);
  REQUIRE(kinflow::nearest_neighbor_ratio(2.0, 2.0) == 1.0);
  REQUIRE(kinflow::nearest_neighbor_ratio(0.0, 5.0) == 0.0);
  REQUIRE(kinflow::nearest_neighbor_ratio(0.0, 0.0) == 0.0);
  // The rule: strictly below the threshold, 1/3 by default; NaN is never a copy.
  REQUIRE(kinflow::is_memorized(0.25));
  REQUIRE(kinflow::is_memorized(0.0));
  REQUIRE(kinflow::is_memorized(0.333));
  REQUIRE_FALSE(kinflow::is_memorized(1.0 / 3.0));
  REQUIRE_FALSE(kinflow::is_memorized(0.334));
  REQUIRE_FALSE(kinflow::is_memorized(std::nan("")));
  kinflow::memorization_options half;
  half.ratio_threshold = 0.5;
  REQUIRE(kinflow::is_memorized(0.4, half));
  REQUIRE_FALSE(kinflow::is_memorized(0.5, half));

  // memorization() flags exactly the samples the rule flags, with both thresholds, and
  // its flags agree with the rule written independently, 3·d1 < d2 (or d1 = 0).
  std::mt19937_64 engine(12);
  std::uniform_real_distribution<double> u(0, 1);
  Eigen::MatrixXd y(2, 40), x(2, 400);
  for (auto* m : {&y, &x})
    for (Eigen::Index j = 0; j < m->cols(); ++j) m->col(j) = Eigen::Vector2d(u(engine), u(engine));
  x.leftCols(40) = y + 1e-3 * x.rightCols(40);  // 40 near-copies among the samples
  for (const auto& o : {kinflow::memorization_options{}, half}) {
    const auto r = kinflow::memorization(x, y, o);
    Eigen::Index copies = 0;
    for (Eigen::Index b = 0; b < x.cols(); ++b) {
      REQUIRE(r.ratio(b) == kinflow::nearest_neighbor_ratio(r.d1(b), r.d2(b)));
      REQUIRE(r.memorized(b) == kinflow::is_memorized(r.ratio(b), o));
      if (o.ratio_threshold == 1.0 / 3.0)
        REQUIRE(r.memorized(b) == (3 * r.d1(b) < r.d2(b) || r.d1(b) == 0));
      copies += r.memorized(b) ? 1 : 0;
    }
    REQUIRE(copies >= 40);
    REQUIRE(r.fraction == static_cast<double>(copies) / 400.0);
  }
}
