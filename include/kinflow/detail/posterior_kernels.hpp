#pragma once
/// @file
/// @brief Private machinery of the closed-form posterior engine: the point side of the
/// posterior (points, cached norms, optional log priors and per-point variances), the
/// squared-distance kernels (direct, over a transposed block of points) and the step from
/// squared distances to logits (docs/math.md, "The closed-form posterior engine").

#include <algorithm>
#include <cmath>

#include <Eigen/Core>

#include "kinflow/core/batch.hpp"
#include "kinflow/detail/posterior_plan.hpp"

namespace kinflow::detail {

/// The point side: `y` (d x n), cached squared norms and optional priors and variances.
template <class Scalar, int Dim>
struct posterior_points {
  Eigen::Map<const batch<Scalar, Dim>> y;
  const Scalar* sq_norm = nullptr;    ///< ‖y_i‖², n entries
  Scalar max_norm = 0;                ///< max_i ‖y_i‖
  const Scalar* log_prior = nullptr;  ///< log π_i (n entries); null when all equal
  const Scalar* spread = nullptr;     ///< s_i² (n entries); null: shared variance per column
  Scalar min_spread = 0;              ///< min_i s_i²
};

/// Per-sample parameters: the scale `t` of the points and either the shared variance
/// (`a = v_j`) or, in the per-point case, `a = u_j`.
template <class Scalar>
struct posterior_params {
  Scalar t;
  Scalar a;
};

/// `Σ_k (a_k - t b_k)²` (t = 0: `Σ_k a_k²`) in a fixed order, whatever the alignment of the
/// data, so that results do not depend on where the caller's matrices live.
template <class Scalar>
Scalar plain_sq_distance(const Scalar* a, const Scalar* b, Scalar t, field_index d) noexcept {
  Scalar s = 0;
  for (field_index k = 0; k < d; ++k) {
    const Scalar diff = a[k] - (b == nullptr ? Scalar(0) : t * b[k]);
    s += diff * diff;
  }
  return s;
}

/// Squared norms of the columns of @p y (see plain_sq_distance).
template <class Scalar, int Dim>
Eigen::Matrix<Scalar, Eigen::Dynamic, 1> column_sq_norms(const Eigen::Map<const batch<Scalar, Dim>>& y) {
  Eigen::Matrix<Scalar, Eigen::Dynamic, 1> out(y.cols());
  for (field_index i = 0; i < y.cols(); ++i)
    out(i) = plain_sq_distance<Scalar>(y.col(i).data(), nullptr, Scalar(0), y.rows());
  return out;
}

/// Copies points [i0, i0 + m) of `y` into `yt` as an `m x (d + 1)` column-major block with
/// leading dimension `ld` (one coordinate per column, contiguous over points), the last
/// column all ones.
template <class Scalar, int Dim>
void transpose_points(const Eigen::Map<const batch<Scalar, Dim>>& y, field_index i0,
                      field_index m, field_index ld, Scalar* yt) {
  const field_index d = y.rows();
  const Scalar* src = y.data() + i0 * d;
  for (field_index i = 0; i < m; ++i)
    for (field_index k = 0; k < d; ++k) yt[k * ld + i] = src[i * d + k];
  std::fill(yt + d * ld, yt + d * ld + m, Scalar(1));
}

/// `out_i = scale · ‖x - t y_i‖²` over a transposed block (see transpose_points).
template <class Scalar, int Dim>
void direct_sq_distances(const Scalar* yt, field_index m, field_index ld, field_index d,
                         const Scalar* x, Scalar t, Scalar scale, Scalar* out) {
  if constexpr (Dim != Eigen::Dynamic) {
    // Fixed d: the coordinate loop unrolls and the loop over points vectorises.
    Scalar xs[Dim];
    for (int k = 0; k < Dim; ++k) xs[k] = x[k];
    for (field_index i = 0; i < m; ++i) {
      Scalar s = 0;
      for (int k = 0; k < Dim; ++k) {
        const Scalar diff = xs[k] - t * yt[k * ld + i];
        s += diff * diff;
      }
      out[i] = scale * s;
    }
  } else {
    using array_map = Eigen::Map<Eigen::Array<Scalar, Eigen::Dynamic, 1>>;
    using const_array_map = Eigen::Map<const Eigen::Array<Scalar, Eigen::Dynamic, 1>>;
    array_map o(out, m);
    o = (x[0] - t * const_array_map(yt, m)).square();
    for (field_index k = 1; k < d; ++k) o += (x[k] - t * const_array_map(yt + k * ld, m)).square();
    if (scale != Scalar(1)) o *= scale;
  }
}

/// Scale applied to squared distances before distances_to_logits: `-1/(2v)` with a shared
/// variance, 1 (the division happens per point) otherwise.
template <class Scalar, int Dim>
Scalar distance_scale(const posterior_points<Scalar, Dim>& pts, posterior_params<Scalar> par) {
  return pts.spread == nullptr ? Scalar(-0.5) / par.a : Scalar(1);
}

/// Completes the logits of points [i0, i0 + m) from `L_i = distance_scale · ‖x - t y_i‖²`.
template <class Scalar, int Dim>
void distances_to_logits(const posterior_points<Scalar, Dim>& pts, field_index i0, field_index m,
                         posterior_params<Scalar> par, Scalar* logits, Scalar* aux) {
  using array_map = Eigen::Map<Eigen::Array<Scalar, Eigen::Dynamic, 1>>;
  using const_array_map = Eigen::Map<const Eigen::Array<Scalar, Eigen::Dynamic, 1>>;
  array_map L(logits, m);
  if (pts.spread != nullptr) {
    array_map var(aux, m);
    const Scalar half_d = Scalar(0.5) * static_cast<Scalar>(pts.y.rows());
    var = par.a * par.a + par.t * par.t * const_array_map(pts.spread + i0, m);
    L = -(half_d * var.log() + Scalar(0.5) * L / var);
  }
  if (pts.log_prior != nullptr) L += const_array_map(pts.log_prior + i0, m);
}

/// The logit of one pair from its squared distance @p dist2 to point @p i (the one-pair form
/// of distances_to_logits, used where expanded distances are recomputed).
template <class Scalar, int Dim>
Scalar pair_logit(const posterior_points<Scalar, Dim>& pts, field_index i,
                  posterior_params<Scalar> par, Scalar dist2) {
  Scalar l;
  if (pts.spread != nullptr) {
    const Scalar half_d = Scalar(0.5) * static_cast<Scalar>(pts.y.rows());
    const Scalar var = par.a * par.a + par.t * par.t * pts.spread[i];
    l = -(half_d * std::log(var) + Scalar(0.5) * dist2 / var);
  } else {
    l = Scalar(-0.5) * dist2 / par.a;
  }
  if (pts.log_prior != nullptr) l += pts.log_prior[i];
  return l;
}

}  // namespace kinflow::detail
