#pragma once
/// @file
/// @brief Spearman rank correlation (docs/math.md §10.6; the paper reports ρ ≈ -0.65 between
/// KPE and local support on CIFAR-10).
///
/// Ranks are 1 … n in increasing order, tied values sharing the average of the ranks they
/// occupy; ρ is the Pearson correlation of the two rank vectors,
///
///     ρ = Σ (R_i - R̄)(S_i - S̄) / √( Σ (R_i - R̄)² · Σ (S_i - S̄)² ),
///
/// which without ties equals `1 - 6 Σ (R_i - S_i)² / (n (n² - 1))`.

#include "kinflow/core/errors.hpp"

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <numeric>
#include <span>
#include <string>
#include <vector>

namespace kinflow {

/// Ranks 1 … n of @p values in increasing order, ties receiving the average of their
/// ranks (e.g. {10, 20, 20, 30} → {1, 2.5, 2.5, 4}).
/// @throws kinflow::invalid_argument if a value is NaN.
[[nodiscard]] inline std::vector<double> average_ranks(std::span<const double> values) {
  const std::size_t n = values.size();
  for (std::size_t i = 0; i < n; ++i)
    detail::require(!std::isnan(values[i]), "values[" + std::to_string(i) + "]", values[i],
                    "expected a number (NaN has no rank)");
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return values[a] < values[b]; });
  std::vector<double> rank(n);
  for (std::size_t i = 0; i < n;) {
    std::size_t j = i + 1;
    while (j < n && values[order[j]] == values[order[i]]) ++j;
    // Positions i … j-1 hold equal values: ranks i+1 … j, average (i + 1 + j) / 2.
    const double avg = 0.5 * static_cast<double>(i + 1 + j);
    for (std::size_t t = i; t < j; ++t) rank[order[t]] = avg;
    i = j;
  }
  return rank;
}

/// Spearman's ρ between paired samples @p x and @p y (average ranks for ties).
/// @throws kinflow::invalid_argument if the sizes differ, n < 2, a value is NaN, or either
///   sample is constant (ρ undefined).
[[nodiscard]] inline double spearman(std::span<const double> x, std::span<const double> y) {
  detail::require(y.size() == x.size(), "y.size()", y.size(),
                  "expected as many values as x (" + std::to_string(x.size()) + ")");
  detail::require(x.size() >= 2, "x.size()", x.size(), "expected at least 2 pairs");
  const auto rx = average_ranks(x), ry = average_ranks(y);
  const double mean = 0.5 * static_cast<double>(x.size() + 1);  // mean of 1 … n, ties or not
  long double sxy = 0, sxx = 0, syy = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const long double a = rx[i] - mean, b = ry[i] - mean;
    sxy += a * b;
    sxx += a * a;
    syy += b * b;
  }
  detail::require(sxx > 0, "x", "(all values equal)", "expected a non-constant sample");
  detail::require(syy > 0, "y", "(all values equal)", "expected a non-constant sample");
  return static_cast<double>(sxy / std::sqrt(sxx * syy));
}

/// Spearman's ρ between two Eigen vectors (or arrays, rows, columns) of equal size.
template <class DerivedX, class DerivedY>
[[nodiscard]] double spearman(const Eigen::DenseBase<DerivedX>& x, const Eigen::DenseBase<DerivedY>& y) {
  const Eigen::VectorXd a = x.derived().template cast<double>().reshaped();
  const Eigen::VectorXd b = y.derived().template cast<double>().reshaped();
  return spearman(std::span<const double>(a.data(), static_cast<std::size_t>(a.size())),
                  std::span<const double>(b.data(), static_cast<std::size_t>(b.size())));
}

}  // namespace kinflow
