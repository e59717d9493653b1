// Tests of the 2D toy datasets (docs/math.md §9.2): shapes, sample moments against the analytic ones
// of each recipe, support (every point where the recipe puts it), reproducibility by seed,
// difference across seeds, options that change what they should, and make_dataset().
#include "kinflow_catch.hpp"

#include <kinflow/data/toy2d.hpp>

#include <Eigen/Core>
#include <array>
#include <cmath>
#include <numbers>
#include <string>
#include <vector>

#include "support/oracles.hpp"

namespace {

constexpr double pi = std::numbers::pi;

// Mean and per-axis second moments of a 2 x n batch.
struct moments {
  Eigen::Vector2d mean;
  Eigen::Matrix2d second;  // E[x x^T]
  double radius2;          // E|x|^2
};

moments moments_of(const kinflow::batch<double, 2>& x) {
  moments m;
  const double n = static_cast<double>(x.cols());
  m.mean = x.rowwise().sum() / n;
  m.second = x * x.transpose() / n;
  m.radius2 = m.second.trace();
  return m;
}

#if defined(__SANITIZE_ADDRESS__)
constexpr Eigen::Index big = 20000;
#else
constexpr Eigen::Index big = 100000;
#endif

}  // namespace

TEST_CASE("every named dataset: shape, finiteness, seeds", "[toy2d]") {
  for (auto name : kinflow::dataset_names) {
    INFO(std::string(name));
    const auto a = kinflow::make_dataset(name, 501, 7);
    REQUIRE(a.rows() == 2);
    REQUIRE(a.cols() == 501);
    REQUIRE(a.allFinite());
    const auto b = kinflow::make_dataset(name, 501, 7);
    REQUIRE(a == b);
    const auto c = kinflow::make_dataset(name, 501, 8);
    REQUIRE(a != c);
    const auto f = kinflow::make_dataset<float>(name, 501, 7);
    REQUIRE(f == a.cast<float>());
    REQUIRE(kinflow::make_dataset(name, 0, 1).cols() == 0);
    REQUIRE(kinflow::make_dataset(name, 1, 1).cols() == 1);
    REQUIRE_THROWS_AS(kinflow::make_dataset(name, -1, 1), kinflow::invalid_argument);
  }
}

TEST_CASE("make_dataset: unknown name lists the valid ones", "[toy2d]") {
  REQUIRE(kinflow::is_dataset_name("moons"));
  REQUIRE_FALSE(kinflow::is_dataset_name("moon"));
  REQUIRE_THROWS_AS(kinflow::make_dataset("moon", 10, 1), kinflow::invalid_argument);
  REQUIRE_THROWS_WITH(kinflow::make_dataset("moon", 10, 1),
                      kinflow_test::contains("dataset = \"moon\"") &&
                          kinflow_test::contains("8gaussians, moons, checkerboard, 2spirals, "
                                                 "pinwheel, circles, rings, swissroll, 25gaussians"));
}

TEST_CASE("8gaussians: mean 0, E[x x^T] = (r^2/2 + s^2)/c^2 I, points near the 8 centres",
          "[toy2d]") {
  const auto x = kinflow::toy::eight_gaussians(big, 1);
  const auto m = moments_of(x);
  const double c2 = 1.414 * 1.414, second = (16.0 / 2 + 0.25) / c2;
  // Standard error of the mean per axis: sqrt(4.13 / n) = 6.4e-3 at n = 1e5.
  const double tol = 5 * std::sqrt(second / big);
  REQUIRE(std::abs(m.mean(0)) < tol);
  REQUIRE(std::abs(m.mean(1)) < tol);
  REQUIRE(std::abs(m.second(0, 0) - second) < 0.02 * second);
  REQUIRE(std::abs(m.second(1, 1) - second) < 0.02 * second);
  REQUIRE(std::abs(m.second(0, 1)) < 0.02 * second);
  // Assign each point to the nearest of FFJORD's centres: each gets 1/8 of the points and
  // the residual has std 0.5 / 1.414 per axis.
  const double h = 1 / std::sqrt(2.0);
  const std::array<Eigen::Vector2d, 8> centres{
      Eigen::Vector2d(1, 0), Eigen::Vector2d(-1, 0), Eigen::Vector2d(0, 1),
      Eigen::Vector2d(0, -1), Eigen::Vector2d(h, h), Eigen::Vector2d(h, -h),
      Eigen::Vector2d(-h, h), Eigen::Vector2d(-h, -h)};
  std::array<double, 8> count{};
  double resid2 = 0;
  for (Eigen::Index j = 0; j < x.cols(); ++j) {
    int best = 0;
    double bd = 1e300;
    for (int k = 0; k < 8; ++k) {
      const double d = (x.col(j) - centres[k] * 4 / 1.414).squaredNorm();
      if (d < bd) bd = d, best = k;
    }
    count[best] += 1;
    resid2 += bd;
  }
  for (double c : count) REQUIRE(std::abs(c / big - 0.125) < 0.006);
  // Centres are 3.06 / 1.414 * ... apart: the wrong assignment is rare (< 1e-4).
  REQUIRE(std::abs(resid2 / big - 2 * 0.25 / c2) < 0.02 * 2 * 0.25 / c2);
}

