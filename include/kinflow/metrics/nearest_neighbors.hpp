#pragma once
/// @file
/// @brief Exact k-nearest-neighbour search in Euclidean distance with a k-d tree, for the
/// memorization, distance and density metrics of docs/math.md §10.
///
/// The tree is built once over a `d × N` reference set (one point per column): each node
/// splits its points at the median of the coordinate with the widest spread, down to
/// leaves of at most `leaf_size` points. A query descends to its leaf first and then visits
/// the other side of a split only when the splitting plane is not farther than the current
/// k-th distance, so the answer is exact. Ties in distance are broken by the smaller
/// reference index, so the result is the first k of the reference points sorted by
/// (‖q - y_i‖², i), the same as a brute-force search with that rule.
///
/// Cost: building O(N log N); a query O(log N + leaf_size·k) on well-spread data in low
/// dimension. The tree degrades towards brute force as d grows beyond ~10, so above
/// d = 16 queries scan the whole set instead, with matrix products that bound every
/// distance and leave only the points that can be among the k nearest (O(N·d) per query,
/// at the speed of a matrix product). Both give the exact answer: each candidate's squared
/// distance comes from the coordinates' differences (no cancellation), ties by index.

#include "kinflow/core/batch.hpp"
#include "kinflow/core/errors.hpp"

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

namespace kinflow {

/// The k nearest reference points of each query: column q holds, nearest first, the
/// distances `‖x_q - y_i‖` (`distances`, k × Q) and the reference column indices i
/// (`indices`, k × Q).
template <class Scalar>
struct knn_result {
  Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> distances;     ///< k × Q, ascending per column
  Eigen::Matrix<Eigen::Index, Eigen::Dynamic, Eigen::Dynamic> indices; ///< k × Q reference columns
};

/// A k-d tree over a fixed reference set (`d × N`, one point per column) answering exact
/// k-nearest-neighbour queries in Euclidean distance (see the file comment). The reference
/// points are copied, so the tree does not refer to the caller's matrix.
template <class Scalar = double, int Dim = Eigen::Dynamic>
class nearest_neighbor_index {
public:
  /// Builds the tree over the columns of @p reference.
  /// @param reference the reference set, `d × N`, one point per column (copied)
  /// @param leaf_size largest number of points in a leaf (≥ 1; 16 suits d ≤ 4).
  /// @throws kinflow::invalid_argument if the set is empty, holds non-finite values or
  ///   leaf_size < 1; kinflow::dimension_mismatch if d differs from a fixed Dim.
  template <class Derived>
  explicit nearest_neighbor_index(const Eigen::MatrixBase<Derived>& reference, int leaf_size = 16)
      : leaf_size_(leaf_size) {
    detail::require(leaf_size >= 1, "leaf_size", leaf_size, "expected a leaf size >= 1");
    detail::require(reference.cols() >= 1, "reference.cols()", reference.cols(),
                    "expected a reference set of at least 1 point");
    detail::require(reference.rows() >= 1, "reference.rows()", reference.rows(),
                    "expected points of dimension >= 1");
    if constexpr (Dim != Eigen::Dynamic)
      detail::require_dimension("nearest_neighbor_index: reference dimension", reference.rows(),
                                Dim);
    detail::require(reference.allFinite(), "reference", "(a set with NaN or Inf)",
                    "expected finite coordinates");
    const Eigen::Index n = reference.cols();
    std::vector<Eigen::Index> order(static_cast<std::size_t>(n));
    std::iota(order.begin(), order.end(), Eigen::Index{0});
    const batch<Scalar, Dim> ref = reference.template cast<Scalar>();
    if (ref.rows() <= tree_max_dim) {  // above, queries scan the set: no tree
      nodes_.reserve(static_cast<std::size_t>(2 * (n / leaf_size + 1)));
      build(ref, order, 0, n);
    }
    points_.resize(ref.rows(), n);
    original_.resize(static_cast<std::size_t>(n));
    for (Eigen::Index j = 0; j < n; ++j) {
      points_.col(j) = ref.col(order[static_cast<std::size_t>(j)]);
      original_[static_cast<std::size_t>(j)] = order[static_cast<std::size_t>(j)];
    }
  }

