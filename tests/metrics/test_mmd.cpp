// Tests of kinflow::mmd2: against the unbiased estimator written out plainly here, the
// median heuristic against a brute-force median, MMD² ≈ 0 on average for two samples of one
// distribution and clearly > 0 for different ones, and bad arguments.
#include "kinflow_catch.hpp"

#include <kinflow/metrics/mmd.hpp>

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace {

Eigen::MatrixXd gaussian(Eigen::Index d, Eigen::Index n, std::mt19937_64& engine,
                         double shift = 0, double scale = 1) {
  std::normal_distribution<double> normal;
  Eigen::MatrixXd x(d, n);
  for (Eigen::Index j = 0; j < n; ++j)
    for (Eigen::Index i = 0; i < d; ++i) x(i, j) = shift + scale * normal(engine);
  return x;
}

double kernel(const Eigen::VectorXd& a, const Eigen::VectorXd& b, const std::vector<double>& s) {
  double k = 0;
  for (double sigma : s) k += std::exp(-(a - b).squaredNorm() / (2 * sigma * sigma));
  return k;
}

// Gretton et al. (2012), eq. 3, term by term.
double plain_mmd2(const Eigen::MatrixXd& x, const Eigen::MatrixXd& y, const std::vector<double>& s) {
  const double n = static_cast<double>(x.cols()), m = static_cast<double>(y.cols());
  double kxx = 0, kyy = 0, kxy = 0;
  for (Eigen::Index i = 0; i < x.cols(); ++i)
    for (Eigen::Index j = 0; j < x.cols(); ++j)
      if (i != j) kxx += kernel(x.col(i), x.col(j), s);
  for (Eigen::Index i = 0; i < y.cols(); ++i)
    for (Eigen::Index j = 0; j < y.cols(); ++j)
      if (i != j) kyy += kernel(y.col(i), y.col(j), s);
  for (Eigen::Index i = 0; i < x.cols(); ++i)
    for (Eigen::Index j = 0; j < y.cols(); ++j) kxy += kernel(x.col(i), y.col(j), s);
  return kxx / (n * (n - 1)) + kyy / (m * (m - 1)) - 2 * kxy / (n * m);
}

}  // namespace

TEST_CASE("MMD² against the plain unbiased formula, given and median bandwidths", "[mmd]") {
  std::mt19937_64 engine(1);
  const Eigen::MatrixXd x = gaussian(3, 40, engine), y = gaussian(3, 55, engine, 0.3, 1.2);
  kinflow::mmd_options o;
  o.bandwidths = {0.5, 2.0};
  const auto r = kinflow::mmd2(x, y, o);
  REQUIRE(r.bandwidths == o.bandwidths);
  REQUIRE(r.median_distance == 0.0);
  REQUIRE(r.mmd2 == Approx(plain_mmd2(x, y, o.bandwidths)).epsilon(1e-10));

  // Median heuristic: all 95 points are pooled; the median of the 4465 pair distances.
  std::vector<double> d;
  Eigen::MatrixXd pool(3, 95);
  pool << x, y;
  for (Eigen::Index j = 0; j < 95; ++j)
    for (Eigen::Index i = 0; i < j; ++i) d.push_back((pool.col(i) - pool.col(j)).norm());
  std::sort(d.begin(), d.end());
  const double median = d[d.size() / 2];  // odd count
  const auto h = kinflow::mmd2(x, y);
  REQUIRE(h.median_distance == Approx(median).epsilon(1e-14));
  REQUIRE(h.bandwidths.size() == 5);
  REQUIRE(h.bandwidths[0] == Approx(0.25 * median));
  REQUIRE(h.bandwidths[4] == Approx(4 * median));
  REQUIRE(h.mmd2 == Approx(plain_mmd2(x, y, h.bandwidths)).epsilon(1e-10));
  // float input gives the same value up to float rounding of the points.
  const auto f = kinflow::mmd2(x.cast<float>(), y.cast<float>(), o);
  REQUIRE(f.mmd2 == Approx(r.mmd2).epsilon(1e-4));
}

TEST_CASE("median heuristic on large sets uses an even subsample", "[mmd]") {
  std::mt19937_64 engine(2);
  const Eigen::MatrixXd x = gaussian(2, 3000, engine), y = gaussian(2, 3000, engine);
  // The median distance between two independent N(0, I) points in 2D is 2·sqrt(ln 2):
  // |a - b|² / 2 is chi-square with 2 degrees of freedom, whose median is 2 ln 2.
  const double med = kinflow::median_pairwise_distance(x, y, 1000);
  REQUIRE(med == Approx(2 * std::sqrt(std::log(2.0))).epsilon(0.03));
}

TEST_CASE("same distribution: MMD² averages to 0; different: clearly positive", "[mmd]") {
  std::mt19937_64 engine(3);
  const int reps = 40;
  const Eigen::Index n = 120;
  std::vector<double> same, diff;
  kinflow::mmd_options o;
  o.bandwidths = {0.5, 1.0, 2.0};
  for (int r = 0; r < reps; ++r) {
    const Eigen::MatrixXd x = gaussian(2, n, engine);
    same.push_back(kinflow::mmd2(x, gaussian(2, n, engine), o).mmd2);
    diff.push_back(kinflow::mmd2(x, gaussian(2, n, engine, 0.7), o).mmd2);
  }
  auto mean = [](const std::vector<double>& v) {
    double s = 0;
    for (double e : v) s += e;
    return s / static_cast<double>(v.size());
  };
  const double m_same = mean(same);
  double var = 0;
  for (double e : same) var += (e - m_same) * (e - m_same);
  const double sd = std::sqrt(var / (reps - 1));
  // Unbiased: the mean over repetitions is within 4 standard errors of 0 (and some values
  // are negative); the shifted samples lie far above the spread of the null values.
  REQUIRE(std::abs(m_same) < 4 * sd / std::sqrt(double(reps)));
  REQUIRE(*std::min_element(same.begin(), same.end()) < 0.0);
  REQUIRE(*std::min_element(diff.begin(), diff.end()) > 5 * sd);
  REQUIRE(mean(diff) > 10 * sd);
}

TEST_CASE("bad arguments", "[mmd]") {
  std::mt19937_64 engine(4);
  const Eigen::MatrixXd x = gaussian(2, 10, engine);
  REQUIRE_THROWS_AS(kinflow::mmd2(x, gaussian(2, 1, engine)), kinflow::invalid_argument);
  REQUIRE_THROWS_AS(kinflow::mmd2(x, gaussian(3, 10, engine)), kinflow::dimension_mismatch);
  kinflow::mmd_options o;
  o.bandwidths = {1.0, -2.0};
  REQUIRE_THROWS_WITH(kinflow::mmd2(x, x, o), kinflow_test::contains("bandwidths[] = -2"));
  o.bandwidths.clear();
  o.bandwidth_factors.clear();
  REQUIRE_THROWS_AS(kinflow::mmd2(x, x, o), kinflow::invalid_argument);
  const Eigen::MatrixXd same = Eigen::MatrixXd::Ones(2, 5);
  REQUIRE_THROWS_WITH(kinflow::mmd2(same, same), kinflow_test::contains("give mmd_options::bandwidths"));
}