TEST_CASE("8gaussians options: radius 0, std 1, divisor 1 is N(0, I); components", "[toy2d]") {
  kinflow::toy::eight_gaussians_options o;
  o.radius = 0;
  o.std = 1;
  o.divisor = 1;
  const auto m = moments_of(kinflow::toy::eight_gaussians(big, 2, o));
  REQUIRE(std::abs(m.second(0, 0) - 1) < 0.02);
  REQUIRE(std::abs(m.second(1, 1) - 1) < 0.02);
  kinflow::toy::eight_gaussians_options one;
  one.components = 1;
  one.std = 0;
  one.divisor = 2;
  const auto x = kinflow::toy::eight_gaussians(100, 3, one);
  for (Eigen::Index j = 0; j < x.cols(); ++j) {
    REQUIRE(x(0, j) == Approx(2.0));
    REQUIRE(x(1, j) == Approx(0.0).margin(1e-15));
  }
  kinflow::toy::eight_gaussians_options bad;
  bad.divisor = 0;
  REQUIRE_THROWS_WITH(kinflow::toy::eight_gaussians(10, 1, bad),
                      kinflow_test::contains("divisor = 0"));
}

TEST_CASE("checkerboard: uniform on the 8 filled squares of [-4, 4]^2", "[toy2d]") {
  const auto x = kinflow::toy::checkerboard(big, 4);
  std::array<std::array<double, 4>, 4> count{};
  for (Eigen::Index j = 0; j < x.cols(); ++j) {
    REQUIRE(std::abs(x(0, j)) <= 4.0);
    REQUIRE(std::abs(x(1, j)) <= 4.0);
    const int a = static_cast<int>(std::floor(x(0, j) / 2)) + 2;
    const int b = static_cast<int>(std::floor(x(1, j) / 2)) + 2;
    // FFJORD's board: the square [-4, -2) x [-4, -2) is filled, so a + b even.
    REQUIRE((a + b) % 2 == 0);
    count[a][b] += 1;
  }
  for (int a = 0; a < 4; ++a)
    for (int b = 0; b < 4; ++b)
      if ((a + b) % 2 == 0) REQUIRE(std::abs(count[a][b] / big - 0.125) < 0.006);
  // Uniform on the squares: per axis uniform on [-4, 4], variance 16/3.
  const auto m = moments_of(x);
  REQUIRE(std::abs(m.mean(0)) < 0.04);
  REQUIRE(std::abs(m.mean(1)) < 0.04);
  REQUIRE(std::abs(m.second(0, 0) - 16.0 / 3) < 0.1);
  REQUIRE(std::abs(m.second(1, 1) - 16.0 / 3) < 0.1);
  // Within a square the position is uniform: mean offset 1, variance 1/3 of the cell width 2.
  double off = 0, off2 = 0;
  for (Eigen::Index j = 0; j < x.cols(); ++j) {
    const double u = x(0, j) - 2 * std::floor(x(0, j) / 2);
    off += u;
    off2 += u * u;
  }
  REQUIRE(std::abs(off / big - 1.0) < 0.015);
  REQUIRE(std::abs(off2 / big - 4.0 / 3) < 0.03);
}

