// Tests of the natural class labels of the 2D toy datasets: asking for labels leaves the
// points of a seed unchanged, and every recipe's labels agree with a class recovered from
// the point's position alone (nearest centre, arc, circle, ring, arm, cell or roll position,
// computed here from the recipe's geometry, not from the labelling code).
#include "kinflow_catch.hpp"

#include <kinflow/data/toy2d.hpp>

#include <Eigen/Core>
#include <cmath>
#include <numbers>
#include <string>
#include <vector>

namespace {

using kinflow::class_labels;
constexpr double pi = std::numbers::pi;
constexpr Eigen::Index n = 4001;  // odd: the two halves of moons and circles differ by one

// How many points of each class.
std::vector<Eigen::Index> histogram(const class_labels& labels, Eigen::Index classes) {
  std::vector<Eigen::Index> h(static_cast<std::size_t>(classes), 0);
  for (Eigen::Index j = 0; j < labels.size(); ++j) {
    REQUIRE(labels(j) >= 0);
    REQUIRE(labels(j) < classes);
    ++h[static_cast<std::size_t>(labels(j))];
  }
  return h;
}

// The angle of (x, y) in [0, 2π).
double angle_of(double x, double y) {
  const double a = std::atan2(y, x);
  return a < 0 ? a + 2 * pi : a;
}

// The index in {0, …, k-1} nearest to the angle a / (2π/k), modulo k.
Eigen::Index sector(double a, Eigen::Index k) {
  const auto s = static_cast<Eigen::Index>(std::lround(a / (2 * pi / static_cast<double>(k))));
  return ((s % k) + k) % k;
}

}  // namespace

TEST_CASE("labels leave the points of every named dataset unchanged", "[toy2d][labels]") {
  const std::vector<Eigen::Index> classes{8, 2, 8, 2, 5, 2, 4, 4, 25};
  for (std::size_t i = 0; i < kinflow::dataset_names.size(); ++i) {
    const auto name = kinflow::dataset_names[i];
    INFO(std::string(name));
    const auto d = kinflow::make_labelled_dataset(name, n, 17);
    REQUIRE(d.points == kinflow::make_dataset(name, n, 17));
    REQUIRE(d.labels.size() == n);
    REQUIRE(d.classes == classes[i]);
    REQUIRE(kinflow::dataset_classes(name) == classes[i]);
    // Every class is drawn (n is large), and no label is outside [0, classes).
    for (Eigen::Index c : histogram(d.labels, d.classes)) REQUIRE(c > 0);
    // The same labels for float points, and the points are those of make_dataset<float>.
    const auto f = kinflow::make_labelled_dataset<float>(name, n, 17);
    REQUIRE(f.points == kinflow::make_dataset<float>(name, n, 17));
    REQUIRE(f.labels == d.labels);
    // Small sizes.
    REQUIRE(kinflow::make_labelled_dataset(name, 0, 1).labels.size() == 0);
    const auto one = kinflow::make_labelled_dataset(name, 1, 1);
    REQUIRE(one.labels.size() == 1);
    REQUIRE(one.points == kinflow::make_dataset(name, 1, 1));
  }
  REQUIRE_THROWS_WITH(kinflow::make_labelled_dataset("moon", 10, 1),
                      kinflow_test::contains("dataset = \"moon\"") &&
                          kinflow_test::contains("8gaussians, moons"));
  REQUIRE_THROWS_WITH(kinflow::dataset_classes("ring"),
                      kinflow_test::contains("dataset = \"ring\""));
}

TEST_CASE("labels through the generators: same points, labels resized, options respected",
          "[toy2d][labels]") {
  class_labels labels = class_labels::Constant(3, 99);  // resized and overwritten
  kinflow::toy::rings_options o;
  o.rings = 3;
  const auto x = kinflow::toy::rings(300, 5, o, &labels);
  REQUIRE(x == kinflow::toy::rings(300, 5, o));
  REQUIRE(labels.size() == 300);
  REQUIRE(kinflow::toy::class_count(o) == 3);
  REQUIRE(histogram(labels, 3) == std::vector<Eigen::Index>{100, 100, 100});
  // Options the labels depend on.
  kinflow::toy::checkerboard_options c;
  c.cells = 6;
  REQUIRE(kinflow::toy::class_count(c) == 18);
  (void)kinflow::toy::checkerboard(5000, 1, c, &labels);
  for (Eigen::Index k : histogram(labels, 18)) REQUIRE(k > 0);
  kinflow::toy::twenty_five_gaussians_options g;
  g.grid = 3;
  REQUIRE(kinflow::toy::class_count(g) == 9);
  kinflow::toy::swissroll_options s;
  s.classes = 0;
  REQUIRE_THROWS_WITH(kinflow::toy::swissroll(10, 1, s, &labels),
                      kinflow_test::contains("swissroll_options::classes = 0"));
  s.classes = 1;
  REQUIRE(kinflow::toy::swissroll(10, 1, s) == kinflow::toy::swissroll(10, 1));
  (void)kinflow::toy::swissroll(10, 1, s, &labels);
  REQUIRE((labels.array() == 0).all());
}

