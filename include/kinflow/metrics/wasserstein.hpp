#pragma once
/// @file
/// @brief Wasserstein-2 distances between point sets (empirical measures with uniform
/// weights), docs/math.md §10.3: exact in 1D, exact for small equal-size sets through an
/// assignment solver, and sliced (random 1D projections) for any sizes and dimensions.
///
///     W2²(μ, ν) = min over couplings π of Σ π_ij ‖x_i - y_j‖²
///
/// - **1D**: W2² = ∫₀¹ (F⁻¹(u) - G⁻¹(u))² du with the empirical quantile functions (sorted
///   values); computed exactly for any sizes n, m by walking both sorted lists.
/// - **Exact, n = m**: the optimal coupling of two uniform measures with n atoms each is a
///   permutation σ (Birkhoff), so W2² = (1/n) min_σ Σ_i ‖x_i - y_σ(i)‖², a linear
///   assignment problem solved in O(n³) time and O(n²) memory (solve_assignment()).
/// - **Sliced**: SW2² = E_θ W2²(θᵀμ, θᵀν) over directions θ uniform on the unit sphere,
///   estimated with `projections` seeded directions θ = z/‖z‖, z ~ N(0, I);
///   SW2 = √(mean of the 1D W2²). Note SW2 ≤ W2; for ν = μ shifted by s, SW2² = ‖s‖²/d in
///   expectation (exactly ‖s‖² in 1D).

#include "kinflow/core/batch.hpp"
#include "kinflow/core/errors.hpp"
#include "kinflow/data/random.hpp"
#include "kinflow/detail/field_parallel.hpp"

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