  /// Number of reference points N.
  [[nodiscard]] Eigen::Index size() const noexcept { return points_.cols(); }
  /// Dimension d of the points.
  [[nodiscard]] Eigen::Index dim() const noexcept { return points_.rows(); }

  /// The @p k nearest reference points of every column of @p queries (`d × Q`).
  /// @throws kinflow::invalid_argument unless 1 ≤ k ≤ N and the queries are finite;
  ///   kinflow::dimension_mismatch if their dimension differs from the reference set's.
  template <class Derived>
  [[nodiscard]] knn_result<Scalar> query(const Eigen::MatrixBase<Derived>& queries, int k) const {
    detail::require(k >= 1 && k <= size(), "k", k,
                    "expected 1 <= k <= N = " + std::to_string(size()) +
                        " (the number of reference points)");
    detail::require_dimension("nearest neighbours: query dimension", queries.rows(), dim());
    detail::require(queries.allFinite(), "queries", "(a set with NaN or Inf)",
                    "expected finite coordinates");
    // An expression is evaluated once: a column of one nests a copy of it (an IndexedView
    // copies its index vector), which per query would cost O(Q) each. A matrix is not copied.
    const auto& Q = queries.eval();
    const Eigen::Index nq = Q.cols();
    knn_result<Scalar> out;
    out.distances.resize(k, nq);
    out.indices.resize(k, nq);
    if (dim() > tree_max_dim) {
      blocked_scan(Q, k, out);
      return out;
    }
    std::vector<candidate> best(static_cast<std::size_t>(k));
    point<Scalar, Dim> q;
    q.resize(dim());
    Eigen::Matrix<Scalar, 1, Eigen::Dynamic> leaf;  // squared distances to a leaf's points
    for (Eigen::Index c = 0; c < nq; ++c) {
      q = Q.col(c).template cast<Scalar>();
      std::size_t filled = 0;
      search(0, q, best.data(), static_cast<std::size_t>(k), filled, leaf);
      write(best.data(), k, c, out);
    }
    return out;
  }

  /// Distance from every query to its nearest reference point (k = 1), as a vector.
  template <class Derived>
  [[nodiscard]] per_sample<Scalar> nearest_distance(const Eigen::MatrixBase<Derived>& queries) const {
    return query(queries, 1).distances.row(0).transpose();
  }

private:
  /// Above this dimension, queries scan the set in blocks instead of searching the tree.
  static constexpr Eigen::Index tree_max_dim = 16;

  struct candidate {
    Scalar d2;
    Eigen::Index index;  // original reference column
  };

  // The k best of query c into column c of the result.
  static void write(const candidate* best, int k, Eigen::Index c, knn_result<Scalar>& out) {
    for (int r = 0; r < k; ++r) {
      out.distances(r, c) = std::sqrt(best[r].d2);
      out.indices(r, c) = best[r].index;
    }
  }

  // Offers (d2, index) to the sorted list of the k best (`filled` of them so far).
  static void offer(candidate* best, std::size_t k, std::size_t& filled, Scalar d2, Eigen::Index index) {
    if (filled == k && !better(d2, index, best[k - 1])) return;
    std::size_t pos = filled < k ? filled++ : k - 1;
    while (pos > 0 && better(d2, index, best[pos - 1])) {
      best[pos] = best[pos - 1];
      --pos;
    }
    best[pos] = candidate{d2, index};
  }

