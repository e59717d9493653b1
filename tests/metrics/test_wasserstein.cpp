// Tests of the Wasserstein-2 distances: the assignment solver and exact W2 against brute
// force over all permutations (n <= 7), shifted and permuted copies with known optimal
// matchings, the 1D W2 against a direct integration of the quantile functions, and sliced
// W2 of shifted sets (exactly the shift in 1D, |s|/sqrt(d) in expectation).
#include "kinflow_catch.hpp"

#include <kinflow/data/random.hpp>
#include <kinflow/metrics/wasserstein.hpp>

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <set>
#include <vector>

namespace {

Eigen::MatrixXd random_points(Eigen::Index d, Eigen::Index n, unsigned seed) {
  std::mt19937_64 engine(seed);
  std::normal_distribution<double> normal;
  Eigen::MatrixXd x(d, n);
  for (Eigen::Index j = 0; j < n; ++j)
    for (Eigen::Index i = 0; i < d; ++i) x(i, j) = normal(engine);
  return x;
}

// min over all permutations of sum_i C(i, sigma(i)).
double brute_assignment(const Eigen::MatrixXd& c) {
  std::vector<Eigen::Index> p(static_cast<std::size_t>(c.rows()));
  std::iota(p.begin(), p.end(), Eigen::Index{0});
  double best = 1e300;
  do {
    double s = 0;
    for (Eigen::Index i = 0; i < c.rows(); ++i) s += c(i, p[static_cast<std::size_t>(i)]);
    best = std::min(best, s);
  } while (std::next_permutation(p.begin(), p.end()));
  return best;
}

// Integral over u in (0, 1) of (Fa^-1(u) - Fb^-1(u))^2, the quantile functions being step
// functions with breaks at i/n and j/m: exact by summing over the merged breakpoints.
double quantile_integral(std::vector<double> a, std::vector<double> b) {
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  std::vector<double> breaks{0.0, 1.0};
  for (std::size_t i = 1; i < a.size(); ++i) breaks.push_back(double(i) / a.size());
  for (std::size_t j = 1; j < b.size(); ++j) breaks.push_back(double(j) / b.size());
  std::sort(breaks.begin(), breaks.end());
  long double sum = 0;
  for (std::size_t k = 0; k + 1 < breaks.size(); ++k) {
    const double lo = breaks[k], hi = breaks[k + 1];
    if (hi <= lo) continue;
    const double mid = 0.5 * (lo + hi);
    const double qa = a[std::min(a.size() - 1, static_cast<std::size_t>(mid * a.size()))];
    const double qb = b[std::min(b.size() - 1, static_cast<std::size_t>(mid * b.size()))];
    sum += (hi - lo) * static_cast<long double>(qa - qb) * (qa - qb);
  }
  return static_cast<double>(sum);
}

void require_permutation(const std::vector<Eigen::Index>& p, Eigen::Index n) {
  REQUIRE(static_cast<Eigen::Index>(p.size()) == n);
  std::set<Eigen::Index> seen(p.begin(), p.end());
  REQUIRE(static_cast<Eigen::Index>(seen.size()) == n);
  REQUIRE(*seen.begin() == 0);
  REQUIRE(*seen.rbegin() == n - 1);
}

}  // namespace

TEST_CASE("assignment solver against all permutations (n <= 7)", "[wasserstein]") {
  std::mt19937_64 engine(1);
  std::uniform_real_distribution<double> uni(-3, 5);
  std::uniform_int_distribution<int> small(0, 3);  // many ties
  for (int n = 1; n <= 7; ++n) {
    for (int rep = 0; rep < 12; ++rep) {
      Eigen::MatrixXd c(n, n);
      for (Eigen::Index i = 0; i < n; ++i)
        for (Eigen::Index j = 0; j < n; ++j) c(i, j) = rep % 2 ? uni(engine) : small(engine);
      const auto r = kinflow::solve_assignment(c);
      require_permutation(r.column_of_row, n);
      double s = 0;
      for (Eigen::Index i = 0; i < n; ++i) s += c(i, r.column_of_row[static_cast<std::size_t>(i)]);
      REQUIRE(r.cost == Approx(s).margin(1e-12));
      REQUIRE(r.cost == Approx(brute_assignment(c)).margin(1e-12));
    }
  }
}

