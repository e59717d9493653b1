#pragma once
/// @file
/// @brief k-nearest-neighbour density estimate (docs/math.md §10.5, "local density" where a
/// field gives no exact log p): the density of a reference set (e.g. the training set) at
/// query points.
///
/// With r_k(x) the distance from x to its k-th nearest reference point, N reference
/// points in d dimensions and `V_d = π^{d/2} / Γ(d/2 + 1)` the volume of the unit ball,
///
///     p̂(x) = k / (N · V_d · r_k(x)^d)
///     log p̂(x) = log k - log N - log V_d - d · log r_k(x)
///
/// (Loftsgaarden & Quesenberry 1965): k points of the N fall in the ball of radius r_k.
/// As N → ∞ with k fixed, `N p V_d r_k^d` tends to a Gamma(k, 1) variable, so log p̂ is
/// consistent up to a bias `log k - ψ(k) ≈ 1/(2k)` and a spread of about `1/√k` (in log);
/// larger k lowers the noise and widens the smoothing radius. With `exclude_self` the
/// queries are the reference points themselves and each one is left out of its own
/// neighbourhood (k-th neighbour among the other N - 1, and N - 1 in place of N).

#include "kinflow/core/batch.hpp"
#include "kinflow/core/errors.hpp"
#include "kinflow/metrics/nearest_neighbors.hpp"

#include <Eigen/Core>
#include <cmath>
#include <numbers>
#include <string>

namespace kinflow {

/// Options of knn_log_density().
struct knn_density_options {
  int k = 10;                ///< which neighbour's distance sets the volume (≥ 1)
  bool exclude_self = false; ///< queries are the reference points: leave each one out
};

/// `log V_d = (d/2) log π - log Γ(d/2 + 1)`, the log volume of the unit ball in d dims.
[[nodiscard]] inline double log_unit_ball_volume(Eigen::Index d) {
  detail::require(d >= 1, "d", d, "expected a dimension d >= 1");
  const double h = 0.5 * static_cast<double>(d);
  return h * std::log(std::numbers::pi) - std::lgamma(h + 1.0);
}

/// kNN estimate of the log density of the indexed @p reference set at every column of
/// @p queries (see the file comment). A query at distance 0 from its k-th neighbour
/// (k coincident reference points) gets +∞.
/// @throws kinflow::invalid_argument unless 1 ≤ k ≤ N (k ≤ N - 1 with exclude_self), or if
///   exclude_self is set and the queries are not the N reference points.
template <class Scalar, int Dim, class Derived>
[[nodiscard]] per_sample<double> knn_log_density(const Eigen::MatrixBase<Derived>& queries,
                                                 const nearest_neighbor_index<Scalar, Dim>& reference,
                                                 const knn_density_options& options = {}) {
  const Eigen::Index n_ref = reference.size() - (options.exclude_self ? 1 : 0);
  detail::require(options.k >= 1 && options.k <= n_ref, "knn_density_options::k", options.k,
                  "expected 1 <= k <= " + std::to_string(n_ref) +
                      " (reference points available to each query)");
  if (options.exclude_self)
    detail::require(queries.cols() == reference.size(), "queries.cols()", queries.cols(),
                    "expected the " + std::to_string(reference.size()) +
                        " reference points themselves when exclude_self is set");
  const int k_search = options.k + (options.exclude_self ? 1 : 0);
  const auto nn = reference.query(queries, k_search);
  const double d = static_cast<double>(reference.dim());
  const double constant = std::log(static_cast<double>(options.k)) -
                          std::log(static_cast<double>(n_ref)) -
                          log_unit_ball_volume(reference.dim());
  per_sample<double> out(queries.cols());
  for (Eigen::Index q = 0; q < queries.cols(); ++q) {
    double r = 0;
    if (options.exclude_self) {
      // The k-th neighbour other than the query's own column (if the query's own column is
      // not among its k + 1 nearest, tied duplicates came first: the k-th is as good).
      int seen = 0;
      for (int i = 0; i < k_search; ++i) {
        if (nn.indices(i, q) == q) continue;
        if (++seen == options.k) {
          r = static_cast<double>(nn.distances(i, q));
          break;
        }
      }
    } else {
      r = static_cast<double>(nn.distances(options.k - 1, q));
    }
    out(q) = constant - d * std::log(r);
  }
  return out;
}

/// kNN log density of the set @p reference (`d × N`) at the columns of @p queries,
/// building the nearest-neighbour index on the way.
template <class DerivedQ, class DerivedR>
[[nodiscard]] per_sample<double> knn_log_density(const Eigen::MatrixBase<DerivedQ>& queries,
                                                 const Eigen::MatrixBase<DerivedR>& reference,
                                                 const knn_density_options& options = {}) {
  const nearest_neighbor_index<typename DerivedR::Scalar, DerivedR::RowsAtCompileTime> index(
      reference);
  return knn_log_density(queries, index, options);
}

}  // namespace kinflow