TEST_CASE("8gaussians labels: the centre nearest the point (small noise)", "[toy2d][labels]") {
  kinflow::toy::eight_gaussians_options o;
  o.std = 0.05;
  class_labels labels;
  const auto x = kinflow::toy::eight_gaussians(n, 3, o, &labels);
  REQUIRE(x == kinflow::toy::eight_gaussians(n, 3, o));
  for (Eigen::Index j = 0; j < n; ++j) REQUIRE(labels(j) == sector(angle_of(x(0, j), x(1, j)), 8));
  // Default noise: the centres overlap a little; nearly every point is nearest its own.
  const auto d = kinflow::make_labelled_dataset("8gaussians", n, 3);
  Eigen::Index agree = 0;
  for (Eigen::Index j = 0; j < n; ++j)
    agree += d.labels(j) == sector(angle_of(d.points(0, j), d.points(1, j)), 8);
  REQUIRE(agree > 0.98 * n);
}

TEST_CASE("25gaussians labels: the grid cell a*5 + b the point rounds to", "[toy2d][labels]") {
  const auto d = kinflow::make_labelled_dataset("25gaussians", n, 4);
  const auto mix = kinflow::dataset_mixture("25gaussians");
  for (Eigen::Index j = 0; j < n; ++j) {
    const double a = std::round(d.points(0, j) * 2.828 / 2) + 2;
    const double b = std::round(d.points(1, j) * 2.828 / 2) + 2;
    REQUIRE(d.labels(j) == static_cast<Eigen::Index>(a * 5 + b));
    // The same numbering as the mixture's components: its mean is the nearest.
    Eigen::Index nearest = 0;
    (mix.means.colwise() - d.points.col(j)).colwise().squaredNorm().minCoeff(&nearest);
    REQUIRE(d.labels(j) == nearest);
  }
}

TEST_CASE("moons labels: the arc a noise-free point lies on, shuffled with the points",
          "[toy2d][labels]") {
  kinflow::toy::moons_options o;
  o.noise = 0;
  class_labels labels;
  const auto x = kinflow::toy::moons(n, 6, o, &labels);
  REQUIRE(x == kinflow::toy::moons(n, 6, o));
  Eigen::Index upper = 0;
  for (Eigen::Index j = 0; j < n; ++j) {
    const Eigen::Vector2d p((x(0, j) + 1) / 2, (x(1, j) + 0.2) / 2);
    const bool on_upper = std::abs(p.norm() - 1) < 1e-12 && p(1) >= -1e-12;
    const bool on_lower =
        std::abs((p - Eigen::Vector2d(1, 0.5)).norm() - 1) < 1e-12 && p(1) <= 0.5 + 1e-12;
    REQUIRE(on_upper != on_lower);  // the arcs do not meet
    REQUIRE(labels(j) == (on_upper ? 0 : 1));
    upper += on_upper;
  }
  REQUIRE(upper == n / 2);
  // Shuffled: neither half of the columns is one arc.
  REQUIRE(labels.head(n / 2).minCoeff() == 0);
  REQUIRE(labels.head(n / 2).maxCoeff() == 1);
  // With the default noise the nearer arc still agrees for most points.
  const auto d = kinflow::make_labelled_dataset("moons", n, 6);
  Eigen::Index agree = 0;
  for (Eigen::Index j = 0; j < n; ++j) {
    const Eigen::Vector2d p((d.points(0, j) + 1) / 2, (d.points(1, j) + 0.2) / 2);
    const double du = std::abs(p.norm() - 1);
    const double dl = std::abs((p - Eigen::Vector2d(1, 0.5)).norm() - 1);
    agree += d.labels(j) == (du < dl ? 0 : 1);
  }
  REQUIRE(agree > 0.9 * n);
}

