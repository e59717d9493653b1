#pragma once
/// @file
/// @brief The generators of the 2D toy datasets of docs/math.md §9.2 that place points on a
/// deterministic grid of angles and then shuffle them, in namespace kinflow::toy: moons,
/// circles, rings.
///
/// The shuffle is a seeded Fisher–Yates pass over the columns, so that any prefix of the
/// columns is a random subset (e.g. a training set and a held-out set split by position);
/// the noise is drawn after it, column by column. Labels, when asked for, are permuted with
/// the points. Seeding, the Scalar type and the labels work as for the other generators
/// (kinflow/data/toy2d_generators.hpp, which documents them).

#include "kinflow/core/batch.hpp"
#include "kinflow/core/errors.hpp"
#include "kinflow/data/random.hpp"
#include "kinflow/data/toy2d_generators.hpp"

#include <array>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <utility>

namespace kinflow::toy {

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
/// Label: the arc, 0 upper, 1 lower (K = 2).
template <class Scalar = double>
[[nodiscard]] batch<Scalar, 2> moons(Eigen::Index n, std::uint64_t seed,
                                     const moons_options& o = {},
                                     class_labels* labels = nullptr) {
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
  detail::data_size_labels(labels, n);
  if (labels != nullptr) {
    labels->head(n_upper).setZero();
    labels->tail(n_lower).setOnes();
  }
  detail::data_shuffle_columns(x, rng, labels);
  for (Eigen::Index j = 0; j < n; ++j) {
    const double z0 = rng.normal(), z1 = rng.normal();
    x(0, j) = o.scale * (x(0, j) + o.noise * z0) + o.offset[0];
    x(1, j) = o.scale * (x(1, j) + o.noise * z1) + o.offset[1];
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
/// `x = scale·(circle + noise·z)`, columns shuffled. Label: the circle, 0 the unit
/// (outer) one, 1 the one of radius factor (K = 2).
template <class Scalar = double>
[[nodiscard]] batch<Scalar, 2> circles(Eigen::Index n, std::uint64_t seed,
                                       const circles_options& o = {},
                                       class_labels* labels = nullptr) {
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
  detail::data_size_labels(labels, n);
  if (labels != nullptr) {
    labels->head(n_outer).setZero();
    labels->tail(n_inner).setOnes();
  }
  detail::data_shuffle_columns(x, rng, labels);
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
/// Label: the ring k, of radius scale·(rings - k)/rings, 0 the outer one (K = rings).
template <class Scalar = double>
[[nodiscard]] batch<Scalar, 2> rings(Eigen::Index n, std::uint64_t seed,
                                     const rings_options& o = {},
                                     class_labels* labels = nullptr) {
  detail::data_require_count(n);
  detail::require(o.rings >= 1, "rings_options::rings", o.rings, "expected at least 1 ring");
  detail::data_require_finite("rings_options::scale", o.scale);
  detail::data_require_nonnegative("rings_options::noise", o.noise);
  random_stream rng(seed);
  batch<double, 2> x(2, n);
  const Eigen::Index per_ring = n / o.rings;
  Eigen::Index col = 0;
  detail::data_size_labels(labels, n);
  for (int k = 0; k < o.rings; ++k) {
    const Eigen::Index count = (k == o.rings - 1) ? n - per_ring * (o.rings - 1) : per_ring;
    const double radius = o.scale * static_cast<double>(o.rings - k) / o.rings;
    for (Eigen::Index i = 0; i < count; ++i, ++col) {
      const double s = 2.0 * std::numbers::pi * static_cast<double>(i) / static_cast<double>(count);
      x(0, col) = radius * std::cos(s);
      x(1, col) = radius * std::sin(s);
      if (labels != nullptr) (*labels)(col) = k;
    }
  }
  detail::data_shuffle_columns(x, rng, labels);
  for (Eigen::Index j = 0; j < n; ++j) {
    const double z0 = rng.normal(), z1 = rng.normal();
    x(0, j) += o.noise * z0;
    x(1, j) += o.noise * z1;
  }
  return detail::data_as_scalar<Scalar>(std::move(x));
}

}  // namespace kinflow::toy
