#pragma once
/// @file
/// @brief The generators of the 2D toy datasets of docs/math.md §9.2 that draw each point
/// independently, one function per recipe in namespace kinflow::toy: eight_gaussians,
/// checkerboard, two_spirals, pinwheel, swissroll, twenty_five_gaussians; and what every
/// generator shares (the shuffled recipes moons, circles and rings are in
/// toy2d_shuffled.hpp, which includes this header).
///
/// The default recipes are those of the FFJORD toy generators (25gaussians: the WGAN-GP
/// one), with every constant a field of an options struct. Each generator returns a
/// `2 × n` batch (one column per point), drawn from `random_stream(seed)` (see
/// random.hpp), so a seed gives the same points with every compiler.
///
/// The recipes here draw each point independently, in column order, so their first
/// columns do not depend on n. Those that place points on a deterministic grid of angles
/// (moons, circles, rings) shuffle the points with a seeded Fisher–Yates pass instead
/// (data_shuffle_columns below), so that any prefix of the columns is a random subset.
///
/// Labels: every generator takes an optional last argument `class_labels* labels`. When it
/// is not null it receives n entries, entry j the natural class of column j (the recipe's
/// component, arc, arm, ring or cell, documented with each generator, in {0, …, K-1}; K
/// is toy::class_count(options), in toy2d.hpp). The points drawn for a seed are the same
/// with or without labels, and the shuffled recipes permute the labels with the points.
///
/// Selecting a recipe by its name, and the exact Gaussian mixtures of the recipes that are
/// one, are in kinflow/data/toy2d.hpp (which includes both generator headers).

#include "kinflow/core/batch.hpp"
#include "kinflow/core/errors.hpp"
#include "kinflow/data/random.hpp"

#include <algorithm>
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
/// index(j + 1)); @p labels, when not null, is permuted the same way (same draws).
inline void data_shuffle_columns(batch<double, 2>& x, random_stream& rng,
                                 class_labels* labels = nullptr) {
  for (Eigen::Index j = x.cols() - 1; j > 0; --j) {
    const auto k = static_cast<Eigen::Index>(rng.index(static_cast<std::uint64_t>(j) + 1));
    if (k == j) continue;
    x.col(j).swap(x.col(k));
    if (labels != nullptr) std::swap((*labels)(j), (*labels)(k));
  }
}