TEST_CASE("circles and rings labels: the radius bin", "[toy2d][labels]") {
  const auto c = kinflow::make_labelled_dataset("circles", n, 8);
  Eigen::Index agree = 0;
  for (Eigen::Index j = 0; j < n; ++j)
    agree += c.labels(j) == (c.points.col(j).norm() > 2.25 ? 0 : 1);  // radii 3 and 1.5
  REQUIRE(agree > 0.995 * n);
  REQUIRE(histogram(c.labels, 2) == std::vector<Eigen::Index>{n / 2, n - n / 2});
  kinflow::toy::circles_options co;
  co.noise = 0;
  class_labels labels;
  const auto y = kinflow::toy::circles(n, 8, co, &labels);
  for (Eigen::Index j = 0; j < n; ++j) {
    const double r = y.col(j).norm();
    REQUIRE((std::abs(r - 3) < 1e-12 || std::abs(r - 1.5) < 1e-12));
    REQUIRE(labels(j) == (std::abs(r - 3) < 1e-12 ? 0 : 1));
  }
  // Rings of radii 3, 2.25, 1.5, 0.75: ring k is the nearest radius 3 (4 - k) / 4.
  const auto r = kinflow::make_labelled_dataset("rings", n, 9);
  agree = 0;
  for (Eigen::Index j = 0; j < n; ++j) {
    const double k = 4 - std::round(r.points.col(j).norm() / 0.75);
    agree += static_cast<double>(r.labels(j)) == k;
  }
  REQUIRE(agree > 0.999 * n);
  REQUIRE(histogram(r.labels, 4) == std::vector<Eigen::Index>{1000, 1000, 1000, 1001});
}

TEST_CASE("2spirals labels: which arm a noise-free point lies on", "[toy2d][labels]") {
  kinflow::toy::two_spirals_options o;
  o.noise = 0;
  o.jitter = 0;
  o.divisor = 1;
  class_labels labels;
  const auto x = kinflow::toy::two_spirals(n, 13, o, &labels);
  REQUIRE(x == kinflow::toy::two_spirals(n, 13, o));
  for (Eigen::Index j = 0; j < n; ++j) {
    // On the first arm the point is (-s cos s, s sin s) with s = |x|; on the second, minus it.
    const double s = x.col(j).norm();
    const Eigen::Vector2d first(-s * std::cos(s), s * std::sin(s));
    const double d0 = (x.col(j) - first).norm(), d1 = (x.col(j) + first).norm();
    REQUIRE(std::min(d0, d1) < 1e-9);
    if (s > 1e-6) REQUIRE(labels(j) == (d0 < d1 ? 0 : 1));
  }
  const auto h = histogram(labels, 2);
  REQUIRE(std::abs(static_cast<double>(h[0]) / n - 0.5) < 0.03);
}

TEST_CASE("pinwheel labels: the arm of the point's angle (no spread)", "[toy2d][labels]") {
  kinflow::toy::pinwheel_options o;
  o.radial_std = 0;
  o.tangential_std = 0;
  class_labels labels;
  const auto x = kinflow::toy::pinwheel(n, 12, o, &labels);
  REQUIRE(x == kinflow::toy::pinwheel(n, 12, o));
  // x = 2 (cos φ, -sin φ) with φ = 2πk/5 + 0.25 e: the angle of x is -φ.
  for (Eigen::Index j = 0; j < n; ++j) {
    const double phi = 2 * pi - angle_of(x(0, j), x(1, j));
    REQUIRE(labels(j) == sector(phi - 0.25 * std::exp(1.0), 5));
  }
  for (Eigen::Index k : histogram(labels, 5)) REQUIRE(k > 0.15 * n);
}

TEST_CASE("checkerboard labels: the filled cell a*2 + b/2 the point lies in",
          "[toy2d][labels]") {
  const auto d = kinflow::make_labelled_dataset("checkerboard", n, 4);
  for (Eigen::Index j = 0; j < n; ++j) {
    const auto a = static_cast<Eigen::Index>(std::floor(d.points(0, j) / 2)) + 2;
    const auto b = static_cast<Eigen::Index>(std::floor(d.points(1, j) / 2)) + 2;
    REQUIRE((a + b) % 2 == 0);
    REQUIRE(d.labels(j) == a * 2 + b / 2);
  }
  for (Eigen::Index k : histogram(d.labels, 8)) REQUIRE(std::abs(k - n / 8.0) < 0.2 * n / 8);
}

TEST_CASE("swissroll labels: the quarter of [t_min, t_max) the roll parameter is in",
          "[toy2d][labels]") {
  kinflow::toy::swissroll_options o;
  o.noise = 0;
  o.divisor = 1;
  class_labels labels;
  const auto x = kinflow::toy::swissroll(n, 10, o, &labels);
  REQUIRE(x == kinflow::toy::swissroll(n, 10, o));
  for (Eigen::Index j = 0; j < n; ++j) {
    const double t = x.col(j).norm();  // |(t cos t, t sin t)| = t
    const double q = (t - 1.5 * pi) / (0.75 * pi);
    if (std::abs(q - std::round(q)) < 1e-9) continue;  // on a bin edge
    REQUIRE(labels(j) == static_cast<Eigen::Index>(std::floor(q)));
  }
  for (Eigen::Index k : histogram(labels, 4)) REQUIRE(std::abs(k - n / 4.0) < 0.1 * n / 4);
}
