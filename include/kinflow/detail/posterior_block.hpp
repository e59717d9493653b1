#pragma once
/// @file
/// @brief Private machinery of the closed-form posterior engine: the streaming kernel. One
/// worker takes a block of samples through every block of points, carrying each sample's
/// running maximum logit and sums from block to block (an online log-sum-exp), and hands
/// each sample's statistics to a sink at the end (docs/math.md, "The closed-form posterior
/// engine").
///
/// For samples `x_j` at times `t_j` and points `y_i`, the logits are
///
///     L_ij = log π_i - ‖x_j - t_j y_i‖² / (2 v_j)                  (shared variance v_j)
///     L_ij = log π_i - (d/2) log v_ij - ‖x_j - t_j y_i‖² / (2 v_ij),
///            v_ij = u_j² + t_j² s_i²                                 (per-point variance)
///
/// and the posterior weights `w_ij = softmax_i(L_ij)`. One pass gives, per sample, relative
/// to the running maximum `M_j`: `Σ_i exp(L_ij - M_j)`, `Σ_i exp(L_ij - M_j) g_ij y_i`,
/// `Σ_i exp(L_ij - M_j) c_ij` (per-point case, `c_ij = (t s_i² - u) / v_ij`,
/// `g_ij = 1 - t c_ij`) and `Σ_i exp(L_ij - M_j) ‖y_i - ȳ_j‖²`. The `N x B` weight matrix
/// never exists beyond one `rows_block x cols_block` tile per worker; every sample is
/// computed by the same sequence of operations whatever the number of threads.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>

#include <Eigen/Core>

#include "kinflow/core/batch.hpp"
#include "kinflow/detail/field_parallel.hpp"
#include "kinflow/detail/gemm.hpp"
#include "kinflow/detail/vector_exp.hpp"
#include "kinflow/detail/posterior_kernels.hpp"
#include "kinflow/detail/posterior_plan.hpp"
#include "kinflow/detail/posterior_trace.hpp"

namespace kinflow::detail {

/// Points [begin, end) of a stream.
struct point_range {
  field_index begin;
  field_index end;
};

/// One sample's running statistics at the end of a stream, relative to its maximum logit.
template <class Scalar>
struct posterior_raw {
  Scalar max;        ///< M = max_i L_i (-inf when no point carries weight)
  Scalar sum;        ///< Σ_i exp(L_i - M)
  Scalar coef;       ///< Σ_i exp(L_i - M) c_i (per-point variance case)
  Scalar m2;         ///< Σ_i exp(L_i - M) ‖y_i - ȳ‖² (when the trace was requested)
  Scalar* weighted;  ///< d entries, Σ_i exp(L_i - M) g_i y_i; a sink may overwrite them
};

/// One sample's normalised statistics, handed to a field's finishing step.
template <class Scalar>
struct posterior_column {
  Scalar log_sum;      ///< log Σ_i exp(L_i)
  const Scalar* mean;  ///< d entries, Σ_i w_i g_i y_i (null unless the mean was requested)
  Scalar coef;         ///< Σ_i w_i c_i (per-point variance case)
  Scalar trace;        ///< Σ_i w_i ‖y_i - ȳ‖² (when requested)
};

/// Normalises @p raw (its weighted sum in place when @p mean) into a column.
template <class Scalar>
posterior_column<Scalar> normalise(const posterior_raw<Scalar>& raw, field_index d, bool mean) {
  posterior_column<Scalar> c{};
  c.log_sum = raw.max + std::log(raw.sum);
  if (mean) {
    const Scalar inv = Scalar(1) / raw.sum;
    for (field_index k = 0; k < d; ++k) raw.weighted[k] *= inv;
    c.mean = raw.weighted;
  }
  c.coef = raw.coef / raw.sum;
  c.trace = raw.m2 / raw.sum;
  return c;
}

/// One worker's streaming state over its scratch (layout: posterior_worker_scalars).
template <class Scalar, int Dim>
class posterior_tile_worker {
public:
  using array = Eigen::Array<Scalar, Eigen::Dynamic, 1>;
  using array_map = Eigen::Map<array>;
  using const_array_map = Eigen::Map<const array>;
  using vector_map = Eigen::Map<Eigen::Matrix<Scalar, Eigen::Dynamic, 1>>;