TEST_CASE("exact W2 against all permutations (n <= 7)", "[wasserstein]") {
  for (int n = 1; n <= 7; ++n) {
    for (unsigned rep = 0; rep < 6; ++rep) {
      const Eigen::MatrixXd x = random_points(2, n, 100 + rep * 10 + n);
      const Eigen::MatrixXd y = random_points(2, n, 200 + rep * 10 + n);
      Eigen::MatrixXd c(n, n);
      for (Eigen::Index i = 0; i < n; ++i)
        for (Eigen::Index j = 0; j < n; ++j) c(i, j) = (x.col(i) - y.col(j)).squaredNorm();
      const auto r = kinflow::exact_wasserstein2(x, y);
      REQUIRE(r.squared == Approx(brute_assignment(c) / n).margin(1e-12));
      REQUIRE(r.distance == Approx(std::sqrt(brute_assignment(c) / n)).margin(1e-12));
      require_permutation(r.matching, n);
    }
  }
}

TEST_CASE("exact W2 of a shuffled, shifted copy is the shift; the matching undoes the shuffle",
          "[wasserstein]") {
  // For y = x∘π + s: Σ‖x_i - x_σ(i) - s‖² = Σ‖x_i - x_σ(i)‖² + n‖s‖² (the cross term sums to
  // 0), minimal at the identity, so W2 = ‖s‖.
  const Eigen::Index n = 150;
  const Eigen::MatrixXd x = random_points(3, n, 7);
  std::vector<Eigen::Index> perm(n);
  std::iota(perm.begin(), perm.end(), Eigen::Index{0});
  std::mt19937_64 engine(8);
  std::shuffle(perm.begin(), perm.end(), engine);
  // (Dynamic-size shifts here and below: with fixed-size ones GCC 12 under -march=native
  // warns falsely about reads on AVX-512 branches that size 2 or 3 never takes.)
  const Eigen::VectorXd s = Eigen::Vector3d(0.3, -1.2, 0.5);
  Eigen::MatrixXd y(3, n);
  for (Eigen::Index j = 0; j < n; ++j) y.col(j) = x.col(perm[static_cast<std::size_t>(j)]) + s;
  const auto r = kinflow::exact_wasserstein2(x, y);
  REQUIRE(r.distance == Approx(s.norm()).epsilon(1e-12));
  for (Eigen::Index j = 0; j < n; ++j)
    REQUIRE(r.matching[static_cast<std::size_t>(perm[static_cast<std::size_t>(j)])] == j);
  const auto zero = kinflow::exact_wasserstein2(x, x);
  REQUIRE(zero.distance == 0.0);
  // float input.
  const auto f = kinflow::exact_wasserstein2(x.cast<float>(), y.cast<float>());
  REQUIRE(f.distance == Approx(s.norm()).epsilon(1e-5));
}

TEST_CASE("1D W2 between sets of any sizes against the quantile integral", "[wasserstein]") {
  std::vector<double> a{0, 1, 2}, b{0, 3};
  REQUIRE(kinflow::wasserstein2_squared_1d(a, b) == Approx(7.0 / 6.0));
  std::mt19937_64 engine(3);
  std::normal_distribution<double> normal;
  for (std::size_t n : {1u, 2u, 5u, 17u, 100u}) {
    for (std::size_t m : {1u, 3u, 17u, 64u}) {
      std::vector<double> u(n), v(m);
      for (auto& e : u) e = normal(engine);
      for (auto& e : v) e = 2 * normal(engine) + 1;
      const double want = quantile_integral(u, v);
      REQUIRE(kinflow::wasserstein2_squared_1d(u, v) == Approx(want).epsilon(1e-12));
    }
  }
}

