#pragma once
/// @file
/// @brief The generators of the 2D toy datasets of docs/math.md §9.2, one function per
/// recipe in namespace kinflow::toy: eight_gaussians, moons, checkerboard, two_spirals,
/// pinwheel, circles, rings, swissroll, twenty_five_gaussians.
///
/// The default recipes are those of the FFJORD toy generators (25gaussians: the WGAN-GP
/// one), with every constant a field of an options struct. Each generator returns a
/// `2 × n` batch (one column per point), drawn from `random_stream(seed)` (see
/// random.hpp), so a seed gives the same points with every compiler.
///
/// Recipes that place points on a deterministic grid of angles (moons, circles, rings)
/// shuffle the points with a seeded Fisher–Yates pass, so that any prefix of the columns
/// is a random subset (e.g. a training set and a held-out set split by position). The
/// others draw each point independently, in column order, so their first columns do not
/// depend on n.
///
/// Selecting a recipe by its name, and the exact Gaussian mixtures of the recipes that are
/// one, are in kinflow/data/toy2d.hpp (which includes this header).

#include "kinflow/core/batch.hpp"
#include "kinflow/core/errors.hpp"
#include "kinflow/data/random.hpp"

#include <array>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace kinflow {

namespace detail {

/// Rejects a negative number of points @p n.
inline void data_require_count(Eigen::Index n) {
  require(n >= 0, "n", n, "expected a number of points n >= 0");
}

/// Rejects an option @p name whose value is not finite and > 0.
inline void data_require_positive(std::string_view name, double v) {
  require(std::isfinite(v) && v > 0, name, v, "expected a finite value > 0");
}

/// Rejects an option @p name whose value is not finite and >= 0.
inline void data_require_nonnegative(std::string_view name, double v) {
  require(std::isfinite(v) && v >= 0, name, v, "expected a finite value >= 0");
}

/// Rejects an option @p name whose value is not finite.
inline void data_require_finite(std::string_view name, double v) {
  require(std::isfinite(v), name, v, "expected a finite value");
}

/// Seeded Fisher–Yates shuffle of the columns (j from n-1 down to 1 swaps with
/// index(j + 1)).
inline void data_shuffle_columns(batch<double, 2>& x, random_stream& rng) {
  for (Eigen::Index j = x.cols() - 1; j > 0; --j) {
    const auto k = static_cast<Eigen::Index>(rng.index(static_cast<std::uint64_t>(j) + 1));
    if (k != j) x.col(j).swap(x.col(k));
  }
}

/// The batch as Scalar: moved when Scalar is double, cast otherwise (every recipe
/// computes in double, so a seed gives the same points, rounded, for every Scalar).
template <class Scalar>
[[nodiscard]] batch<Scalar, 2> data_as_scalar(batch<double, 2>&& x) {
  if constexpr (std::is_same_v<Scalar, double>) {
    return std::move(x);
  } else {
    return x.cast<Scalar>();
  }
}

}  // namespace detail