TEST_CASE("checkerboard options: board size and cell count", "[toy2d]") {
  kinflow::toy::checkerboard_options o;
  o.half_width = 1;
  o.cells = 8;
  const auto x = kinflow::toy::checkerboard(20000, 5, o);
  for (Eigen::Index j = 0; j < x.cols(); ++j) {
    REQUIRE(std::abs(x(0, j)) <= 1.0);
    const int a = static_cast<int>(std::floor((x(0, j) + 1) * 4));
    const int b = static_cast<int>(std::floor((x(1, j) + 1) * 4));
    REQUIRE((a + b) % 2 == 0);
  }
  o.cells = 3;
  REQUIRE_THROWS_WITH(kinflow::toy::checkerboard(10, 1, o), kinflow_test::contains("cells = 3"));
}

TEST_CASE("moons: mean of the two arcs, radius about the arc centres", "[toy2d]") {
  const auto x = kinflow::toy::moons(big, 6);
  const auto m = moments_of(x);
  // Upper arc (cos s, sin s) has mean (0, 2/pi), lower (1 - cos s, 1/2 - sin s) mean
  // (1, 1/2 - 2/pi); halves of each, scaled by 2 and shifted by (-1, -0.2): (0, 0.3).
  REQUIRE(std::abs(m.mean(0)) < 0.01);
  REQUIRE(std::abs(m.mean(1) - 0.3) < 0.01);
  // Every point is within 5 noise stds (0.2 each axis after scaling) of one of the arcs.
  for (Eigen::Index j = 0; j < x.cols(); j += 7) {
    const Eigen::Vector2d p((x(0, j) + 1) / 2, (x(1, j) + 0.2) / 2);
    const double du = std::abs(p.norm() - 1);
    const double dl = std::abs((p - Eigen::Vector2d(1, 0.5)).norm() - 1);
    REQUIRE(std::min(du, dl) < 0.75);
  }
  // Without noise: exactly on the arcs, half on each.
  kinflow::toy::moons_options o;
  o.noise = 0;
  const auto c = kinflow::toy::moons(1000, 6, o);
  int upper = 0;
  for (Eigen::Index j = 0; j < c.cols(); ++j) {
    const Eigen::Vector2d p((c(0, j) + 1) / 2, (c(1, j) + 0.2) / 2);
    const double du = std::abs(p.norm() - 1);
    const double dl = std::abs((p - Eigen::Vector2d(1, 0.5)).norm() - 1);
    REQUIRE(std::min(du, dl) < 1e-12);
    if (du < 1e-12 && p(1) >= 0) ++upper;
  }
  REQUIRE(upper >= 500);
  // Shuffled: the first half is not all one arc.
  REQUIRE(c.leftCols(500).row(1).maxCoeff() > 0.5);
  REQUIRE(c.leftCols(500).row(1).minCoeff() < 0.0);
}

TEST_CASE("circles and rings: E|x|^2 from the radii and the noise", "[toy2d]") {
  const auto c = moments_of(kinflow::toy::circles(big, 8));
  // 9 ((1 + 0.25) / 2 + 2 * 0.08^2).
  REQUIRE(std::abs(c.radius2 - 9 * (0.625 + 2 * 0.0064)) < 0.03);
  REQUIRE(std::abs(c.mean(0)) < 0.02);
  const auto r = moments_of(kinflow::toy::rings(big, 9));
  // (3^2 + 2.25^2 + 1.5^2 + 0.75^2) / 4 + 2 * 0.08^2.
  REQUIRE(std::abs(r.radius2 - ((9 + 5.0625 + 2.25 + 0.5625) / 4 + 2 * 0.0064)) < 0.03);
  // Rings without noise: every radius is one of the four.
  kinflow::toy::rings_options o;
  o.noise = 0;
  o.rings = 3;
  o.scale = 1.5;
  const auto x = kinflow::toy::rings(301, 9, o);
  std::array<int, 3> count{};
  for (Eigen::Index j = 0; j < x.cols(); ++j) {
    const double rad = x.col(j).norm();
    int k = -1;
    for (int i = 0; i < 3; ++i)
      if (std::abs(rad - 0.5 * (i + 1)) < 1e-12) k = i;
    REQUIRE(k >= 0);
    ++count[k];
  }
  REQUIRE(count == std::array<int, 3>{101, 100, 100});
  kinflow::toy::circles_options co;
  co.noise = 0;
  co.factor = 0.25;
  const auto y = kinflow::toy::circles(100, 1, co);
  for (Eigen::Index j = 0; j < y.cols(); ++j) {
    const double rad = y.col(j).norm();
    REQUIRE((std::abs(rad - 3) < 1e-12 || std::abs(rad - 0.75) < 1e-12));
  }
}