TEST_CASE("sliced W2: shift in 1D exactly, |s|/sqrt(d) in 2D, zero for the same measure",
          "[wasserstein]") {
  const Eigen::MatrixXd x1 = random_points(1, 300, 4);
  const Eigen::MatrixXd y1 = x1.array() + 0.7;
  REQUIRE(kinflow::sliced_wasserstein2(x1, y1) == Approx(0.7).epsilon(1e-12));
  // Different sizes in 1D: against the quantile integral.
  const Eigen::MatrixXd z1 = random_points(1, 77, 5);
  std::vector<double> a(x1.data(), x1.data() + x1.size()), b(z1.data(), z1.data() + z1.size());
  REQUIRE(kinflow::sliced_wasserstein2(x1, z1, {8, 1}) ==
          Approx(std::sqrt(quantile_integral(a, b))).epsilon(1e-12));

  // 2D: every direction sees the shift θ·s, and E(θ·s)² = |s|²/2.
  const Eigen::MatrixXd x = random_points(2, 400, 6);
  const Eigen::MatrixXd y = x.colwise() + Eigen::VectorXd(Eigen::Vector2d(1.0, -2.0));
  kinflow::sliced_wasserstein_options o;
  o.projections = 4000;
  REQUIRE(kinflow::sliced_wasserstein2(x, y, o) == Approx(std::sqrt(5.0 / 2)).epsilon(0.03));
  // The same measure written twice over (2n atoms): distance 0, quantile matching.
  Eigen::MatrixXd twice(2, 800);
  twice << x, x;
  REQUIRE(kinflow::sliced_wasserstein2(x, twice) == Approx(0.0).margin(1e-12));
  // Seeded: reproducible; a different seed gives another estimate.
  const double s1 = kinflow::sliced_wasserstein2(x, y, {16, 1});
  REQUIRE(kinflow::sliced_wasserstein2(x, y, {16, 1}) == s1);
  REQUIRE(kinflow::sliced_wasserstein2(x, y, {16, 2}) != s1);
  // Sliced never exceeds exact W2 (each projection is 1-Lipschitz).
  const Eigen::MatrixXd u = random_points(2, 60, 7), v = random_points(2, 60, 8).array() * 1.5;
  REQUIRE(kinflow::sliced_wasserstein2(u, v) <= kinflow::exact_wasserstein2(u, v).distance + 1e-12);
}

TEST_CASE("sliced W2: the mean over the seeded directions, the same bits on any number of threads",
          "[wasserstein][threads]") {
  const Eigen::MatrixXd x = random_points(3, 500, 9), y = random_points(3, 300, 10).array() * 1.3 + 0.2;
  kinflow::sliced_wasserstein_options o{.projections = 37, .seed = 5, .threads = 1};
  // The definition, step by step: directions z/|z| from the seeded stream, the 1D W2² of the
  // projections by the quantile integral, the root of their mean.
  kinflow::random_stream rng(o.seed);
  double mean = 0;
  for (int p = 0; p < o.projections; ++p) {
    Eigen::Vector3d z;
    do {
      for (int i = 0; i < 3; ++i) z(i) = rng.normal();
    } while (z.squaredNorm() == 0);
    z /= z.norm();
    std::vector<double> a, b;
    for (Eigen::Index j = 0; j < x.cols(); ++j) a.push_back(z.dot(x.col(j)));
    for (Eigen::Index j = 0; j < y.cols(); ++j) b.push_back(z.dot(y.col(j)));
    mean += quantile_integral(a, b) / o.projections;
  }
  const double one = kinflow::sliced_wasserstein2(x, y, o);
  CHECK(one == Approx(std::sqrt(mean)).epsilon(1e-10));
  for (const unsigned threads : {0u, 2u, 3u, 8u, 100u}) {
    o.threads = threads;
    INFO("threads = " << threads);
    CHECK(kinflow::sliced_wasserstein2(x, y, o) == one);
  }
}

TEST_CASE("bad arguments", "[wasserstein]") {
  const Eigen::MatrixXd x = random_points(2, 5, 1), y = random_points(2, 6, 2);
  REQUIRE_THROWS_WITH(kinflow::exact_wasserstein2(x, y), kinflow_test::contains("y.cols() = 6") &&
                                                              kinflow_test::contains("sliced"));
  REQUIRE_THROWS_AS(kinflow::exact_wasserstein2(x, random_points(3, 5, 3)),
                    kinflow::dimension_mismatch);
  REQUIRE_THROWS_AS(kinflow::sliced_wasserstein2(x, random_points(3, 5, 3)),
                    kinflow::dimension_mismatch);
  REQUIRE_THROWS_AS(kinflow::sliced_wasserstein2(x, Eigen::MatrixXd(2, 0)), kinflow::invalid_argument);
  REQUIRE_THROWS_AS(kinflow::sliced_wasserstein2(x, y, {0, 1}), kinflow::invalid_argument);
  REQUIRE_THROWS_AS(kinflow::solve_assignment(Eigen::MatrixXd::Zero(2, 3)), kinflow::invalid_argument);
  Eigen::MatrixXd c = Eigen::MatrixXd::Zero(2, 2);
  c(0, 1) = std::numeric_limits<double>::infinity();
  REQUIRE_THROWS_AS(kinflow::solve_assignment(c), kinflow::invalid_argument);
  std::vector<double> empty, one{1.0};
  REQUIRE_THROWS_AS(kinflow::wasserstein2_squared_1d(empty, one), kinflow::invalid_argument);
}
