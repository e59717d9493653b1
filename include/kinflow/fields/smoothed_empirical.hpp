#pragma once
/// @file
/// @brief The smoothed empirical field: the Gaussian mixture with equal weights 1/N and one
/// component `N(y_i, s² I)` at every training point (docs/math.md §3). It generalises instead
/// of copying the training set; as `s → 0` it tends to kinflow::empirical_field.

#include <Eigen/Core>
#include <cmath>
#include <utility>

#include "kinflow/core/batch.hpp"
#include "kinflow/core/errors.hpp"
#include "kinflow/fields/gaussian_mixture.hpp"

namespace kinflow {

namespace detail {

/// Equal weights 1/N and standard deviations s of the smoothed empirical field of N points,
/// after checking s and N.
template <class Scalar>
std::pair<Eigen::Matrix<Scalar, Eigen::Dynamic, 1>, Eigen::Matrix<Scalar, Eigen::Dynamic, 1>>
smoothed_parameters(Scalar s, Eigen::Index n) {
  using vector = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;
  require(std::isfinite(s) && s > Scalar(0), "s (smoothing std)", s, "expected a finite standard deviation > 0");
  require(n >= 1, "training set columns (number of points N)", n, "expected a non-empty training set, N >= 1");
  return {vector::Constant(n, Scalar(1) / static_cast<Scalar>(n)), vector::Constant(n, s)};
}

}  // namespace detail

/// The smoothed empirical field: the Gaussian mixture with equal weights 1/N and one
/// component `N(y_i, s² I)` at every training point (a copy of @p training_set is kept).
/// It generalises instead of copying; as `s → 0` it tends to the empirical field.
/// @throws kinflow::invalid_argument unless `s` is finite and > 0, or for bad data.
template <class Derived>
gaussian_mixture_field<typename Derived::Scalar, Derived::RowsAtCompileTime> smoothed_empirical(
    const Eigen::MatrixBase<Derived>& training_set, typename Derived::Scalar s,
    const gaussian_mixture_options<typename Derived::Scalar>& options = {}) {
  auto [weights, stds] = detail::smoothed_parameters(s, training_set.cols());
  return {weights, training_set, stds, options};
}

/// The smoothed empirical field keeping a reference to @p training_set (alive and
/// unchanged while the field is used).
template <class Scalar, int Dim>
gaussian_mixture_field<Scalar, Dim> smoothed_empirical(
    keep_reference_t, const batch<Scalar, Dim>& training_set, Scalar s,
    const gaussian_mixture_options<Scalar>& options = {}) {
  auto [weights, stds] = detail::smoothed_parameters(s, training_set.cols());
  return {keep_reference, weights, training_set, stds, options};
}
template <class Scalar, int Dim>
void smoothed_empirical(keep_reference_t, const batch<Scalar, Dim>&&, Scalar,
                        const gaussian_mixture_options<Scalar>& = {}) = delete;

}  // namespace kinflow