TEST_CASE("swissroll: E|x|^2 = (E t^2 + 2 noise^2) / 25", "[toy2d]") {
  const auto m = moments_of(kinflow::toy::swissroll(big, 10));
  const double a = 1.5 * pi, b = 4.5 * pi;
  const double et2 = (b * b * b - a * a * a) / (3 * (b - a));
  const double want = (et2 + 2.0) / 25;
  REQUIRE(std::abs(m.radius2 - want) < 0.01 * want);
  kinflow::toy::swissroll_options o;
  o.noise = 0;
  o.divisor = 1;
  o.t_min = 1;
  o.t_max = 2;
  const auto x = kinflow::toy::swissroll(200, 10, o);
  for (Eigen::Index j = 0; j < x.cols(); ++j) {
    const double t = x.col(j).norm();
    REQUIRE(t >= 1.0 - 1e-12);
    REQUIRE(t < 2.0 + 1e-12);
    REQUIRE(x(0, j) == Approx(t * std::cos(t)).margin(1e-12));
  }
}

TEST_CASE("pinwheel: E|x|^2 = scale^2 (1 + sr^2 + st^2), mean 0", "[toy2d]") {
  const auto m = moments_of(kinflow::toy::pinwheel(big, 12));
  REQUIRE(std::abs(m.radius2 - 4 * (1 + 0.09 + 0.01)) < 0.03);
  REQUIRE(std::abs(m.mean(0)) < 0.03);
  REQUIRE(std::abs(m.mean(1)) < 0.03);
  // One arm, no spread: all points at the same spot scale * (cos phi, -sin phi), phi = rate e.
  kinflow::toy::pinwheel_options o;
  o.arms = 1;
  o.radial_std = 0;
  o.tangential_std = 0;
  const auto x = kinflow::toy::pinwheel(10, 12, o);
  const double phi = 0.25 * std::exp(1.0);
  REQUIRE(x(0, 3) == Approx(2 * std::cos(phi)));
  REQUIRE(x(1, 3) == Approx(-2 * std::sin(phi)));
}

TEST_CASE("2spirals: E|x|^2 against quadrature over the arm parameter", "[toy2d]") {
  const auto m = moments_of(kinflow::toy::two_spirals(big, 13));
  // s = sqrt(u) S has density 2 s / S^2 on [0, S]; the arm point is
  // (-s cos s + j u1, s sin s + j u2) with u uniform: E|p|^2 = E s^2 + j E[s (sin s - cos s)]
  // + 2 j^2 / 3. Then divided by 3, plus noise 2 * 0.1^2.
  const long double S = 3 * pi, j = 0.5L;
  const long double es2 = kinflow_test::gauss_legendre(
      [&](long double s) { return 2 * s * s * s / (S * S); }, 0, S);
  const long double cross = kinflow_test::gauss_legendre(
      [&](long double s) { return 2 * s * s * (std::sin(s) - std::cos(s)) / (S * S); }, 0, S);
  const double want = static_cast<double>((es2 + j * cross + 2 * j * j / 3) / 9 + 0.02L);
  REQUIRE(std::abs(m.radius2 - want) < 0.015 * want);
  REQUIRE(std::abs(m.mean(0)) < 0.03);
  REQUIRE(std::abs(m.mean(1)) < 0.03);
}

TEST_CASE("25gaussians: 25 equally likely centres on the 5 x 5 grid", "[toy2d]") {
  const auto x = kinflow::toy::twenty_five_gaussians(big, 14);
  std::array<double, 25> count{};
  for (Eigen::Index j = 0; j < x.cols(); ++j) {
    const double gx = x(0, j) * 2.828 / 2, gy = x(1, j) * 2.828 / 2;
    const double ax = std::round(gx), ay = std::round(gy);
    REQUIRE(std::abs(gx - ax) < 0.2);  // 8 noise stds of 0.025 in grid units
    REQUIRE(std::abs(ax) <= 2);
    REQUIRE(std::abs(ay) <= 2);
    count[static_cast<std::size_t>((ax + 2) * 5 + (ay + 2))] += 1;
  }
  for (double c : count) REQUIRE(std::abs(c / big - 0.04) < 0.004);
  const auto m = moments_of(x);
  const double var = (4.0 * 24 / 12 + 0.0025) / (2.828 * 2.828);
  REQUIRE(std::abs(m.second(0, 0) - var) < 0.02 * var);
  kinflow::toy::twenty_five_gaussians_options o;
  o.grid = 2;
  o.std = 0;
  o.divisor = 1;
  const auto y = kinflow::toy::twenty_five_gaussians(50, 1, o);
  for (Eigen::Index j = 0; j < y.cols(); ++j) REQUIRE(std::abs(y(0, j)) == 1.0);
}

