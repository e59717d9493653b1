#pragma once
/// @file
/// @brief Private machinery of the closed-form posterior engine's certified pruning: the
/// index over the points (leaves of a ball tree: contiguous runs of reordered points, each
/// with a centre and a radius) and the upper bounds on the logits of a whole leaf for a
/// query (docs/math.md, "Certified pruning").
///
/// For a query x at time t and a point y in a leaf with centre c and radius r,
/// `‖x − t y‖ ≥ ‖x − t c‖ − |t| r`, so every logit of the leaf is at most
///
///     U = max log π − ℓ² / (2 v_max) − (d/2) log v_min,     ℓ = max(0, ‖x − t c‖ − |t| r)
///
/// (shared variance: `v_min = v_max = v` and no log term). The bound is computed with a
/// margin for its own rounding, so that it holds for the engine's logits as computed.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <numeric>
#include <vector>

#include <Eigen/Core>

#include "kinflow/core/batch.hpp"
#include "kinflow/detail/gemm.hpp"
#include "kinflow/detail/posterior_kernels.hpp"

namespace kinflow::detail {

/// Points per leaf of the pruning index (at most; leaves hold between half and all of it).
inline constexpr field_index prune_leaf_size = 64;

/// The pruning index over a point set: the points reordered leaf by leaf, with their norms,
/// priors and variances in the same order, and per leaf its centre, radius and the extremes
/// of its priors and variances. Immutable once built; shared by copies of an engine.
template <class Scalar, int Dim>
struct prune_index {
  using vector_type = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;
  batch<Scalar, Dim> points;        ///< d x n, leaf after leaf
  vector_type sq_norm;              ///< ‖y‖² of the reordered points
  vector_type log_prior;            ///< reordered log priors (empty when all are equal)
  vector_type spread;               ///< reordered variances s² (empty: shared variance)
  Scalar max_norm = 0;              ///< max ‖y‖
  Scalar min_spread = 0;            ///< min s² (0 without per-point variances)
  std::vector<field_index> order;   ///< order[p]: the original index of reordered point p
  std::vector<field_index> begin;   ///< leaf g holds reordered points [begin[g], begin[g + 1])
  batch<Scalar, Dim> centres;       ///< d x G, the mean of each leaf
  vector_type centre_sq_norm;       ///< ‖c_g‖²
  vector_type radius;               ///< r_g ≥ max ‖y − c_g‖ over the leaf (rounding included)
  vector_type max_log_prior;        ///< max log π over the leaf (0 when all are equal)
  vector_type leaf_min_spread;      ///< min s² over the leaf (per-point variances only)
  vector_type leaf_max_spread;      ///< max s² over the leaf (per-point variances only)
  vector_type log_count;            ///< log of the points of each leaf
  vector_type centre_norm;          ///< ‖c_g‖

