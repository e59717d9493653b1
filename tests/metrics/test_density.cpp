// Tests of kinflow::knn_log_density: the unit-ball volume, the formula against brute force
// in 1, 2 and 3 dimensions, leave-one-out queries, and the large-N limit on known densities
// (uniform square, standard Gaussian) within stated tolerances.
#include "kinflow_catch.hpp"

#include <kinflow/metrics/density.hpp>

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <numbers>
#include <random>
#include <vector>

namespace {

// Distance from q to its k-th nearest column of ref (skipping column `skip`), brute force.
double kth_distance(const Eigen::MatrixXd& ref, const Eigen::VectorXd& q, int k,
                    Eigen::Index skip = -1) {
  std::vector<double> d;
  for (Eigen::Index j = 0; j < ref.cols(); ++j)
    if (j != skip) d.push_back((ref.col(j) - q).norm());
  std::sort(d.begin(), d.end());
  return d[static_cast<std::size_t>(k - 1)];
}

#if defined(__SANITIZE_ADDRESS__)
constexpr Eigen::Index big = 40000;
#else
constexpr Eigen::Index big = 200000;
#endif

}  // namespace

TEST_CASE("unit-ball volumes", "[density]") {
  REQUIRE(kinflow::log_unit_ball_volume(1) == Approx(std::log(2.0)));
  REQUIRE(kinflow::log_unit_ball_volume(2) == Approx(std::log(std::numbers::pi)));
  REQUIRE(kinflow::log_unit_ball_volume(3) == Approx(std::log(4 * std::numbers::pi / 3)));
  REQUIRE(kinflow::log_unit_ball_volume(4) ==
          Approx(std::log(std::numbers::pi * std::numbers::pi / 2)));
  REQUIRE_THROWS_AS(kinflow::log_unit_ball_volume(0), kinflow::invalid_argument);
}

TEST_CASE("the formula against brute force, with and without the query's own point",
          "[density]") {
  std::mt19937_64 engine(1);
  std::normal_distribution<double> normal;
  const double vol[] = {2.0, std::numbers::pi, 4 * std::numbers::pi / 3};
  for (int d = 1; d <= 3; ++d) {
    Eigen::MatrixXd ref(d, 300), q(d, 40);
    for (auto* m : {&ref, &q})
      for (Eigen::Index j = 0; j < m->cols(); ++j)
        for (Eigen::Index i = 0; i < d; ++i) (*m)(i, j) = normal(engine);
    for (int k : {1, 5}) {
      kinflow::knn_density_options o;
      o.k = k;
      const auto lp = kinflow::knn_log_density(q, ref, o);
      for (Eigen::Index c = 0; c < q.cols(); ++c) {
        const double r = kth_distance(ref, q.col(c), k);
        REQUIRE(lp(c) == Approx(std::log(k / (300.0 * vol[d - 1] * std::pow(r, d)))));
      }
      o.exclude_self = true;
      const auto loo = kinflow::knn_log_density(ref, ref, o);
      for (Eigen::Index c = 0; c < ref.cols(); c += 7) {
        const double r = kth_distance(ref, ref.col(c), k, c);
        REQUIRE(loo(c) == Approx(std::log(k / (299.0 * vol[d - 1] * std::pow(r, d)))));
      }
    }
  }
}

TEST_CASE("large N: uniform square and standard Gaussian", "[density]") {
  std::mt19937_64 engine(2);
  std::uniform_real_distribution<double> uni(0.0, 1.0);
  std::normal_distribution<double> normal;
  const int k = 50;
  kinflow::knn_density_options o;
  o.k = k;
  // Uniform on [0, 1]²: log p = 0. Queries at least 0.1 from the edges (r_k ≈ 0.01-0.02).
  Eigen::MatrixXd ref(2, big);
  for (Eigen::Index j = 0; j < big; ++j) ref.col(j) = Eigen::Vector2d(uni(engine), uni(engine));
  Eigen::MatrixXd q(2, 400);
  for (Eigen::Index j = 0; j < q.cols(); ++j)
    q.col(j) = Eigen::Vector2d(0.1 + 0.8 * uni(engine), 0.1 + 0.8 * uni(engine));
  const kinflow::nearest_neighbor_index<double, 2> index{kinflow::batch<double, 2>(ref)};
  const auto lp = kinflow::knn_log_density(q, index, o);
  // Each value: log(k / Gamma(k, 1)) has mean log k - ψ(k) ≈ 0.010 and sd ≈ 1/sqrt(k) = 0.14:
  // every query within 5 sd, the mean of 400 (nearly independent) within 0.04.
  REQUIRE(lp.cwiseAbs().maxCoeff() < 0.75);
  REQUIRE(std::abs(lp.mean()) < 0.04);

  // Standard Gaussian in 2D: log p(x) = -log 2π - |x|²/2. Queries spread over the disc of
  // radius 1.5 (densities e^0 … e^-1.1 times the peak): the error log p̂ - log p has the same
  // Gamma(k, 1) law at every query, so the same tolerances hold; the curvature of log p over
  // the kNN ball (r_k² < 2e-3 here) adds a negligible bias.
  for (Eigen::Index j = 0; j < big; ++j) ref.col(j) = Eigen::Vector2d(normal(engine), normal(engine));
  const kinflow::nearest_neighbor_index<double, 2> gauss{kinflow::batch<double, 2>(ref)};
  Eigen::MatrixXd p(2, 400);
  Eigen::VectorXd want(400);
  for (Eigen::Index j = 0; j < p.cols(); ++j) {
    const double radius = 1.5 * std::sqrt(uni(engine)), a = 2 * std::numbers::pi * uni(engine);
    p.col(j) = radius * Eigen::Vector2d(std::cos(a), std::sin(a));
    want(j) = -std::log(2 * std::numbers::pi) - radius * radius / 2;
  }
  const Eigen::VectorXd err = kinflow::knn_log_density(p, gauss, o) - want;
  REQUIRE(err.cwiseAbs().maxCoeff() < 0.75);
  REQUIRE(std::abs(err.mean()) < 0.04);
}

TEST_CASE("bad arguments", "[density]") {
  const Eigen::MatrixXd ref = Eigen::MatrixXd::Random(2, 10);
  kinflow::knn_density_options o;
  o.k = 11;
  REQUIRE_THROWS_WITH(kinflow::knn_log_density(ref, ref, o), kinflow_test::contains("k = 11"));
  o.k = 10;
  o.exclude_self = true;
  REQUIRE_THROWS_AS(kinflow::knn_log_density(ref, ref, o), kinflow::invalid_argument);
  o.k = 3;
  REQUIRE_THROWS_AS(kinflow::knn_log_density(ref.leftCols(4), ref, o), kinflow::invalid_argument);
  o.k = 0;
  o.exclude_self = false;
  REQUIRE_THROWS_AS(kinflow::knn_log_density(ref, ref, o), kinflow::invalid_argument);
}