  posterior_tile_worker(const posterior_points<Scalar, Dim>& pts, const posterior_plan& plan,
                        posterior_request req, Scalar* scratch)
      : pts_(pts), plan_(plan), req_(req), d_(pts.y.rows()), n_(pts.y.cols()),
        ld_(field_pad<Scalar>(plan.rows_block)) {
    const field_index cb = field_pad<Scalar>(plan.cols_block);
    Scalar* p = scratch;
    if (plan.expanded) {
      tile_ = p;  // ld x cols_block
      p += ld_ * plan.cols_block;
    } else {
      yt_ = p;  // ld x (d + 1)
      p += ld_ * (d_ + 1);
      tile_ = p;  // one column
      p += ld_;
    }
    aux_ = p;
    p += ld_;
    acc_ = p;
    p += field_pad<Scalar>(d_ * plan.cols_block);
    run_max_ = p;
    run_sum_ = run_max_ + cb;
    run_coef_ = run_sum_ + cb;
    run_m2_ = run_coef_ + cb;
    col_t_ = run_m2_ + cb;
    col_a_ = col_t_ + cb;
    x_norm2_ = col_a_ + cb;
    bound_ = x_norm2_ + cb;
    tmp_ = bound_ + cb;  // d + 1
    if (plan.expanded && req.trace)
      trace_ = split_trace<Scalar>(tmp_ + field_pad<Scalar>(d_ + 1), d_, plan.cols_block);
  }

  /// Streams samples [j0, j0 + nc) of X over every point; calls `sink(j, raw)` per sample.
  template <class XB, class Params, class Sink>
  void run(const XB& X, field_index j0, field_index nc, const Params& params,
           const Sink& sink) {
    const point_range all{0, n_};
    run(X, j0, nc, params, &all, 1, sink);
  }

  /// Streams samples [j0, j0 + nc) of X over the points of @p ranges (@p count disjoint
  /// ranges); calls `sink(j, raw)` per sample with the statistics over those points.
  template <class XB, class Params, class Sink>
  void run(const XB& X, field_index j0, field_index nc, const Params& params,
           const point_range* ranges, std::size_t count, const Sink& sink) {
    const bool split = req_.trace && plan_.expanded;
    // A split trace first runs with relaxed samples; a sample that fails its check runs
    // again alone, without relaxing (the others keep their results).
    stream(X, j0, nc, params, ranges, count, split);
    for (field_index j = 0; j < nc; ++j) {
      const bool redo =
          split && !trace_.accurate(j, acc_ + j * d_, run_m2_[j], col_t_[j], col_a_[j], logit_error(j), tmp_);
      if (split) trace_.set_redo(j, redo);
      if (!redo) emit(j0, j, split, sink);
    }
    if (!split) return;
    for (field_index j = 0; j < nc; ++j)
      if (trace_.redo(j)) {
        stream(X, j0 + j, 1, params, ranges, count, false);
        emit(j0 + j, 0, split, sink);
      }
  }

private:
  /// Streams samples [j0, j0 + nc) over the points of the ranges into the running state.
  template <class XB, class Params>
  void stream(const XB& X, field_index j0, field_index nc, const Params& params, const point_range* ranges,
              std::size_t count, bool relax) {
    start(X, j0, nc, params, relax);
    for (std::size_t r = 0; r < count; ++r) {
      for (field_index i0 = ranges[r].begin; i0 < ranges[r].end; i0 += plan_.rows_block) {
        const field_index m = std::min(plan_.rows_block, ranges[r].end - i0);
        if (plan_.expanded)
          expanded_block(X, j0, nc, i0, m);
        else
          direct_block(X, j0, nc, i0, m);
      }
    }
  }

  /// Finishes the running state of sample j (of the stream from j0) and hands it to `sink`.
  template <class Sink>
  void emit(field_index j0, field_index j, bool split, const Sink& sink) {
    Scalar* a = acc_ + j * d_;
    if (split) {
      trace_.finish(j, a, run_m2_[j], run_sum_[j], tmp_);
    } else if (req_.trace) {
      // The trace's pairwise update keeps the normalised mean: back to a weighted sum.
      for (field_index k = 0; k < d_; ++k) a[k] *= run_sum_[j];
    }
    sink(j0 + j, posterior_raw<Scalar>{run_max_[j], run_sum_[j], run_coef_[j], run_m2_[j], a});
  }