/// Sizes @p labels (when not null) to the @p n points of a recipe.
inline void data_size_labels(class_labels* labels, Eigen::Index n) {
  if (labels != nullptr) labels->resize(n);
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
/// Label: the component k (K = components).
template <class Scalar = double>
[[nodiscard]] batch<Scalar, 2> eight_gaussians(Eigen::Index n, std::uint64_t seed,
                                               const eight_gaussians_options& o = {},
                                               class_labels* labels = nullptr) {
  detail::data_require_count(n);
  detail::data_require_nonnegative("eight_gaussians_options::radius", o.radius);
  detail::data_require_nonnegative("eight_gaussians_options::std", o.std);
  detail::data_require_positive("eight_gaussians_options::divisor", o.divisor);
  detail::require(o.components >= 1, "eight_gaussians_options::components", o.components,
                  "expected at least 1 component");
  random_stream rng(seed);
  batch<double, 2> x(2, n);
  detail::data_size_labels(labels, n);
  for (Eigen::Index j = 0; j < n; ++j) {
    const auto k = rng.index(static_cast<std::uint64_t>(o.components));
    if (labels != nullptr) (*labels)(j) = static_cast<Eigen::Index>(k);
    const double theta = 2.0 * std::numbers::pi * static_cast<double>(k) / o.components;
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
/// `(spacing²·(grid² - 1)/12 + std²) / divisor²`. Label: the component `a·grid + b`
/// (K = grid², numbered as in twenty_five_gaussians_mixture()).
template <class Scalar = double>
[[nodiscard]] batch<Scalar, 2> twenty_five_gaussians(
    Eigen::Index n, std::uint64_t seed, const twenty_five_gaussians_options& o = {},
    class_labels* labels = nullptr) {
  detail::data_require_count(n);
  detail::require(o.grid >= 1, "twenty_five_gaussians_options::grid", o.grid,
                  "expected a grid of at least 1 x 1 centres");
  detail::data_require_nonnegative("twenty_five_gaussians_options::spacing", o.spacing);
  detail::data_require_nonnegative("twenty_five_gaussians_options::std", o.std);
  detail::data_require_positive("twenty_five_gaussians_options::divisor", o.divisor);
  random_stream rng(seed);
  batch<double, 2> x(2, n);
  const double mid = 0.5 * (o.grid - 1);
  detail::data_size_labels(labels, n);
  for (Eigen::Index j = 0; j < n; ++j) {
    const auto a = rng.index(static_cast<std::uint64_t>(o.grid));
    const auto b = rng.index(static_cast<std::uint64_t>(o.grid));
    if (labels != nullptr)
      (*labels)(j) = static_cast<Eigen::Index>(a) * o.grid + static_cast<Eigen::Index>(b);
    const double z0 = rng.normal(), z1 = rng.normal();
    x(0, j) = (o.spacing * (static_cast<double>(a) - mid) + o.std * z0) / o.divisor;
    x(1, j) = (o.spacing * (static_cast<double>(b) - mid) + o.std * z1) / o.divisor;
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
/// Label: the filled cell, `a·(cells/2) + ⌊b/2⌋` (every filled cell has the same colour;
/// K = cells²/2, 8 by default).
template <class Scalar = double>
[[nodiscard]] batch<Scalar, 2> checkerboard(Eigen::Index n, std::uint64_t seed,
                                            const checkerboard_options& o = {},
                                            class_labels* labels = nullptr) {
  detail::data_require_count(n);
  detail::data_require_positive("checkerboard_options::half_width", o.half_width);
  detail::require(o.cells >= 2 && o.cells % 2 == 0, "checkerboard_options::cells", o.cells,
                  "expected an even number of cells per side >= 2");
  random_stream rng(seed);
  batch<double, 2> x(2, n);
  const double w = 2.0 * o.half_width / o.cells;
  detail::data_size_labels(labels, n);
  for (Eigen::Index j = 0; j < n; ++j) {
    const auto a = rng.index(static_cast<std::uint64_t>(o.cells));
    const auto row = rng.index(static_cast<std::uint64_t>(o.cells / 2));
    const auto b = 2 * row + (a % 2);
    if (labels != nullptr)
      (*labels)(j) = static_cast<Eigen::Index>(a) * (o.cells / 2) + static_cast<Eigen::Index>(row);
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
/// `x = arm / divisor + noise·z`. Label: the arm, 0 the first, 1 its negation (K = 2).
template <class Scalar = double>
[[nodiscard]] batch<Scalar, 2> two_spirals(Eigen::Index n, std::uint64_t seed,
                                           const two_spirals_options& o = {},
                                           class_labels* labels = nullptr) {
  detail::data_require_count(n);
  detail::data_require_positive("two_spirals_options::turn_degrees", o.turn_degrees);
  detail::data_require_nonnegative("two_spirals_options::jitter", o.jitter);
  detail::data_require_positive("two_spirals_options::divisor", o.divisor);
  detail::data_require_nonnegative("two_spirals_options::noise", o.noise);
  random_stream rng(seed);
  batch<double, 2> x(2, n);
  const double s_max = o.turn_degrees * std::numbers::pi / 180.0;
  detail::data_size_labels(labels, n);
  for (Eigen::Index j = 0; j < n; ++j) {
    const auto arm = rng.index(2);
    if (labels != nullptr) (*labels)(j) = static_cast<Eigen::Index>(arm);
    const double sign = arm == 0 ? 1.0 : -1.0;
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
/// Label: the arm k (K = arms).
template <class Scalar = double>
[[nodiscard]] batch<Scalar, 2> pinwheel(Eigen::Index n, std::uint64_t seed,
                                        const pinwheel_options& o = {},
                                        class_labels* labels = nullptr) {
  detail::data_require_count(n);
  detail::data_require_nonnegative("pinwheel_options::radial_std", o.radial_std);
  detail::data_require_nonnegative("pinwheel_options::tangential_std", o.tangential_std);
  detail::require(o.arms >= 1, "pinwheel_options::arms", o.arms, "expected at least 1 arm");
  detail::data_require_finite("pinwheel_options::rate", o.rate);
  detail::data_require_finite("pinwheel_options::scale", o.scale);
  random_stream rng(seed);
  batch<double, 2> x(2, n);
  detail::data_size_labels(labels, n);
  for (Eigen::Index j = 0; j < n; ++j) {
    const auto k = rng.index(static_cast<std::uint64_t>(o.arms));
    if (labels != nullptr) (*labels)(j) = static_cast<Eigen::Index>(k);
    const double r = 1.0 + o.radial_std * rng.normal();
    const double q = o.tangential_std * rng.normal();
    const double phi =
        2.0 * std::numbers::pi * static_cast<double>(k) / o.arms + o.rate * std::exp(r);
    const double c = std::cos(phi), s = std::sin(phi);
    x(0, j) = o.scale * (r * c + q * s);
    x(1, j) = o.scale * (-r * s + q * c);
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
  int classes = 4;      ///< labels only: the number of equal bins of [t_min, t_max)
};

/// swissroll: t uniform on [t_min, t_max), `x = (t cos t + noise·z₀, t sin t + noise·z₁) /
/// divisor`. The roll has no natural class; its label is the position along the roll: the
/// bin `⌊classes·(t - t_min)/(t_max - t_min)⌋` of t among `classes` equal bins, 0 the
/// innermost (K = classes, 4 by default).
template <class Scalar = double>
[[nodiscard]] batch<Scalar, 2> swissroll(Eigen::Index n, std::uint64_t seed,
                                         const swissroll_options& o = {},
                                         class_labels* labels = nullptr) {
  detail::data_require_count(n);
  detail::data_require_finite("swissroll_options::t_min", o.t_min);
  detail::require(std::isfinite(o.t_max) && o.t_max > o.t_min, "swissroll_options::t_max",
                  o.t_max, "expected a finite value > t_min");
  detail::data_require_nonnegative("swissroll_options::noise", o.noise);
  detail::data_require_positive("swissroll_options::divisor", o.divisor);
  detail::require(o.classes >= 1, "swissroll_options::classes", o.classes,
                  "expected at least 1 class");
  random_stream rng(seed);
  batch<double, 2> x(2, n);
  detail::data_size_labels(labels, n);
  for (Eigen::Index j = 0; j < n; ++j) {
    const double t = rng.uniform(o.t_min, o.t_max);
    if (labels != nullptr) {
      const double bin = std::floor(o.classes * (t - o.t_min) / (o.t_max - o.t_min));
      (*labels)(j) = std::clamp(static_cast<Eigen::Index>(bin), Eigen::Index{0},
                                static_cast<Eigen::Index>(o.classes - 1));
    }
    const double z0 = rng.normal(), z1 = rng.normal();
    x(0, j) = (t * std::cos(t) + o.noise * z0) / o.divisor;
    x(1, j) = (t * std::sin(t) + o.noise * z1) / o.divisor;
  }
  return detail::data_as_scalar<Scalar>(std::move(x));
}

}  // namespace toy

}  // namespace kinflow