TEST_CASE("independent-point recipes: the first columns do not depend on n", "[toy2d]") {
  for (auto name : {"8gaussians", "checkerboard", "2spirals", "pinwheel", "swissroll",
                    "25gaussians"}) {
    INFO(name);
    REQUIRE(kinflow::make_dataset(name, 10, 3) == kinflow::make_dataset(name, 100, 3).leftCols(10));
  }
}

namespace {

// Checks a mixture against samples of its recipe, independently of how the mixture was
// derived: every sample is assigned to the nearest mixture mean (the components are many
// standard deviations apart), and each component's share, sample mean and per-axis
// sample variance must match its weight, mean and std² within a few standard errors.
void require_mixture_of_samples(const kinflow::isotropic_gaussian_mixture& mix,
                                const kinflow::batch<double, 2>& x) {
  const Eigen::Index k = mix.means.cols();
  REQUIRE(mix.weights.size() == k);
  REQUIRE(mix.stds.size() == k);
  std::vector<double> count(static_cast<std::size_t>(k), 0.0);
  Eigen::MatrixXd sum = Eigen::MatrixXd::Zero(2, k), sum2 = Eigen::MatrixXd::Zero(2, k);
  for (Eigen::Index j = 0; j < x.cols(); ++j) {
    Eigen::Index best = 0;
    (mix.means.colwise() - x.col(j)).colwise().squaredNorm().minCoeff(&best);
    count[static_cast<std::size_t>(best)] += 1;
    sum.col(best) += x.col(j);
    sum2.col(best) += x.col(j).cwiseAbs2();
  }
  const double n = static_cast<double>(x.cols());
  for (Eigen::Index c = 0; c < k; ++c) {
    INFO("component " << c);
    const double nc = count[static_cast<std::size_t>(c)], w = mix.weights(c), s = mix.stds(c);
    REQUIRE(std::abs(nc / n - w) < 5 * std::sqrt(w * (1 - w) / n));  // binomial share
    REQUIRE(nc > 100);
    const Eigen::Vector2d mean = sum.col(c) / nc;
    const Eigen::Vector2d var = sum2.col(c) / nc - mean.cwiseAbs2();
    for (int a = 0; a < 2; ++a) {
      REQUIRE(std::abs(mean(a) - mix.means(a, c)) < 5 * s / std::sqrt(nc) + 1e-12);
      REQUIRE(std::abs(var(a) - s * s) < 5 * s * s * std::sqrt(2 / nc) + 1e-12);
    }
  }
}

// The columns of @p a and @p b are the same points up to order (within 1e-12).
void require_same_points(const kinflow::batch<double, 2>& a, const Eigen::MatrixXd& b) {
  REQUIRE(a.cols() == b.cols());
  for (Eigen::Index j = 0; j < b.cols(); ++j) {
    INFO("point " << b(0, j) << ", " << b(1, j));
    REQUIRE((a.colwise() - b.col(j)).colwise().norm().minCoeff() < 1e-12);
  }
}

}  // namespace

TEST_CASE("dataset_mixture: 8gaussians is FFJORD's 8 centres, and its samples' moments",
          "[toy2d]") {
  REQUIRE(kinflow::is_mixture_dataset("8gaussians"));
  const auto mix = kinflow::dataset_mixture("8gaussians");
  // The centres the recipe states: (±1, 0), (0, ±1), (±1/√2, ±1/√2), times 4 / 1.414.
  const double h = 1 / std::sqrt(2.0), c = 4 / 1.414;
  Eigen::MatrixXd centres(2, 8);
  centres << 1, -1, 0, 0, h, h, -h, -h,  //
      0, 0, 1, -1, h, -h, h, -h;
  require_same_points(mix.means, c * centres);
  for (Eigen::Index k = 0; k < 8; ++k) {
    REQUIRE(mix.weights(k) == Approx(0.125));
    REQUIRE(mix.stds(k) == Approx(0.5 / 1.414));
  }
  // The mixture's second moment Σ w (μ μᵀ + s² I) is the recipe's (r²/2 + s²)/c² I.
  Eigen::Matrix2d second = Eigen::Matrix2d::Zero();
  for (Eigen::Index k = 0; k < 8; ++k)
    second += mix.weights(k) * (mix.means.col(k) * mix.means.col(k).transpose() +
                                mix.stds(k) * mix.stds(k) * Eigen::Matrix2d::Identity());
  const double want = (16.0 / 2 + 0.25) / (1.414 * 1.414);
  REQUIRE(second(0, 0) == Approx(want).epsilon(1e-12));
  REQUIRE(second(1, 1) == Approx(want).epsilon(1e-12));
  REQUIRE(second(0, 1) == Approx(0.0).margin(1e-12));
  require_mixture_of_samples(mix, kinflow::make_dataset("8gaussians", big, 21));
}