  static constexpr Scalar inf = std::numeric_limits<Scalar>::infinity();
  static constexpr Scalar eps = std::numeric_limits<Scalar>::epsilon();

  [[nodiscard]] bool per_point() const noexcept { return pts_.spread != nullptr; }

  /// Resets the running state of the block's samples and takes their parameters; for
  /// expanded distances, bounds the rounding of each sample's logits.
  template <class XB, class Params>
  void start(const XB& X, field_index j0, field_index nc, const Params& params, bool relax) {
    std::fill(run_max_, run_max_ + nc, -inf);
    std::fill(run_sum_, run_sum_ + nc, Scalar(0));
    std::fill(run_coef_, run_coef_ + nc, Scalar(0));
    std::fill(run_m2_, run_m2_ + nc, Scalar(0));
    std::fill(acc_, acc_ + d_ * nc, Scalar(0));
    for (field_index j = 0; j < nc; ++j) {
      const posterior_params<Scalar> par = params(j0 + j);
      col_t_[j] = par.t;
      col_a_[j] = par.a;
    }
    if (!plan_.expanded) return;
    if (req_.trace) trace_.start(nc, col_t_, col_a_, n_, pts_.max_norm, relax);
    // The cross term x·y of a product of length d carries an error of about sqrt(d) u ‖x‖‖y‖
    // (u the unit roundoff), the norms likewise; (2 sqrt(d) + 4) u (‖x‖ + t max‖y‖)² bounds
    // the error of the squared distance, divided by 2v for the logit.
    const Scalar kappa = (Scalar(2) * std::sqrt(static_cast<Scalar>(d_)) + Scalar(4)) * eps / 2;
    for (field_index j = 0; j < nc; ++j) {
      const Scalar xx = plain_sq_distance<Scalar>(X.col(j0 + j).data(), nullptr, Scalar(0), d_);
      x_norm2_[j] = xx;
      const Scalar t = col_t_[j];
      const Scalar min_var = per_point() ? col_a_[j] * col_a_[j] + t * t * pts_.min_spread : col_a_[j];
      const Scalar r = std::sqrt(xx) + std::abs(t) * pts_.max_norm;
      bound_[j] = kappa * r * r / (Scalar(2) * min_var);
    }
  }

  /// Direct distances: points [i0, i0 + m) transposed once, then one sample at a time.
  template <class XB>
  void direct_block(const XB& X, field_index j0, field_index nc, field_index i0,
                    field_index m) {
    transpose_points<Scalar, Dim>(pts_.y, i0, m, ld_, yt_);
    for (field_index j = 0; j < nc; ++j) {
      const posterior_params<Scalar> par{col_t_[j], col_a_[j]};
      direct_sq_distances<Scalar, Dim>(yt_, m, ld_, d_, X.col(j0 + j).data(), par.t,
                                       distance_scale(pts_, par), tile_);
      distances_to_logits<Scalar, Dim>(pts_, i0, m, par, tile_, aux_);
      fold(j, i0, m, tile_);
    }
  }

  /// Expanded distances: one product for the whole tile, the logits per sample (refined
  /// where the expansion may cancel), and the mean's contribution from a second product.
  template <class XB>
  void expanded_block(const XB& X, field_index j0, field_index nc, field_index i0,
                      field_index m) {
    using tile_map = Eigen::Map<Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>, 0,
                                Eigen::OuterStride<>>;
    tile_map T(tile_, m, nc, Eigen::OuterStride<>(ld_));
    const auto yb = pts_.y.middleCols(i0, m);
    product_into(yb.transpose(), X.middleCols(j0, nc), T, false, plan_.blas);
    const const_array_map yy(pts_.sq_norm + i0, m);
    for (field_index j = 0; j < nc; ++j) {
      array_map L(tile_ + j * ld_, m);
      const Scalar t = col_t_[j];
      const posterior_params<Scalar> par{t, col_a_[j]};
      L = ((x_norm2_[j] - Scalar(2) * t * L) + (t * t) * yy).max(Scalar(0)) * distance_scale(pts_, par);
      distances_to_logits<Scalar, Dim>(pts_, i0, m, par, L.data(), aux_);
      refine(j, X.col(j0 + j).data(), i0, m, L);
      const Scalar alpha = fold(j, i0, m, L.data());
      if (req_.mean && alpha != Scalar(1)) vector_map(acc_ + j * d_, d_) *= alpha;
    }
    if (req_.mean || req_.trace) {
      Eigen::Map<Eigen::Matrix<Scalar, Dim, Eigen::Dynamic>> A(acc_, d_, nc);
      product_into(yb, T, A, true, plan_.blas);
    }
  }