  // Every query against every point, by blocks of queries and points: the squared
  // distances first as ‖x‖² + ‖y‖² − 2x·y from a matrix product (fast, but with
  // cancellation), each with a bound on its rounding error, |error| ≤ 2(d + 2)ε(‖x‖ + ‖y‖)²
  // (twice the classical bound γ_{d+2} of a sum of d + 2 products); a point whose lower bound
  // exceeds the query's k-th smallest upper bound cannot be among its k nearest. The
  // candidates left (those within the bound of the k-th, usually few more than k) get their
  // distance from the differences, as the tree does, and the (distance, index) rule picks.
  template <class QueryMatrix>
  void blocked_scan(const QueryMatrix& Q, int k, knn_result<Scalar>& out) const {
    using vector = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;
    const Eigen::Index nq = Q.cols(), n = size();
    const auto kk = static_cast<std::size_t>(k);
    const batch<Scalar, Dim> queries = Q.template cast<Scalar>();
    const vector q_norm2 = queries.colwise().squaredNorm().transpose();
    const vector p_norm2 = points_.colwise().squaredNorm().transpose();
    const vector p_norm = p_norm2.cwiseSqrt();
    const Scalar gamma = Scalar(2) * static_cast<Scalar>(dim() + 2) * std::numeric_limits<Scalar>::epsilon();
    constexpr Eigen::Index query_block = 64, point_block = 2048;
    Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> dots;
    std::vector<candidate> upper, best(kk);
    std::vector<std::size_t> upper_filled;
    std::vector<std::vector<Eigen::Index>> candidates(static_cast<std::size_t>(query_block));
    for (Eigen::Index q0 = 0; q0 < nq; q0 += query_block) {
      const Eigen::Index qw = std::min(query_block, nq - q0);
      upper.assign(kk * static_cast<std::size_t>(qw), candidate{});
      upper_filled.assign(static_cast<std::size_t>(qw), 0);
      for (auto& c : candidates) c.clear();
      for (Eigen::Index p0 = 0; p0 < n; p0 += point_block) {
        const Eigen::Index pw = std::min(point_block, n - p0);
        dots.noalias() = points_.middleCols(p0, pw).transpose() * queries.middleCols(q0, qw);
        for (Eigen::Index c = 0; c < qw; ++c) {
          const auto cc = static_cast<std::size_t>(c);
          candidate* up = upper.data() + cc * kk;
          std::size_t& filled = upper_filled[cc];
          const Scalar xn2 = q_norm2(q0 + c), xn = std::sqrt(xn2);
          for (Eigen::Index j = 0; j < pw; ++j) {
            const Scalar approx = xn2 + p_norm2(p0 + j) - Scalar(2) * dots(j, c);
            const Scalar reach = xn + p_norm(p0 + j), margin = gamma * reach * reach;
            if (filled == kk && approx - margin > up[kk - 1].d2) continue;
            offer(up, kk, filled, approx + margin, p0 + j);
            candidates[cc].push_back(p0 + j);
          }
        }
      }
      for (Eigen::Index c = 0; c < qw; ++c) {
        const auto cc = static_cast<std::size_t>(c);
        std::size_t filled = 0;
        for (const Eigen::Index j : candidates[cc])
          offer(best.data(), kk, filled, (points_.col(j) - queries.col(q0 + c)).squaredNorm(),
                original_[static_cast<std::size_t>(j)]);
        write(best.data(), k, q0 + c, out);
      }
    }
  }

  struct node {
    Eigen::Index begin, end;   // points [begin, end) in tree order
    Eigen::Index split_dim;    // -1 for a leaf
    Scalar split_value;
    int left, right;           // children (node indices)
  };