  /// Number of leaves G.
  [[nodiscard]] field_index leaves() const noexcept { return static_cast<field_index>(begin.size()) - 1; }
  /// Points of leaf g.
  [[nodiscard]] field_index leaf_points(field_index g) const noexcept { return begin[g + 1] - begin[g]; }
  /// log of the points of leaf g.
  [[nodiscard]] Scalar log_points(field_index g) const noexcept { return log_count(g); }
  /// The reordered points as the engine's kernels see them.
  [[nodiscard]] posterior_points<Scalar, Dim> view() const {
    return {Eigen::Map<const batch<Scalar, Dim>>(points.data(), points.rows(), points.cols()),
            sq_norm.data(),
            max_norm,
            log_prior.size() == 0 ? nullptr : log_prior.data(),
            spread.size() == 0 ? nullptr : spread.data(),
            min_spread};
  }
};

/// Splits the points `idx[lo, hi)` of @p y in two halves along the line through two far
/// apart points (the farthest from the node's first point, then the farthest from that one),
/// at the median of the projections: a ball-tree split in O(n d).
template <class Scalar, int Dim>
void split_node(const Eigen::Map<const batch<Scalar, Dim>>& y, std::vector<field_index>& idx,
                std::size_t lo, std::size_t hi, std::vector<double>& proj) {
  const field_index d = y.rows();
  auto far_from = [&](field_index from) {
    field_index best = idx[lo];
    double best_d = -1;
    for (std::size_t k = lo; k < hi; ++k) {
      const double dist = (y.col(idx[k]) - y.col(from)).template cast<double>().squaredNorm();
      if (dist > best_d) {
        best_d = dist;
        best = idx[k];
      }
    }
    return best;
  };
  const field_index a = far_from(idx[lo]);
  const field_index b = far_from(a);
  for (std::size_t k = lo; k < hi; ++k) {
    double p = 0;
    for (field_index c = 0; c < d; ++c)
      p += (static_cast<double>(y(c, b)) - static_cast<double>(y(c, a))) * static_cast<double>(y(c, idx[k]));
    proj[static_cast<std::size_t>(idx[k])] = p;
  }
  const std::size_t mid = lo + (hi - lo) / 2;
  std::nth_element(idx.begin() + static_cast<std::ptrdiff_t>(lo), idx.begin() + static_cast<std::ptrdiff_t>(mid),
                   idx.begin() + static_cast<std::ptrdiff_t>(hi), [&](field_index i, field_index j) {
                     const double pi = proj[static_cast<std::size_t>(i)], pj = proj[static_cast<std::size_t>(j)];
                     return pi < pj || (pi == pj && i < j);
                   });
}

/// Builds the pruning index of @p pts (points, and priors and variances where they differ).
template <class Scalar, int Dim>
prune_index<Scalar, Dim> build_prune_index(const posterior_points<Scalar, Dim>& pts) {
  const auto& y = pts.y;
  const field_index d = y.rows(), n = y.cols();
  prune_index<Scalar, Dim> ix;
  std::vector<field_index> idx(static_cast<std::size_t>(n));
  std::iota(idx.begin(), idx.end(), field_index{0});
  std::vector<double> proj(static_cast<std::size_t>(n));
  // Depth first, the lower half first, so that leaves close in the tree are close in memory.
  std::vector<std::pair<std::size_t, std::size_t>> stack{{0, static_cast<std::size_t>(n)}};
  std::vector<std::pair<std::size_t, std::size_t>> leaves;
  while (!stack.empty()) {
    const auto [lo, hi] = stack.back();
    stack.pop_back();
    if (hi - lo <= static_cast<std::size_t>(prune_leaf_size)) {
      leaves.emplace_back(lo, hi);
      continue;
    }
    split_node<Scalar, Dim>(y, idx, lo, hi, proj);
    const std::size_t mid = lo + (hi - lo) / 2;
    stack.emplace_back(mid, hi);
    stack.emplace_back(lo, mid);
  }
  ix.order = idx;
  ix.points.resize(d, n);
  for (field_index p = 0; p < n; ++p) ix.points.col(p) = y.col(idx[static_cast<std::size_t>(p)]);
  ix.sq_norm.resize(n);
  for (field_index p = 0; p < n; ++p) ix.sq_norm(p) = pts.sq_norm[idx[static_cast<std::size_t>(p)]];
  ix.max_norm = pts.max_norm;
  if (pts.log_prior != nullptr) {
    ix.log_prior.resize(n);
    for (field_index p = 0; p < n; ++p) ix.log_prior(p) = pts.log_prior[idx[static_cast<std::size_t>(p)]];
  }
  if (pts.spread != nullptr) {
    ix.spread.resize(n);
    for (field_index p = 0; p < n; ++p) ix.spread(p) = pts.spread[idx[static_cast<std::size_t>(p)]];
    ix.min_spread = pts.min_spread;
  }

  const auto G = static_cast<field_index>(leaves.size());
  ix.begin.resize(leaves.size() + 1);
  ix.centres.resize(d, G);
  ix.centre_sq_norm.resize(G);
  ix.radius.resize(G);
  ix.max_log_prior.setZero(G);
  ix.leaf_min_spread.setZero(G);
  ix.leaf_max_spread.setZero(G);
  ix.log_count.resize(G);
  ix.centre_norm.resize(G);
  constexpr double eps = std::numeric_limits<Scalar>::epsilon();
  // Rounding of the radius (a direct distance: relative error below (d + 2) u) and of the
  // centre's own coordinates, with room to spare.
  const double inflate = 1 + 4 * (static_cast<double>(d) + 4) * eps;
  Eigen::VectorXd c(d);
  for (field_index g = 0; g < G; ++g) {
    const auto [lo, hi] = leaves[static_cast<std::size_t>(g)];
    ix.begin[static_cast<std::size_t>(g)] = static_cast<field_index>(lo);
    c.setZero();
    for (std::size_t p = lo; p < hi; ++p) c += ix.points.col(static_cast<field_index>(p)).template cast<double>();
    c /= static_cast<double>(hi - lo);
    ix.centres.col(g) = c.cast<Scalar>();
    const Eigen::VectorXd cs = ix.centres.col(g).template cast<double>();
    double r2 = 0;
    for (std::size_t p = lo; p < hi; ++p)
      r2 = std::max(r2, (ix.points.col(static_cast<field_index>(p)).template cast<double>() - cs).squaredNorm());
    ix.radius(g) = static_cast<Scalar>(std::sqrt(r2) * inflate + 4 * eps * std::sqrt(cs.squaredNorm() + r2));
    ix.centre_sq_norm(g) = static_cast<Scalar>(cs.squaredNorm());
    ix.centre_norm(g) = static_cast<Scalar>(cs.norm());
    ix.log_count(g) = static_cast<Scalar>(std::log(static_cast<double>(hi - lo)));
    if (ix.log_prior.size() != 0)
      ix.max_log_prior(g) = ix.log_prior.segment(static_cast<field_index>(lo), static_cast<field_index>(hi - lo)).maxCoeff();
    if (ix.spread.size() != 0) {
      const auto s = ix.spread.segment(static_cast<field_index>(lo), static_cast<field_index>(hi - lo));
      ix.leaf_min_spread(g) = s.minCoeff();
      ix.leaf_max_spread(g) = s.maxCoeff();
    }
  }
  ix.begin.back() = n;
  return ix;
}

/// Upper bounds on the logits of every leaf for the queries X (d x nc) with parameters
/// `params(j)`: `U(g, j)` into the G x nc column-major array @p U, and into @p nearest the
/// leaf whose centre is nearest to each query (`‖x − t c_g‖`; where several leaves' bounds
/// are all 0, in high dimension, it is the one most likely to hold the largest logit). With
/// @p product, the distances to the centres come from one matrix product (with a margin for
/// its rounding); direct otherwise.
template <class Scalar, int Dim, class Params>
void leaf_logit_bounds(const prune_index<Scalar, Dim>& ix, const Eigen::Map<const batch<Scalar, Dim>>& X,
                       const Params& params, bool product, bool blas, Scalar* U, field_index* nearest) {
  const field_index d = X.rows(), nc = X.cols(), G = ix.leaves();
  using matrix_map = Eigen::Map<Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>>;
  matrix_map T(U, G, nc);
  if (product) product_into(ix.centres.transpose(), X, T, false, blas);
  constexpr Scalar eps = std::numeric_limits<Scalar>::epsilon();
  const Scalar kappa = (Scalar(2) * std::sqrt(static_cast<Scalar>(d)) + Scalar(6)) * eps;
  const Scalar shrink = Scalar(1) - Scalar(4) * (static_cast<Scalar>(d) + 4) * eps;
  const Scalar half_d = Scalar(0.5) * static_cast<Scalar>(d);
  const bool per_point = ix.spread.size() != 0;
  for (field_index j = 0; j < nc; ++j) {
    const posterior_params<Scalar> par = params(j);
    const Scalar t = par.t, at = std::abs(t);
    const Scalar* x = X.col(j).data();
    const Scalar xx = plain_sq_distance<Scalar>(x, nullptr, Scalar(0), d);
    const Scalar xn = std::sqrt(xx);
    const Scalar half_inv_v = per_point ? Scalar(0) : Scalar(0.5) / par.a;
    Scalar nearest_dist = std::numeric_limits<Scalar>::infinity();
    nearest[j] = 0;
    for (field_index g = 0; g < G; ++g) {
      Scalar dist;
      if (product) {
        const Scalar r = xn + at * ix.centre_norm(g);
        const Scalar d2 = (xx - Scalar(2) * t * T(g, j)) + t * t * ix.centre_sq_norm(g) - kappa * r * r;
        dist = std::sqrt(std::max(d2, Scalar(0)));
      } else {
        dist = std::sqrt(plain_sq_distance<Scalar>(x, ix.centres.col(g).data(), t, d)) * shrink;
      }
      if (dist < nearest_dist) {
        nearest_dist = dist;
        nearest[j] = g;
      }
      const Scalar l = std::max(dist - at * ix.radius(g), Scalar(0)) * shrink;
      Scalar bound;
      if (per_point) {
        const Scalar vmin = par.a * par.a + t * t * ix.leaf_min_spread(g);
        const Scalar vmax = par.a * par.a + t * t * ix.leaf_max_spread(g);
        bound = -(half_d * std::log(vmin) + Scalar(0.5) * l * l / vmax);
      } else {
        bound = -half_inv_v * l * l;
      }
      T(g, j) = bound + ix.max_log_prior(g);
    }
  }
}

}  // namespace kinflow::detail