  /// What a logit of size |top| carries where refine() recomputes, or the expansion keeps:
  /// `ε^(2/3)` plus about `8 sqrt(d) ε |top|`.
  [[nodiscard]] Scalar refined_logit_error(Scalar top) const {
    return std::pow(eps, Scalar(2) / Scalar(3)) + Scalar(8) * std::sqrt(static_cast<Scalar>(d_)) * eps * std::abs(top);
  }

  /// The rounding of sample j's logits that carry weight, in nats: the expansion's bound, or
  /// less where refine() recomputes them.
  [[nodiscard]] Scalar logit_error(field_index j) const {
    return std::min(bound_[j], refined_logit_error(run_max_[j]));
  }

  /// Where the rounding bound of sample j's expanded logits exceeds `ε^(2/3)` plus the
  /// rounding a logit of that size has anyway (about 8 sqrt(d) ε |L|, |L| near the maximum),
  /// recomputes directly every pair that may carry weight. Pairs left out have logits below
  /// the maximum by more than `margin` even after their worst rounding, so their weights are
  /// below ε/n each.
  void refine(field_index j, const Scalar* xj, field_index i0, field_index m, array_map& L) const {
    const Scalar top = std::max(run_max_[j], L.maxCoeff());
    if (!(bound_[j] > refined_logit_error(top))) return;
    const Scalar margin = std::log(static_cast<Scalar>(n_)) - std::log(eps) + Scalar(2);
    const Scalar thr = top - Scalar(2) * bound_[j] - margin;
    const posterior_params<Scalar> par{col_t_[j], col_a_[j]};
    for (field_index i = 0; i < m; ++i) {
      if (!(L(i) >= thr)) continue;
      const Scalar dist2 = plain_sq_distance<Scalar>(xj, pts_.y.col(i0 + i).data(), par.t, d_);
      L(i) = pair_logit(pts_, i0 + i, par, dist2);
    }
  }

  /// Folds the logits of one block (in `e_ptr`, overwritten by the unnormalised weights,
  /// times g in the per-point case) into sample j's running state. Returns the factor by
  /// which the sample's accumulated weighted sum must still be rescaled (expanded path:
  /// the block's contribution comes later from one product), 1 when done here.
  Scalar fold(field_index j, field_index i0, field_index m, Scalar* e_ptr) {
    array_map e(e_ptr, m);
    const Scalar new_max = std::max(run_max_[j], e.maxCoeff());
    if (!(new_max > -inf)) {  // every logit so far is -inf: nothing to add
      e.setZero();
      return Scalar(1);
    }
    const Scalar alpha = run_max_[j] == -inf ? Scalar(0) : std::exp(run_max_[j] - new_max);
    run_max_[j] = new_max;
    e = (e - new_max).max(exp_floor<Scalar>());
    exp_in_place(e_ptr, m);
    if (req_.trace) {
      if (plan_.expanded)
        trace_.fold(j, pts_.y, pts_.sq_norm, i0, m, e, alpha, vector_map(acc_ + j * d_, d_), run_m2_[j],
                    logit_error(j), tmp_);
      else
        fold_trace(j, m, e, alpha);
      return Scalar(1);
    }
    if (per_point()) {
      fold_per_point(j, i0, m, e, alpha);
    } else {
      run_sum_[j] = alpha * run_sum_[j] + e.sum();
    }
    if (req_.mean && !plan_.expanded) {
      using strided_map = Eigen::Map<const Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>,
                                     0, Eigen::OuterStride<>>;
      const strided_map ytm(yt_, m, d_, Eigen::OuterStride<>(ld_));
      vector_map aj(acc_ + j * d_, d_);
      if (alpha != Scalar(1)) aj *= alpha;
      aj.noalias() += ytm.transpose() * e.matrix();
      return Scalar(1);
    }
    return alpha;
  }

