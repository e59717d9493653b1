// Tests of kinflow::average_ranks and kinflow::spearman on known rankings: +1, -1, hand-
// computed cases with and without ties, invariance under monotone maps, and bad input.
#include "kinflow_catch.hpp"

#include <kinflow/metrics/rank_correlation.hpp>

#include <Eigen/Core>
#include <cmath>
#include <limits>
#include <vector>

TEST_CASE("average ranks", "[spearman]") {
  REQUIRE(kinflow::average_ranks(std::vector<double>{10, 20, 20, 30}) ==
          std::vector<double>{1, 2.5, 2.5, 4});
  REQUIRE(kinflow::average_ranks(std::vector<double>{3, 1, 2}) == std::vector<double>{3, 1, 2});
  REQUIRE(kinflow::average_ranks(std::vector<double>{5, 5, 5}) == std::vector<double>{2, 2, 2});
  REQUIRE(kinflow::average_ranks(std::vector<double>{-1, 7, -1, 7, 0}) ==
          std::vector<double>{1.5, 4.5, 1.5, 4.5, 3});
  REQUIRE(kinflow::average_ranks(std::vector<double>{}).empty());
}

TEST_CASE("Spearman: +1, -1 and monotone maps", "[spearman]") {
  std::vector<double> x, y, z;
  for (int i = 0; i < 50; ++i) {
    const double t = std::sin(1.7 * i) * 10;  // unsorted
    x.push_back(t);
    y.push_back(std::exp(t / 3));              // increasing map
    z.push_back(-t * t * t);                   // decreasing map
  }
  REQUIRE(kinflow::spearman(x, y) == Approx(1.0));
  REQUIRE(kinflow::spearman(x, z) == Approx(-1.0));
  const Eigen::VectorXd ex = Eigen::Map<Eigen::VectorXd>(x.data(), 50);
  const Eigen::RowVectorXf ey = Eigen::Map<Eigen::VectorXd>(y.data(), 50).transpose().cast<float>();
  REQUIRE(kinflow::spearman(ex, ey) == Approx(1.0));
  REQUIRE(kinflow::spearman(ex.array(), -ex.array()) == Approx(-1.0));
}

TEST_CASE("Spearman: hand-computed cases", "[spearman]") {
  // No ties: rank differences (1, 1, 1, 1, 0): 1 - 6·4 / (5·24) = 0.8.
  REQUIRE(kinflow::spearman(std::vector<double>{1, 2, 3, 4, 5},
                            std::vector<double>{20, 10, 40, 30, 50}) == Approx(0.8));
  // Ties: ranks x = (1, 2.5, 2.5, 4, 5), y = (2, 1, 3.5, 3.5, 5); deviations from 3:
  // (-2, -.5, -.5, 1, 2) and (-1, -2, .5, .5, 2): Σab = 7.25, Σa² = Σb² = 9.5.
  REQUIRE(kinflow::spearman(std::vector<double>{1, 2, 2, 3, 4},
                            std::vector<double>{2, 1, 3, 3, 5}) == Approx(7.25 / 9.5));
  // Two points.
  REQUIRE(kinflow::spearman(std::vector<double>{0, 1}, std::vector<double>{5, -5}) == Approx(-1.0));
}

TEST_CASE("Spearman: bad input", "[spearman]") {
  const std::vector<double> a{1, 2, 3}, c{4, 4, 4};
  REQUIRE_THROWS_WITH(kinflow::spearman(a, c), kinflow_test::contains("non-constant"));
  REQUIRE_THROWS_WITH(kinflow::spearman(a, std::vector<double>{1, 2}),
                      kinflow_test::contains("y.size() = 2"));
  REQUIRE_THROWS_AS(kinflow::spearman(std::vector<double>{1}, std::vector<double>{1}),
                    kinflow::invalid_argument);
  REQUIRE_THROWS_WITH(kinflow::spearman(a, std::vector<double>{1, std::nan(""), 3}),
                      kinflow_test::contains("values[1]"));
}