/// Generators of the 2D toy datasets (docs/math.md §9.2) and their options.
namespace toy {

/// Options of eight_gaussians(): the FFJORD "8gaussians".
struct eight_gaussians_options {
  double radius = 4.0;    ///< centres at radius·(cos θ_k, sin θ_k), θ_k = k·2π/components
  double std = 0.5;       ///< standard deviation of the isotropic noise around a centre
  double divisor = 1.414; ///< every point is divided by this (FFJORD's 1.414 ≈ √2)
  int components = 8;     ///< number of centres, evenly spaced on the circle
};

/// 8gaussians: `x = (radius·c_k + std·z) / divisor`, k uniform in {0, …, components-1},
/// `c_k = (cos 2πk/K, sin 2πk/K)`, z ~ N(0, I). With the defaults the centres are FFJORD's
/// (±1, 0), (0, ±1), (±1/√2, ±1/√2) times 4; mean 0 and
/// `E[x xᵀ] = (radius²/2 + std²) / divisor² · I` (for components ≥ 3).
template <class Scalar = double>
[[nodiscard]] batch<Scalar, 2> eight_gaussians(Eigen::Index n, std::uint64_t seed,
                                               const eight_gaussians_options& o = {}) {
  detail::data_require_count(n);
  detail::data_require_nonnegative("eight_gaussians_options::radius", o.radius);
  detail::data_require_nonnegative("eight_gaussians_options::std", o.std);
  detail::data_require_positive("eight_gaussians_options::divisor", o.divisor);
  detail::require(o.components >= 1, "eight_gaussians_options::components", o.components,
                  "expected at least 1 component");
  random_stream rng(seed);
  batch<double, 2> x(2, n);
  for (Eigen::Index j = 0; j < n; ++j) {
    const auto k = static_cast<double>(rng.index(static_cast<std::uint64_t>(o.components)));
    const double theta = 2.0 * std::numbers::pi * k / o.components;
    const double z0 = rng.normal(), z1 = rng.normal();
    x(0, j) = (o.radius * std::cos(theta) + o.std * z0) / o.divisor;
    x(1, j) = (o.radius * std::sin(theta) + o.std * z1) / o.divisor;
  }
  return detail::data_as_scalar<Scalar>(std::move(x));
}

/// Options of twenty_five_gaussians(): the WGAN-GP "25gaussians".
struct twenty_five_gaussians_options {
  int grid = 5;           ///< centres on a grid × grid lattice (odd or even)
  double spacing = 2.0;   ///< distance between neighbouring centres
  double std = 0.05;      ///< standard deviation of the isotropic noise around a centre
  double divisor = 2.828; ///< every point is divided by this (≈ 2√2)
};

/// 25gaussians: `x = (spacing·(a - (grid-1)/2, b - (grid-1)/2) + std·z) / divisor`, with
/// a, b uniform in {0, …, grid-1} and z ~ N(0, I). Defaults: centres (2i, 2j),
/// i, j ∈ {-2, …, 2}; mean 0 and per-axis variance
/// `(spacing²·(grid² - 1)/12 + std²) / divisor²`.
template <class Scalar = double>
[[nodiscard]] batch<Scalar, 2> twenty_five_gaussians(
    Eigen::Index n, std::uint64_t seed, const twenty_five_gaussians_options& o = {}) {
  detail::data_require_count(n);
  detail::require(o.grid >= 1, "twenty_five_gaussians_options::grid", o.grid,
                  "expected a grid of at least 1 x 1 centres");
  detail::data_require_nonnegative("twenty_five_gaussians_options::spacing", o.spacing);
  detail::data_require_nonnegative("twenty_five_gaussians_options::std", o.std);
  detail::data_require_positive("twenty_five_gaussians_options::divisor", o.divisor);
  random_stream rng(seed);
  batch<double, 2> x(2, n);
  const double mid = 0.5 * (o.grid - 1);
  for (Eigen::Index j = 0; j < n; ++j) {
    const auto a = static_cast<double>(rng.index(static_cast<std::uint64_t>(o.grid)));
    const auto b = static_cast<double>(rng.index(static_cast<std::uint64_t>(o.grid)));
    const double z0 = rng.normal(), z1 = rng.normal();
    x(0, j) = (o.spacing * (a - mid) + o.std * z0) / o.divisor;
    x(1, j) = (o.spacing * (b - mid) + o.std * z1) / o.divisor;
  }
  return detail::data_as_scalar<Scalar>(std::move(x));
}

/// Options of moons(): scikit-learn's make_moons as FFJORD uses it.
struct moons_options {
  double noise = 0.1;                  ///< std of the Gaussian noise, added before scaling
  double scale = 2.0;                  ///< points are multiplied by this …
  std::array<double, 2> offset{-1.0, -0.2}; ///< … and then shifted by this
};

/// moons: ⌊n/2⌋ points on the upper arc `(cos s, sin s)` and
/// n - ⌊n/2⌋ on the lower arc `(1 - cos s, 1/2 - sin s)`, s evenly spaced on [0, π]
/// (endpoints included, as numpy's linspace), plus `noise·z`; then
/// `x = scale·(arc + noise·z) + offset`, and the columns are shuffled.
template <class Scalar = double>
[[nodiscard]] batch<Scalar, 2> moons(Eigen::Index n, std::uint64_t seed,
                                     const moons_options& o = {}) {
  detail::data_require_count(n);
  detail::data_require_nonnegative("moons_options::noise", o.noise);
  detail::data_require_finite("moons_options::scale", o.scale);
  detail::data_require_finite("moons_options::offset[0]", o.offset[0]);
  detail::data_require_finite("moons_options::offset[1]", o.offset[1]);
  random_stream rng(seed);
  batch<double, 2> x(2, n);
  const Eigen::Index n_upper = n / 2, n_lower = n - n_upper;
  auto angle = [](Eigen::Index i, Eigen::Index count) {
    return count > 1 ? std::numbers::pi * static_cast<double>(i) / static_cast<double>(count - 1)
                     : 0.0;
  };
  for (Eigen::Index i = 0; i < n_upper; ++i) {
    const double s = angle(i, n_upper);
    x(0, i) = std::cos(s);
    x(1, i) = std::sin(s);
  }
  for (Eigen::Index i = 0; i < n_lower; ++i) {
    const double s = angle(i, n_lower);
    x(0, n_upper + i) = 1.0 - std::cos(s);
    x(1, n_upper + i) = 0.5 - std::sin(s);
  }
  detail::data_shuffle_columns(x, rng);
  for (Eigen::Index j = 0; j < n; ++j) {
    const double z0 = rng.normal(), z1 = rng.normal();
    x(0, j) = o.scale * (x(0, j) + o.noise * z0) + o.offset[0];
    x(1, j) = o.scale * (x(1, j) + o.noise * z1) + o.offset[1];
  }
  return detail::data_as_scalar<Scalar>(std::move(x));
}

/// Options of checkerboard(): FFJORD's "checkerboard".
struct checkerboard_options {
  double half_width = 4.0; ///< the board is [-half_width, half_width]²
  int cells = 4;           ///< cells per side (even); half of the cells are filled
};

/// checkerboard: uniform on the filled cells of a `cells × cells` board covering
/// `[-half_width, half_width]²`, cell (a, b) (counted from the lower left corner) filled
/// when a + b is even. A point picks a column a uniformly, a filled row b uniformly among
/// the cells/2 of that column, and a uniform position inside the cell. Defaults: FFJORD's
/// board of 2 × 2 squares on [-4, 4]²; mean 0, per-axis variance half_width²/3.
template <class Scalar = double>
[[nodiscard]] batch<Scalar, 2> checkerboard(Eigen::Index n, std::uint64_t seed,
                                            const checkerboard_options& o = {}) {
  detail::data_require_count(n);
  detail::data_require_positive("checkerboard_options::half_width", o.half_width);
  detail::require(o.cells >= 2 && o.cells % 2 == 0, "checkerboard_options::cells", o.cells,
                  "expected an even number of cells per side >= 2");
  random_stream rng(seed);
  batch<double, 2> x(2, n);
  const double w = 2.0 * o.half_width / o.cells;
  for (Eigen::Index j = 0; j < n; ++j) {
    const auto a = rng.index(static_cast<std::uint64_t>(o.cells));
    const auto b = 2 * rng.index(static_cast<std::uint64_t>(o.cells / 2)) + (a % 2);
    const double u = rng.uniform(), v = rng.uniform();
    x(0, j) = -o.half_width + (static_cast<double>(a) + u) * w;
    x(1, j) = -o.half_width + (static_cast<double>(b) + v) * w;
  }
  return detail::data_as_scalar<Scalar>(std::move(x));
}

/// Options of two_spirals(): FFJORD's "2spirals".
struct two_spirals_options {
  double turn_degrees = 540.0; ///< the spiral parameter s runs over [0, turn_degrees·π/180]
  double jitter = 0.5;         ///< uniform jitter on [0, jitter) added to each coordinate
  double divisor = 3.0;        ///< points are divided by this …
  double noise = 0.1;          ///< … and then get Gaussian noise of this std
};

/// 2spirals: `s = √u · turn_degrees·π/180`, one arm `(-s cos s + jitter·u₁, s sin s +
/// jitter·u₂)`, the other its negation (arm chosen by a fair coin), then
/// `x = arm / divisor + noise·z`.
template <class Scalar = double>
[[nodiscard]] batch<Scalar, 2> two_spirals(Eigen::Index n, std::uint64_t seed,
                                           const two_spirals_options& o = {}) {
  detail::data_require_count(n);
  detail::data_require_positive("two_spirals_options::turn_degrees", o.turn_degrees);
  detail::data_require_nonnegative("two_spirals_options::jitter", o.jitter);
  detail::data_require_positive("two_spirals_options::divisor", o.divisor);
  detail::data_require_nonnegative("two_spirals_options::noise", o.noise);
  random_stream rng(seed);
  batch<double, 2> x(2, n);
  const double s_max = o.turn_degrees * std::numbers::pi / 180.0;
  for (Eigen::Index j = 0; j < n; ++j) {
    const double sign = rng.index(2) == 0 ? 1.0 : -1.0;
    const double s = std::sqrt(rng.uniform()) * s_max;
    const double px = -std::cos(s) * s + o.jitter * rng.uniform();
    const double py = std::sin(s) * s + o.jitter * rng.uniform();
    const double z0 = rng.normal(), z1 = rng.normal();
    x(0, j) = sign * px / o.divisor + o.noise * z0;
    x(1, j) = sign * py / o.divisor + o.noise * z1;
  }
  return detail::data_as_scalar<Scalar>(std::move(x));
}

/// Options of pinwheel(): FFJORD's "pinwheel".
struct pinwheel_options {
  double radial_std = 0.3;     ///< std of the radial coordinate r around 1
  double tangential_std = 0.1; ///< std of the tangential coordinate
  int arms = 5;                ///< number of arms (classes), evenly spaced in angle
  double rate = 0.25;          ///< twist: the angle grows by rate·exp(r)
  double scale = 2.0;          ///< points are multiplied by this
};

/// pinwheel: arm k uniform in {0, …, arms-1}, `r = 1 + radial_std·z₀`,
/// `q = tangential_std·z₁`, `φ = 2πk/arms + rate·exp(r)`, and
/// `x = scale·(r cos φ + q sin φ, -r sin φ + q cos φ)` (FFJORD's row-vector rotation).
template <class Scalar = double>
[[nodiscard]] batch<Scalar, 2> pinwheel(Eigen::Index n, std::uint64_t seed,
                                        const pinwheel_options& o = {}) {
  detail::data_require_count(n);
  detail::data_require_nonnegative("pinwheel_options::radial_std", o.radial_std);
  detail::data_require_nonnegative("pinwheel_options::tangential_std", o.tangential_std);
  detail::require(o.arms >= 1, "pinwheel_options::arms", o.arms, "expected at least 1 arm");
  detail::data_require_finite("pinwheel_options::rate", o.rate);
  detail::data_require_finite("pinwheel_options::scale", o.scale);
  random_stream rng(seed);
  batch<double, 2> x(2, n);
  for (Eigen::Index j = 0; j < n; ++j) {
    const auto k = static_cast<double>(rng.index(static_cast<std::uint64_t>(o.arms)));
    const double r = 1.0 + o.radial_std * rng.normal();
    const double q = o.tangential_std * rng.normal();
    const double phi = 2.0 * std::numbers::pi * k / o.arms + o.rate * std::exp(r);
    const double c = std::cos(phi), s = std::sin(phi);
    x(0, j) = o.scale * (r * c + q * s);
    x(1, j) = o.scale * (-r * s + q * c);
  }
  return detail::data_as_scalar<Scalar>(std::move(x));
}

/// Options of circles(): scikit-learn's make_circles as FFJORD uses it.
struct circles_options {
  double factor = 0.5; ///< radius of the inner circle relative to the outer one (< 1)
  double noise = 0.08; ///< std of the Gaussian noise, added before scaling
  double scale = 3.0;  ///< points are multiplied by this
};

/// circles: ⌊n/2⌋ points on the unit circle and n - ⌊n/2⌋ on the circle of radius factor,
/// at evenly spaced angles 2πi/count (no repeated endpoint), then
/// `x = scale·(circle + noise·z)`, columns shuffled.
template <class Scalar = double>
[[nodiscard]] batch<Scalar, 2> circles(Eigen::Index n, std::uint64_t seed,
                                       const circles_options& o = {}) {
  detail::data_require_count(n);
  detail::data_require_positive("circles_options::factor", o.factor);
  detail::data_require_nonnegative("circles_options::noise", o.noise);
  detail::data_require_finite("circles_options::scale", o.scale);
  random_stream rng(seed);
  batch<double, 2> x(2, n);
  const Eigen::Index n_outer = n / 2, n_inner = n - n_outer;
  for (Eigen::Index i = 0; i < n_outer; ++i) {
    const double s = 2.0 * std::numbers::pi * static_cast<double>(i) / static_cast<double>(n_outer);
    x(0, i) = std::cos(s);
    x(1, i) = std::sin(s);
  }
  for (Eigen::Index i = 0; i < n_inner; ++i) {
    const double s = 2.0 * std::numbers::pi * static_cast<double>(i) / static_cast<double>(n_inner);
    x(0, n_outer + i) = o.factor * std::cos(s);
    x(1, n_outer + i) = o.factor * std::sin(s);
  }
  detail::data_shuffle_columns(x, rng);
  for (Eigen::Index j = 0; j < n; ++j) {
    const double z0 = rng.normal(), z1 = rng.normal();
    x(0, j) = o.scale * (x(0, j) + o.noise * z0);
    x(1, j) = o.scale * (x(1, j) + o.noise * z1);
  }
  return detail::data_as_scalar<Scalar>(std::move(x));
}

/// Options of rings(): FFJORD's "rings".
struct rings_options {
  int rings = 4;       ///< concentric circles of radii scale·(rings - k)/rings, k = 0 … rings-1
  double scale = 3.0;  ///< radius of the outer ring
  double noise = 0.08; ///< std of the Gaussian noise, added after scaling
};

/// rings: the points are split over the rings as evenly as possible (the innermost ring
/// takes the remainder, as in FFJORD), placed at evenly spaced angles on each ring
/// (no repeated endpoint), shuffled, and get `noise·z`. Defaults: radii 3, 2.25, 1.5, 0.75.
template <class Scalar = double>
[[nodiscard]] batch<Scalar, 2> rings(Eigen::Index n, std::uint64_t seed,
                                     const rings_options& o = {}) {
  detail::data_require_count(n);
  detail::require(o.rings >= 1, "rings_options::rings", o.rings, "expected at least 1 ring");
  detail::data_require_finite("rings_options::scale", o.scale);
  detail::data_require_nonnegative("rings_options::noise", o.noise);
  random_stream rng(seed);
  batch<double, 2> x(2, n);
  const Eigen::Index per_ring = n / o.rings;
  Eigen::Index col = 0;
  for (int k = 0; k < o.rings; ++k) {
    const Eigen::Index count = (k == o.rings - 1) ? n - per_ring * (o.rings - 1) : per_ring;
    const double radius = o.scale * static_cast<double>(o.rings - k) / o.rings;
    for (Eigen::Index i = 0; i < count; ++i, ++col) {
      const double s = 2.0 * std::numbers::pi * static_cast<double>(i) / static_cast<double>(count);
      x(0, col) = radius * std::cos(s);
      x(1, col) = radius * std::sin(s);
    }
  }
  detail::data_shuffle_columns(x, rng);
  for (Eigen::Index j = 0; j < n; ++j) {
    const double z0 = rng.normal(), z1 = rng.normal();
    x(0, j) += o.noise * z0;
    x(1, j) += o.noise * z1;
  }
  return detail::data_as_scalar<Scalar>(std::move(x));
}

/// Options of swissroll(): scikit-learn's make_swiss_roll (first and third coordinates)
/// as FFJORD uses it.
struct swissroll_options {
  double t_min = 1.5 * std::numbers::pi; ///< the roll parameter t is uniform on
  double t_max = 4.5 * std::numbers::pi; ///< [t_min, t_max)
  double noise = 1.0;   ///< std of the Gaussian noise, added before dividing
  double divisor = 5.0; ///< points are divided by this
};

/// swissroll: t uniform on [t_min, t_max), `x = (t cos t + noise·z₀, t sin t + noise·z₁) /
/// divisor`.
template <class Scalar = double>
[[nodiscard]] batch<Scalar, 2> swissroll(Eigen::Index n, std::uint64_t seed,
                                         const swissroll_options& o = {}) {
  detail::data_require_count(n);
  detail::data_require_finite("swissroll_options::t_min", o.t_min);
  detail::require(std::isfinite(o.t_max) && o.t_max > o.t_min, "swissroll_options::t_max",
                  o.t_max, "expected a finite value > t_min");
  detail::data_require_nonnegative("swissroll_options::noise", o.noise);
  detail::data_require_positive("swissroll_options::divisor", o.divisor);
  random_stream rng(seed);
  batch<double, 2> x(2, n);
  for (Eigen::Index j = 0; j < n; ++j) {
    const double t = rng.uniform(o.t_min, o.t_max);
    const double z0 = rng.normal(), z1 = rng.normal();
    x(0, j) = (t * std::cos(t) + o.noise * z0) / o.divisor;
    x(1, j) = (t * std::sin(t) + o.noise * z1) / o.divisor;
  }
  return detail::data_as_scalar<Scalar>(std::move(x));
}

}  // namespace toy

}  // namespace kinflow
