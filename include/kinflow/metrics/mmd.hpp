#pragma once
/// @file
/// @brief Maximum mean discrepancy (docs/math.md §10.4): the unbiased MMD² between two point
/// sets with a sum of Gaussian (RBF) kernels, whose bandwidths are given or chosen by the
/// median heuristic, and always reported.
///
/// With `k(a, b) = Σ_s exp(-‖a - b‖² / (2 σ_s²))`, x_1…x_n and y_1…y_m (n, m ≥ 2):
///
///     MMD²_u = 1/(n(n-1)) Σ_{i≠j} k(x_i, x_j) + 1/(m(m-1)) Σ_{i≠j} k(y_i, y_j)
///              - 2/(n m) Σ_{i,j} k(x_i, y_j)
///
/// (Gretton et al. 2012, eq. 3): its expectation is exactly the population MMD², so it is
/// 0 on average, and can be slightly negative, for two samples of one distribution.
///
/// **Median heuristic.** Without given bandwidths, `σ_s = factor_s · median‖a - b‖` over
/// the distinct pairs of a pooled subsample: up to `median_max_points / 2` columns of each
/// set, evenly spaced (all of them for small sets). Cost O((n + m)² d) per bandwidth.

#include "kinflow/core/batch.hpp"
#include "kinflow/core/errors.hpp"

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

namespace kinflow {

/// Options of mmd2().
struct mmd_options {
  /// Kernel bandwidths σ_s; when empty they are median_distance × bandwidth_factors.
  std::vector<double> bandwidths{};
  /// Multipliers of the median pairwise distance (used when bandwidths is empty).
  std::vector<double> bandwidth_factors{0.25, 0.5, 1.0, 2.0, 4.0};
  /// Largest pooled subsample for the median heuristic (half from each set).
  Eigen::Index median_max_points = 1000;
};

/// Result of mmd2().
struct mmd_result {
  double mmd2 = 0;               ///< the unbiased MMD²_u (may be slightly negative)
  std::vector<double> bandwidths; ///< the σ_s used
  double median_distance = 0;    ///< median pairwise distance (0 when bandwidths were given)
};

namespace detail {

// Σ over pairs of Σ_s exp(-‖a - b‖² γ_s), γ_s = 1/(2σ_s²); within one set (same = true)
// over i < j only.
template <class A, class B>
[[nodiscard]] long double metrics_kernel_sum(const A& a, const B& b, const std::vector<double>& gamma,
                                             bool same) {
  long double total = 0;
  for (Eigen::Index j = 0; j < b.cols(); ++j) {
    double col = 0;
    const Eigen::Index i_end = same ? j : a.cols();
    for (Eigen::Index i = 0; i < i_end; ++i) {
      const double r2 = (a.col(i) - b.col(j)).squaredNorm();
      for (double g : gamma) col += std::exp(-g * r2);
    }
    total += col;
  }
  return total;
}

}  // namespace detail

/// Median of the pairwise Euclidean distances over the distinct pairs of a pooled
/// subsample of @p x and @p y (up to max_points / 2 evenly spaced columns of each).
template <class DerivedX, class DerivedY>
[[nodiscard]] double median_pairwise_distance(const Eigen::MatrixBase<DerivedX>& x,
                                              const Eigen::MatrixBase<DerivedY>& y,
                                              Eigen::Index max_points = 1000) {
  detail::require_dimension("median_pairwise_distance: dimension of y", y.rows(), x.rows());
  detail::require(max_points >= 2, "median_max_points", max_points, "expected at least 2");
  std::vector<Eigen::VectorXd> pool;
  // (each set evaluated once: a column of an expression would copy the whole expression)
  auto take = [&](const auto& set, Eigen::Index limit) {
    const auto& s = set.eval();
    const Eigen::Index count = std::min(s.cols(), limit);
    for (Eigen::Index k = 0; k < count; ++k) {
      // Evenly spaced columns: k·cols/count (exact in integers).
      pool.push_back(s.col(k * s.cols() / count).template cast<double>());
    }
  };
  take(x, max_points / 2);
  take(y, max_points - max_points / 2);
  detail::require(pool.size() >= 2, "points", pool.size(),
                  "expected at least 2 points for a median distance");
  std::vector<double> dist;
  dist.reserve(pool.size() * (pool.size() - 1) / 2);
  for (std::size_t j = 0; j < pool.size(); ++j)
    for (std::size_t i = 0; i < j; ++i) dist.push_back((pool[i] - pool[j]).norm());
  const std::size_t mid = dist.size() / 2;
  std::nth_element(dist.begin(), dist.begin() + static_cast<std::ptrdiff_t>(mid), dist.end());
  double med = dist[mid];
  if (dist.size() % 2 == 0) {
    const double below = *std::max_element(dist.begin(), dist.begin() + static_cast<std::ptrdiff_t>(mid));
    med = 0.5 * (med + below);
  }
  return med;
}

/// Unbiased MMD² between @p x (`d × n`) and @p y (`d × m`), n, m ≥ 2, with a sum of RBF
/// kernels (see the file comment); the bandwidths used are returned with the value.
/// @throws kinflow::invalid_argument if a set has fewer than 2 points, a bandwidth or
///   factor is not finite and > 0, or the median distance is 0 (give bandwidths then);
///   kinflow::dimension_mismatch if the dimensions differ.
template <class DerivedX, class DerivedY>
[[nodiscard]] mmd_result mmd2(const Eigen::MatrixBase<DerivedX>& x,
                              const Eigen::MatrixBase<DerivedY>& y, const mmd_options& options = {}) {
  detail::require_dimension("mmd2: dimension of y", y.rows(), x.rows());
  detail::require(x.cols() >= 2, "x.cols()", x.cols(), "expected at least 2 points (unbiased MMD)");
  detail::require(y.cols() >= 2, "y.cols()", y.cols(), "expected at least 2 points (unbiased MMD)");
  mmd_result r;
  if (options.bandwidths.empty()) {
    detail::require(!options.bandwidth_factors.empty(), "mmd_options::bandwidth_factors",
                    "(empty)", "expected at least one factor when no bandwidths are given");
    for (double f : options.bandwidth_factors)
      detail::require(std::isfinite(f) && f > 0, "mmd_options::bandwidth_factors[]", f,
                      "expected finite factors > 0");
    r.median_distance = median_pairwise_distance(x, y, options.median_max_points);
    detail::require(r.median_distance > 0, "median pairwise distance", r.median_distance,
                    "expected > 0 (all points coincide); give mmd_options::bandwidths");
    for (double f : options.bandwidth_factors) r.bandwidths.push_back(f * r.median_distance);
  } else {
    for (double s : options.bandwidths)
      detail::require(std::isfinite(s) && s > 0, "mmd_options::bandwidths[]", s,
                      "expected finite bandwidths > 0");
    r.bandwidths = options.bandwidths;
  }
  std::vector<double> gamma;
  for (double s : r.bandwidths) gamma.push_back(1.0 / (2.0 * s * s));
  const Eigen::MatrixXd xd = x.template cast<double>(), yd = y.template cast<double>();
  const auto n = static_cast<long double>(xd.cols()), m = static_cast<long double>(yd.cols());
  const long double kxx = 2 * detail::metrics_kernel_sum(xd, xd, gamma, true) / (n * (n - 1));
  const long double kyy = 2 * detail::metrics_kernel_sum(yd, yd, gamma, true) / (m * (m - 1));
  const long double kxy = detail::metrics_kernel_sum(xd, yd, gamma, false) / (n * m);
  r.mmd2 = static_cast<double>(kxx + kyy - 2 * kxy);
  return r;
}

}  // namespace kinflow