namespace kinflow {

/// Exact W2² between the 1D empirical measures with atoms @p a (weights 1/n) and @p b
/// (weights 1/m): `∫₀¹ (F_a⁻¹(u) - F_b⁻¹(u))² du`. The vectors are sorted in place.
/// @throws kinflow::invalid_argument if either set is empty.
[[nodiscard]] inline double wasserstein2_squared_1d(std::vector<double>& a, std::vector<double>& b) {
  detail::require(!a.empty(), "a.size()", a.size(), "expected at least 1 point");
  detail::require(!b.empty(), "b.size()", b.size(), "expected at least 1 point");
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  // Masses in integer units of 1/(n m): an atom of a holds m units, one of b holds n, so
  // the walk over the common refinement of both quantile functions is exact.
  const std::uint64_t n = a.size(), m = b.size();
  std::uint64_t left_a = m, left_b = n;
  std::size_t i = 0, j = 0;
  long double sum = 0;
  while (i < a.size() && j < b.size()) {
    const std::uint64_t w = std::min(left_a, left_b);
    const long double diff = static_cast<long double>(a[i]) - b[j];
    sum += static_cast<long double>(w) * diff * diff;
    left_a -= w;
    left_b -= w;
    if (left_a == 0) ++i, left_a = m;
    if (left_b == 0) ++j, left_b = n;
  }
  return static_cast<double>(sum / (static_cast<long double>(n) * static_cast<long double>(m)));
}

/// Solution of a linear assignment problem.
struct assignment_result {
  std::vector<Eigen::Index> column_of_row; ///< σ(i): the column assigned to row i
  double cost = 0;                         ///< Σ_i C(i, σ(i)), the minimum
};

/// Minimum-cost perfect matching of a square cost matrix C (n × n):
/// `min over permutations σ of Σ_i C(i, σ(i))`, by the Hungarian method in its
/// shortest-augmenting-path form with dual potentials (Kuhn–Munkres with the O(n³) row-by-row
/// augmentation of Jonker–Volgenant / Edmonds–Karp).
/// @throws kinflow::invalid_argument if C is not square, is empty, or has non-finite entries.
template <class Derived>
[[nodiscard]] assignment_result solve_assignment(const Eigen::MatrixBase<Derived>& cost) {
  detail::require(cost.rows() == cost.cols(), "cost.cols()", cost.cols(),
                  "expected a square cost matrix with as many columns as rows (" +
                      std::to_string(cost.rows()) + ")");
  detail::require(cost.rows() >= 1, "cost.rows()", cost.rows(), "expected n >= 1");
  detail::require(cost.allFinite(), "cost", "(a matrix with NaN or Inf)",
                  "expected finite costs");
  const Eigen::Index n = cost.rows();
  const double inf = std::numeric_limits<double>::infinity();
  // 1-based arrays; column 0 is a virtual column holding the row being inserted.
  std::vector<double> u(static_cast<std::size_t>(n + 1), 0.0), v(static_cast<std::size_t>(n + 1), 0.0);
  std::vector<Eigen::Index> row_of_col(static_cast<std::size_t>(n + 1), 0);
  std::vector<Eigen::Index> way(static_cast<std::size_t>(n + 1), 0);
  std::vector<double> min_slack(static_cast<std::size_t>(n + 1));
  std::vector<char> used(static_cast<std::size_t>(n + 1));
  auto at = [](auto& vec, Eigen::Index k) -> auto& { return vec[static_cast<std::size_t>(k)]; };
  for (Eigen::Index row = 1; row <= n; ++row) {
    at(row_of_col, 0) = row;
    Eigen::Index col0 = 0;
    std::fill(min_slack.begin(), min_slack.end(), inf);
    std::fill(used.begin(), used.end(), char{0});
    // Dijkstra-like growth of the alternating tree until a free column is reached.
    do {
      at(used, col0) = 1;
      const Eigen::Index r0 = at(row_of_col, col0);
      double delta = inf;
      Eigen::Index col1 = 0;
      for (Eigen::Index c = 1; c <= n; ++c) {
        if (at(used, c)) continue;
        const double reduced = static_cast<double>(cost(r0 - 1, c - 1)) - at(u, r0) - at(v, c);
        if (reduced < at(min_slack, c)) {
          at(min_slack, c) = reduced;
          at(way, c) = col0;
        }
        if (at(min_slack, c) < delta) {
          delta = at(min_slack, c);
          col1 = c;
        }
      }
      for (Eigen::Index c = 0; c <= n; ++c) {
        if (at(used, c)) {
          at(u, at(row_of_col, c)) += delta;
          at(v, c) -= delta;
        } else {
          at(min_slack, c) -= delta;
        }
      }
      col0 = col1;
    } while (at(row_of_col, col0) != 0);
    // Augment along the path back to the virtual column.
    do {
      const Eigen::Index col1 = at(way, col0);
      at(row_of_col, col0) = at(row_of_col, col1);
      col0 = col1;
    } while (col0 != 0);
  }
  assignment_result r;
  r.column_of_row.assign(static_cast<std::size_t>(n), 0);
  for (Eigen::Index c = 1; c <= n; ++c)
    r.column_of_row[static_cast<std::size_t>(at(row_of_col, c) - 1)] = c - 1;
  long double total = 0;
  for (Eigen::Index i = 0; i < n; ++i)
    total += static_cast<long double>(cost(i, r.column_of_row[static_cast<std::size_t>(i)]));
  r.cost = static_cast<double>(total);
  return r;
}

/// Result of exact_wasserstein2().
struct exact_wasserstein_result {
  double distance = 0; ///< W2 = √(W2²)
  double squared = 0;  ///< W2² = (1/n) Σ_i ‖x_i - y_σ(i)‖²
  std::vector<Eigen::Index> matching; ///< σ: column σ(i) of y is matched to column i of x
};

/// Exact W2 between two equal-size point sets (`d × n` each, uniform weights) via the
/// optimal assignment of squared Euclidean costs. O(n³) time and O(n²) memory: meant for
/// n up to a few thousand.
/// @throws kinflow::invalid_argument if the sets are empty or differ in size;
///   kinflow::dimension_mismatch if their dimensions differ.
template <class DerivedX, class DerivedY>
[[nodiscard]] exact_wasserstein_result exact_wasserstein2(const Eigen::MatrixBase<DerivedX>& x,
                                                          const Eigen::MatrixBase<DerivedY>& y) {
  detail::require_dimension("exact_wasserstein2: dimension of y", y.rows(), x.rows());
  detail::require(x.cols() >= 1, "x.cols()", x.cols(), "expected at least 1 point");
  detail::require(y.cols() == x.cols(), "y.cols()", y.cols(),
                  "expected as many points as x (" + std::to_string(x.cols()) +
                      "); use sliced_wasserstein2 for sets of different sizes");
  const Eigen::Index n = x.cols();
  // Evaluated once (the columns of an expression would copy it n² times).
  const Eigen::MatrixXd xd = x.template cast<double>(), yd = y.template cast<double>();
  Eigen::MatrixXd c(n, n);
  for (Eigen::Index j = 0; j < n; ++j)
    for (Eigen::Index i = 0; i < n; ++i) c(i, j) = (xd.col(i) - yd.col(j)).squaredNorm();
  auto a = solve_assignment(c);
  exact_wasserstein_result r;
  r.squared = std::max(0.0, a.cost / static_cast<double>(n));
  r.distance = std::sqrt(r.squared);
  r.matching = std::move(a.column_of_row);
  return r;
}

/// Options of sliced_wasserstein2().
struct sliced_wasserstein_options {
  int projections = 256;  ///< number of random directions (≥ 1)
  std::uint64_t seed = 0; ///< seed of the directions (random_stream)
  /// Worker threads over the directions: 0 = all hardware threads, 1 = the calling thread
  /// only. The result is the same bits whatever the number.
  unsigned threads = 0;
};

/// Sliced W2 between point sets @p x (`d × n`) and @p y (`d × m`), any sizes:
/// `SW2 = √( (1/P) Σ_p W2²(θ_pᵀ x, θ_pᵀ y) )` with P seeded directions θ_p uniform on the
/// unit sphere and the exact 1D W2² (wasserstein2_squared_1d(), quantile matching).
/// @throws kinflow::invalid_argument if a set is empty or projections < 1;
///   kinflow::dimension_mismatch if the dimensions differ.
template <class DerivedX, class DerivedY>
[[nodiscard]] double sliced_wasserstein2(const Eigen::MatrixBase<DerivedX>& x,
                                         const Eigen::MatrixBase<DerivedY>& y,
                                         const sliced_wasserstein_options& options = {}) {
  detail::require_dimension("sliced_wasserstein2: dimension of y", y.rows(), x.rows());
  detail::require(x.cols() >= 1, "x.cols()", x.cols(), "expected at least 1 point");
  detail::require(y.cols() >= 1, "y.cols()", y.cols(), "expected at least 1 point");
  detail::require(options.projections >= 1, "sliced_wasserstein_options::projections",
                  options.projections, "expected at least 1 direction");
  const Eigen::Index d = x.rows();
  const Eigen::MatrixXd xd = x.template cast<double>(), yd = y.template cast<double>();
  // The directions in the seeded stream's order, then one task per direction (each sorts
  // its two projections); the per-direction values are summed in that order.
  const auto P = static_cast<std::size_t>(options.projections);
  Eigen::MatrixXd theta(d, options.projections);
  random_stream rng(options.seed);
  for (Eigen::Index p = 0; p < theta.cols(); ++p) {
    double norm2 = 0;
    do {
      for (Eigen::Index i = 0; i < d; ++i) theta(i, p) = rng.normal();
      norm2 = theta.col(p).squaredNorm();
    } while (norm2 == 0);
    theta.col(p) /= std::sqrt(norm2);
  }
  const unsigned workers = detail::field_worker_count(options.threads, P);
  std::vector<std::vector<double>> px(workers, std::vector<double>(static_cast<std::size_t>(xd.cols()))),
      py(workers, std::vector<double>(static_cast<std::size_t>(yd.cols())));
  std::vector<double> w2(P);
  detail::field_parallel_for(workers, P, [&](unsigned w, std::size_t p) {
    const auto t = theta.col(static_cast<Eigen::Index>(p));
    auto& a = px[w];
    auto& b = py[w];
    for (Eigen::Index j = 0; j < xd.cols(); ++j) a[static_cast<std::size_t>(j)] = t.dot(xd.col(j));
    for (Eigen::Index j = 0; j < yd.cols(); ++j) b[static_cast<std::size_t>(j)] = t.dot(yd.col(j));
    w2[p] = wasserstein2_squared_1d(a, b);
  });
  long double sum = 0;
  for (const double v : w2) sum += v;
  return std::sqrt(static_cast<double>(sum / options.projections));
}

}  // namespace kinflow
