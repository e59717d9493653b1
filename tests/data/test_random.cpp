// Tests of kinflow::random_stream and kinflow::standard_normal: the uniform transform is
// the documented function of the engine's words (checked against a separate std::mt19937_64),
// moments of uniform, index and normal draws, and the prefix property of the noise batch.
#include "kinflow_catch.hpp"

#include <kinflow/data/random.hpp>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

TEST_CASE("uniform() is (w >> 11) * 2^-53 of the mt19937_64 words", "[random]") {
  std::mt19937_64 engine(12345);
  kinflow::random_stream rng(12345);
  for (int i = 0; i < 1000; ++i) {
    const double want = std::ldexp(static_cast<double>(engine() >> 11), -53);
    REQUIRE(rng.uniform() == want);
  }
  // The engine is the standard's: its 10000th output from the default seed is fixed.
  kinflow::random_stream def(5489u);
  std::uint64_t w = 0;
  for (int i = 0; i < 10000; ++i) w = def.bits();
  REQUIRE(w == 9981545732273789042ull);
}

TEST_CASE("uniform draws: range and moments", "[random]") {
  kinflow::random_stream rng(7);
  const int n = 200000;
  double s1 = 0, s2 = 0;
  for (int i = 0; i < n; ++i) {
    const double u = rng.uniform();
    REQUIRE(u >= 0.0);
    REQUIRE(u < 1.0);
    const double v = rng.uniform_open();
    REQUIRE(v > 0.0);
    REQUIRE(v < 1.0);
    s1 += u;
    s2 += u * u;
  }
  const double mean = s1 / n, var = s2 / n - mean * mean;
  // Standard errors: sqrt(1/12/n) = 6.5e-4 for the mean; 5 sigma.
  REQUIRE(std::abs(mean - 0.5) < 3.3e-3);
  REQUIRE(std::abs(var - 1.0 / 12.0) < 2e-3);
}

TEST_CASE("index(n) is uniform on {0, ..., n-1}", "[random]") {
  kinflow::random_stream rng(3);
  const int k = 7, n = 70000;
  std::vector<int> counts(k, 0);
  for (int i = 0; i < n; ++i) {
    const auto v = rng.index(k);
    REQUIRE(v < static_cast<std::uint64_t>(k));
    ++counts[v];
  }
  // Chi-square with 6 degrees of freedom: P(X > 22.46) = 0.001.
  double chi2 = 0;
  for (int c : counts) chi2 += (c - n / k) * (c - n / k) / double(n / k);
  REQUIRE(chi2 < 22.46);
  REQUIRE(rng.index(1) == 0);
  REQUIRE_THROWS_AS(rng.index(0), kinflow::invalid_argument);
}

TEST_CASE("normal(): moments of N(0, 1) and its tail", "[random]") {
  kinflow::random_stream rng(11);
  const int n = 200000;
  double s1 = 0, s2 = 0, s3 = 0, s4 = 0;
  int beyond2 = 0;
  for (int i = 0; i < n; ++i) {
    const double z = rng.normal();
    s1 += z;
    s2 += z * z;
    s3 += z * z * z;
    s4 += z * z * z * z;
    if (std::abs(z) > 2) ++beyond2;
  }
  // Standard errors for n = 2e5: mean 2.2e-3, E z^2 3.2e-3, E z^3 8.7e-3, E z^4 2.2e-2.
  REQUIRE(std::abs(s1 / n) < 0.012);
  REQUIRE(std::abs(s2 / n - 1) < 0.016);
  REQUIRE(std::abs(s3 / n) < 0.045);
  REQUIRE(std::abs(s4 / n - 3) < 0.11);
  // P(|Z| > 2) = 0.0455003.
  REQUIRE(std::abs(beyond2 / double(n) - 0.0455003) < 0.0025);
}

TEST_CASE("standard_normal: shape, seeds, prefix property, float", "[random]") {
  const auto x = kinflow::standard_normal(3, 500, 1);
  REQUIRE(x.rows() == 3);
  REQUIRE(x.cols() == 500);
  const auto y = kinflow::standard_normal(3, 500, 1);
  REQUIRE(x == y);
  const auto z = kinflow::standard_normal(3, 500, 2);
  REQUIRE((x - z).cwiseAbs().minCoeff() > 0.0);
  const auto prefix = kinflow::standard_normal(3, 20, 1);
  REQUIRE(prefix == x.leftCols(20));
  const auto f = kinflow::standard_normal<float, 2>(2, 10, 5);
  const auto d = kinflow::standard_normal<double, 2>(2, 10, 5);
  REQUIRE(f == d.cast<float>());
  REQUIRE(kinflow::standard_normal(4, 0, 1).cols() == 0);
  REQUIRE_THROWS_AS(kinflow::standard_normal(0, 5, 1), kinflow::invalid_argument);
  REQUIRE_THROWS_AS(kinflow::standard_normal(2, -1, 1), kinflow::invalid_argument);
  REQUIRE_THROWS_AS((kinflow::standard_normal<double, 2>(3, 5, 1)), kinflow::dimension_mismatch);
}