  /// Per-point variances: `c = (t s² - u) / v` summed with the weights, which become e g,
  /// `g = 1 - t c`, when the mean is requested.
  void fold_per_point(field_index j, field_index i0, field_index m, array_map& e, Scalar alpha) {
    const Scalar t = col_t_[j];
    array_map c(aux_, m);
    c = col_a_[j] * col_a_[j] + t * t * const_array_map(pts_.spread + i0, m);
    c = (t * const_array_map(pts_.spread + i0, m) - col_a_[j]) / c;
    const Scalar sb = e.sum();
    const Scalar hc = (e * c).sum();
    run_sum_[j] = alpha * run_sum_[j] + sb;
    run_coef_[j] = alpha * run_coef_[j] + hc;
    if (req_.mean) e *= Scalar(1) - t * c;
  }

  /// Chan's pairwise update of a weighted mean and sum of squared deviations (direct
  /// distances: the transposed block is at hand).
  void fold_trace(field_index j, field_index m, const array_map& e, Scalar alpha) {
    using strided_map = Eigen::Map<const Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>, 0,
                                   Eigen::OuterStride<>>;
    const strided_map ytm(yt_, m, d_ + 1, Eigen::OuterStride<>(ld_));
    vector_map s(tmp_, d_ + 1);
    s.noalias() = ytm.transpose() * e.matrix();
    const Scalar sb = s(d_);
    vector_map mu_b(tmp_, d_);
    mu_b /= sb;
    Scalar m2_b = 0;
    for (field_index k = 0; k < d_; ++k)
      m2_b += (e * (const_array_map(yt_ + k * ld_, m) - mu_b(k)).square()).sum();
    const Scalar sa = alpha * run_sum_[j];
    const Scalar total = sa + sb;
    vector_map mu(acc_ + j * d_, d_);
    const Scalar sq = (mu_b - mu).squaredNorm();
    mu += (sb / total) * (mu_b - mu);
    run_m2_[j] = alpha * run_m2_[j] + m2_b + sq * (sa * sb / total);
    run_sum_[j] = total;
  }


  const posterior_points<Scalar, Dim>& pts_;
  const posterior_plan& plan_;
  posterior_request req_;
  field_index d_, n_, ld_;
  Scalar* yt_ = nullptr;
  Scalar* tile_ = nullptr;
  Scalar* aux_ = nullptr;
  Scalar* acc_ = nullptr;
  Scalar *run_max_ = nullptr, *run_sum_ = nullptr, *run_coef_ = nullptr, *run_m2_ = nullptr;
  Scalar *col_t_ = nullptr, *col_a_ = nullptr, *x_norm2_ = nullptr, *bound_ = nullptr;
  Scalar* tmp_ = nullptr;
  split_trace<Scalar> trace_;  ///< the trace over product distances
};

/// Streams all samples of X over all points: calls `sink(j, raw)` once per sample (from
/// worker threads, each j exactly once). `params(j)` gives sample j's parameters. `sink`
/// may write column j of an output that aliases X.
template <class Scalar, int Dim, class Params, class Sink>
void posterior_stream(const posterior_points<Scalar, Dim>& pts, const batch<Scalar, Dim>& X,
                      const Params& params, posterior_request req, const posterior_plan& plan,
                      const Sink& sink) {
  const field_index b = X.cols();
  if (b == 0) return;
  field_scratch<Scalar> mem(static_cast<std::size_t>(plan.workers) * plan.worker_scalars);
  const auto tasks = static_cast<std::size_t>((b + plan.cols_block - 1) / plan.cols_block);
  const blas_single_thread_scope single_threaded_blas(plan.blas && plan.expanded);
  field_parallel_for(plan.workers, tasks, [&](unsigned w, std::size_t task) {
    const field_index j0 = static_cast<field_index>(task) * plan.cols_block;
    const field_index nc = std::min(plan.cols_block, b - j0);
    posterior_tile_worker<Scalar, Dim> worker(
        pts, plan, req, mem.data() + static_cast<std::size_t>(w) * plan.worker_scalars);
    // Through a map, the type the pruned stream uses too: one instantiation of the kernels.
    worker.run(Eigen::Map<const batch<Scalar, Dim>>(X.data(), X.rows(), X.cols()), j0, nc, params, sink);
  });
}

}  // namespace kinflow::detail