TEST_CASE("dataset_mixture: 25gaussians is the 5 x 5 grid of the recipe, and its samples' moments",
          "[toy2d]") {
  REQUIRE(kinflow::is_mixture_dataset("25gaussians"));
  const auto mix = kinflow::dataset_mixture("25gaussians");
  Eigen::MatrixXd centres(2, 25);  // (2i, 2j) / 2.828, i, j in {-2, …, 2}
  for (int i = -2; i <= 2; ++i)
    for (int j = -2; j <= 2; ++j)
      centres.col((i + 2) * 5 + j + 2) = Eigen::Vector2d(2 * i, 2 * j) / 2.828;
  require_same_points(mix.means, centres);
  REQUIRE(mix.weights.sum() == Approx(1.0));
  REQUIRE((mix.weights.array() == mix.weights(0)).all());
  REQUIRE((mix.stds.array() == mix.stds(0)).all());
  REQUIRE(mix.stds(0) == Approx(0.05 / 2.828));
  require_mixture_of_samples(mix, kinflow::make_dataset("25gaussians", big, 22));
}

TEST_CASE("mixtures with options: the generators' samples follow them", "[toy2d]") {
  kinflow::toy::eight_gaussians_options o{.radius = 2, .std = 0.1, .divisor = 1, .components = 3};
  const auto three = kinflow::toy::eight_gaussians_mixture(o);
  Eigen::MatrixXd centres(2, 3);  // 2·(cos, sin)(0, 2π/3, 4π/3)
  centres << 2, -1, -1,  //
      0, std::sqrt(3.0), -std::sqrt(3.0);
  require_same_points(three.means, centres);
  require_mixture_of_samples(three, kinflow::toy::eight_gaussians(big / 4, 23, o));
  kinflow::toy::twenty_five_gaussians_options g{
      .grid = 2, .spacing = 3, .std = 0.2, .divisor = 1.5};
  const auto four = kinflow::toy::twenty_five_gaussians_mixture(g);
  Eigen::MatrixXd corners(2, 4);  // (±1.5, ±1.5) / 1.5
  corners << 1, 1, -1, -1,  //
      1, -1, 1, -1;
  require_same_points(four.means, corners);
  require_mixture_of_samples(four, kinflow::toy::twenty_five_gaussians(big / 4, 24, g));
  o.divisor = 0;
  REQUIRE_THROWS_WITH(kinflow::toy::eight_gaussians_mixture(o),
                      kinflow_test::contains("divisor = 0"));
  g.grid = 0;
  REQUIRE_THROWS_WITH(kinflow::toy::twenty_five_gaussians_mixture(g),
                      kinflow_test::contains("grid = 0"));
}

TEST_CASE("dataset_mixture: the other datasets are not mixtures", "[toy2d]") {
  for (auto name : kinflow::dataset_names) {
    if (name == "8gaussians" || name == "25gaussians") continue;
    INFO(std::string(name));
    REQUIRE_FALSE(kinflow::is_mixture_dataset(name));
    REQUIRE_THROWS_AS(kinflow::dataset_mixture(name), kinflow::invalid_argument);
    REQUIRE_THROWS_WITH(kinflow::dataset_mixture(name),
                        kinflow_test::contains("dataset = \"" + std::string(name) + "\"") &&
                            kinflow_test::contains("8gaussians or 25gaussians"));
  }
  REQUIRE_FALSE(kinflow::is_mixture_dataset("8gaussian"));
  REQUIRE_THROWS_AS(kinflow::dataset_mixture("8gaussian"), kinflow::invalid_argument);
}