  // Builds the subtree over order[begin, end) and returns its node index.
  int build(const batch<Scalar, Dim>& ref, std::vector<Eigen::Index>& order, Eigen::Index begin,
            Eigen::Index end) {
    const int id = static_cast<int>(nodes_.size());
    nodes_.push_back(node{begin, end, -1, Scalar(0), -1, -1});
    if (end - begin <= leaf_size_) return id;
    // Widest coordinate over the points of this node (point by point: each is one
    // contiguous column, where coordinate by coordinate would stride across the set).
    point<Scalar, Dim> lo = point<Scalar, Dim>::Constant(ref.rows(), std::numeric_limits<Scalar>::infinity());
    point<Scalar, Dim> hi = -lo;
    for (Eigen::Index j = begin; j < end; ++j) {
      const auto x = ref.col(order[static_cast<std::size_t>(j)]);
      lo = lo.cwiseMin(x);
      hi = hi.cwiseMax(x);
    }
    Eigen::Index best_dim = 0;
    const Scalar best_extent = (hi - lo).maxCoeff(&best_dim);  // the first widest, on ties
    if (!(best_extent > 0)) return id;  // all points equal: one leaf, whatever its size
    const Eigen::Index mid = begin + (end - begin) / 2;
    auto first = order.begin() + begin, nth = order.begin() + mid, last = order.begin() + end;
    std::nth_element(first, nth, last, [&](Eigen::Index a, Eigen::Index b) {
      return ref(best_dim, a) < ref(best_dim, b);
    });
    const Scalar split = ref(best_dim, *nth);
    // nth_element leaves [begin, mid) ≤ split ≤ [mid, end): a query's distance to the
    // other side is at least its distance to the plane x[best_dim] = split.
    const int left = build(ref, order, begin, mid);
    const int right = build(ref, order, mid, end);
    node& nd = nodes_[static_cast<std::size_t>(id)];
    nd.split_dim = best_dim;
    nd.split_value = split;
    nd.left = left;
    nd.right = right;
    return id;
  }

  // (d2, index) lexicographic order: ties go to the smaller reference index.
  static bool better(Scalar d2, Eigen::Index index, const candidate& c) {
    return d2 < c.d2 || (d2 == c.d2 && index < c.index);
  }

  void search(int id, const point<Scalar, Dim>& q, candidate* best, std::size_t k, std::size_t& filled,
              Eigen::Matrix<Scalar, 1, Eigen::Dynamic>& leaf) const {
    const node& nd = nodes_[static_cast<std::size_t>(id)];
    if (nd.split_dim < 0) {
      // The leaf's squared distances, from the differences, in one pass over its points.
      leaf.noalias() = (points_.middleCols(nd.begin, nd.end - nd.begin).colwise() - q).colwise().squaredNorm();
      for (Eigen::Index j = nd.begin; j < nd.end; ++j)
        offer(best, k, filled, leaf(j - nd.begin), original_[static_cast<std::size_t>(j)]);
      return;
    }
    const Scalar delta = q(nd.split_dim) - nd.split_value;
    const int near = delta < 0 ? nd.left : nd.right;
    const int far = delta < 0 ? nd.right : nd.left;
    search(near, q, best, k, filled, leaf);
    // Visit the far side unless every point there is strictly farther than the k-th best
    // (equal distances may still win on the index).
    if (filled < k || delta * delta <= best[k - 1].d2) search(far, q, best, k, filled, leaf);
  }

  int leaf_size_;
  std::vector<node> nodes_;
  batch<Scalar, Dim> points_;           // reference points in tree order
  std::vector<Eigen::Index> original_;  // tree order -> reference column
};

/// The @p k nearest columns of @p reference for every column of @p queries (builds a
/// nearest_neighbor_index and queries it). Scalar and Dim follow @p reference.
template <class DerivedQ, class DerivedR>
[[nodiscard]] knn_result<typename DerivedR::Scalar> k_nearest_neighbors(
    const Eigen::MatrixBase<DerivedQ>& queries, const Eigen::MatrixBase<DerivedR>& reference,
    int k) {
  nearest_neighbor_index<typename DerivedR::Scalar, DerivedR::RowsAtCompileTime> index(reference);
  return index.query(queries, k);
}

/// Nearest-neighbour distance `min_i ‖x_q - y_i‖` from every column of @p queries to the
/// set @p reference (e.g. the training set).
template <class DerivedQ, class DerivedR>
[[nodiscard]] per_sample<typename DerivedR::Scalar> nearest_distances(
    const Eigen::MatrixBase<DerivedQ>& queries, const Eigen::MatrixBase<DerivedR>& reference) {
  nearest_neighbor_index<typename DerivedR::Scalar, DerivedR::RowsAtCompileTime> index(reference);
  return index.nearest_distance(queries);
}

}  // namespace kinflow
