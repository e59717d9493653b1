#pragma once
/// @file
/// @brief Private machinery of the closed-form posterior engine: the trace of the posterior
/// covariance gathered in the velocity's pass over product distances (docs/math.md, "The
/// divergence in the velocity's pass").
///
/// Each sample's pairs split into *near* ones, whose deviations from their weighted mean are
/// summed from direct coordinates (O(d) per pair), and *far* ones, which are only summed,
/// `Σ e`, `Σ e ‖y‖²` and (by the mean's product) `Σ e y`, and join at the end about the final
/// mean. A pair is near when its weight exceeds a cut that bounds what the far sums' rounding
/// can do to the trace. A sample whose near pairs already show a spread posterior about a mean
/// close to the origin is *relaxed*: from then on every pair is far, and at the end the far
/// expansion's own rounding is checked against the trace it produced; a sample that fails the
/// check is streamed again, alone and without relaxing (docs/math.md, "Relaxed samples").

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <limits>

#include <Eigen/Core>

#include "kinflow/detail/posterior_plan.hpp"

namespace kinflow::detail {

/// The split trace of up to `cols` samples over a worker's scratch.
template <class Scalar>
class split_trace {
public:
  using array_map = Eigen::Map<Eigen::Array<Scalar, Eigen::Dynamic, 1>>;
  using const_array_map = Eigen::Map<const Eigen::Array<Scalar, Eigen::Dynamic, 1>>;
  using vector_map = Eigen::Map<Eigen::Matrix<Scalar, Eigen::Dynamic, 1>>;

  /// Scratch scalars for @p cols samples of dimension @p d.
  static field_index scalars(field_index d, field_index cols) {
    return field_pad<Scalar>(d * cols) + 6 * field_pad<Scalar>(cols);
  }

  split_trace() = default;
  split_trace(Scalar* p, field_index d, field_index cols) : d_(d) {
    const field_index cb = field_pad<Scalar>(cols);
    near_mean_ = p;  // d x cols
    p += field_pad<Scalar>(d * cols);
    near_sum_ = p;
    far_sum_ = p + cb;
    far_sq_ = p + 2 * cb;
    cut_ = p + 3 * cb;
    relaxed_ = p + 4 * cb;
    redo_ = p + 5 * cb;
  }

  /// Resets samples [0, nc) for a stream over @p n points of largest norm @p max_norm;
  /// `t[j]`, `v[j]`: sample j's scale and shared variance. The cut
  /// `τ = d v / (64 t R² n)` (relative to the running maximum weight) bounds the far sums'
  /// rounding in the trace by `d v / (16 t)` machine epsilons.
  void start(field_index nc, const Scalar* t, const Scalar* v, field_index n, Scalar max_norm,
             bool allow_relaxed) {
    std::fill(near_mean_, near_mean_ + d_ * nc, Scalar(0));
    std::fill(near_sum_, near_sum_ + nc, Scalar(0));
    std::fill(far_sum_, far_sum_ + nc, Scalar(0));
    std::fill(far_sq_, far_sq_ + nc, Scalar(0));
    std::fill(relaxed_, relaxed_ + nc, Scalar(0));
    allow_relaxed_ = allow_relaxed;
    const Scalar r2 = max_norm * max_norm;
    for (field_index j = 0; j < nc; ++j) {
      const Scalar tj = std::abs(t[j]);
      const Scalar cut = static_cast<Scalar>(d_) * v[j] / (Scalar(64) * tj * r2 * static_cast<Scalar>(n));
      cut_[j] = tj > Scalar(0) && r2 > Scalar(0) ? cut : inf;  // t = 0 or all y = 0: no trace term
    }
  }

  /// Folds one block of weights `e` of points [i0, i0 + m) of @p y (rescaled from the old
  /// maximum by alpha) into sample j; the far pairs stay in `e` for the mean's product, whose
  /// running sum is @p far and the near pairs' squared deviations @p m2. @p tmp: d scalars.
  template <class Points>
  void fold(field_index j, const Points& y, const Scalar* sq_norm, field_index i0, field_index m,
            array_map& e, Scalar alpha, vector_map far, Scalar& m2, Scalar logit_err, Scalar* tmp) {
    if (alpha != Scalar(1)) {
      far *= alpha;
      near_sum_[j] *= alpha;
      m2 *= alpha;
      far_sum_[j] *= alpha;
      far_sq_[j] *= alpha;
      // A new maximum far above the old one: what made the sample look spread has faded.
      if (alpha < Scalar(0.5) && relaxed_[j] == relaxed_now) relaxed_[j] = relaxed_before;
    }
    // The near pairs in runs of at least `run`, so that a sample may relax early in the
    // block. Once a posterior has concentrated few pairs are near: chunks of `chunk` pairs
    // without one are skipped by one vectorized maximum; the others are gathered without
    // branches.
    constexpr field_index run = 32, chunk = 16;
    std::array<field_index, run + chunk> near;
    field_index k = 0;
    const Scalar cut = cut_[j];
    for (field_index c0 = 0; c0 < m && relaxed_[j] != relaxed_now; c0 += chunk) {
      const field_index c1 = std::min(m, c0 + chunk);
      if (!(e.segment(c0, c1 - c0).maxCoeff() > cut)) continue;
      for (field_index i = c0; i < c1; ++i) {
        near[static_cast<std::size_t>(k)] = i;
        k += e(i) > cut ? 1 : 0;
      }
      if (k >= run) {
        fold_near(j, y, i0, near.data(), k, e, m2, trace_budget(logit_err), tmp);
        k = 0;
      }
    }
    if (k > 0) fold_near(j, y, i0, near.data(), k, e, m2, trace_budget(logit_err), tmp);
    far_sum_[j] += e.sum();
    far_sq_[j] += (e * const_array_map(sq_norm + i0, m)).sum();
  }

  /// Folds the near pairs `near[0..k)` of the block (weights `e`, points from i0) into
  /// sample j's near state, by Chan's pairwise update, and zeroes their weights.
  template <class Points>
  void fold_near(field_index j, const Points& y, field_index i0, const field_index* near, field_index k,
                 array_map& e, Scalar& m2, Scalar budget, Scalar* tmp) {
    vector_map mu_b(tmp, d_), near_mean(near_mean_ + j * d_, d_);
    // Four pairs at a time: one pass over the running vector per four points.
    mu_b.setZero();
    Scalar sb = 0;
    const field_index k4 = k - k % 4;
    for (field_index r = 0; r < k4; r += 4) {
      const Scalar w0 = e(near[r]), w1 = e(near[r + 1]), w2 = e(near[r + 2]), w3 = e(near[r + 3]);
      sb += (w0 + w1) + (w2 + w3);
      mu_b += w0 * y.col(i0 + near[r]) + w1 * y.col(i0 + near[r + 1]) + w2 * y.col(i0 + near[r + 2]) +
              w3 * y.col(i0 + near[r + 3]);
    }
    for (field_index r = k4; r < k; ++r) {
      sb += e(near[r]);
      mu_b += e(near[r]) * y.col(i0 + near[r]);
    }
    mu_b /= sb;
    Scalar m2_b = 0;
    for (field_index r = 0; r < k4; r += 4)
      m2_b += (e(near[r]) * (y.col(i0 + near[r]) - mu_b).array().square() +
               e(near[r + 1]) * (y.col(i0 + near[r + 1]) - mu_b).array().square() +
               e(near[r + 2]) * (y.col(i0 + near[r + 2]) - mu_b).array().square() +
               e(near[r + 3]) * (y.col(i0 + near[r + 3]) - mu_b).array().square())
                  .sum();
    for (field_index r = k4; r < k; ++r) m2_b += e(near[r]) * (y.col(i0 + near[r]) - mu_b).squaredNorm();
    for (field_index r = 0; r < k; ++r) e(near[r]) = 0;
    const Scalar sa = near_sum_[j];
    const Scalar total = sa + sb;
    const Scalar sq = (mu_b - near_mean).squaredNorm();
    near_mean += (sb / total) * (mu_b - near_mean);
    m2 += m2_b + sq * (sa * sb / total);
    near_sum_[j] = total;
    // Near pairs beyond the heaviest one (W_N ≥ 1.1 maximum weights) about a mean close
    // enough to the origin that the far expansion's rounding, about 4 ε W (tr + 4 ‖μ‖²),
    // will be within the budget.
    if (allow_relaxed_ && cut_[j] < inf && total >= Scalar(1.1) &&
        Scalar(16) * total * near_mean.squaredNorm() <= (budget - Scalar(4)) * m2)
      relaxed_[j] = relaxed_now;
  }

  /// The relative rounding a relaxed sample's trace may have, in machine epsilons: 8, or a
  /// quarter of what the logits' own rounding bound @p logit_err (in nats; each weight is
  /// within a factor `e^{±logit_err}`) can do to `Q`.
  [[nodiscard]] static Scalar trace_budget(Scalar logit_err) noexcept {
    return std::max(Scalar(8), logit_err / (Scalar(4) * std::numeric_limits<Scalar>::epsilon()));
  }

  /// Whether sample j's trace is within the bound: always for a sample never relaxed (its
  /// cut guarantees it); for a relaxed one, when the far expansion's rounding,
  /// `4 ε (Σ_F e‖y‖² + 2‖μ‖‖Σ_F e y‖ + ‖μ‖² Σ_F e)`, is within `ε d v W / (16 t)` or
  /// within `ε Q trace_budget(logit_err)`.
  [[nodiscard]] bool accurate(field_index j, const Scalar* far_sum, Scalar m2, Scalar t, Scalar v,
                              Scalar logit_err, Scalar* tmp) const {
    if (relaxed_[j] == Scalar(0)) return true;
    const_vector_map far(far_sum, d_), near_mean(near_mean_ + j * d_, d_);
    vector_map mu(tmp, d_);
    const Scalar wn = near_sum_[j], wf = far_sum_[j], total = wn + wf;
    mu = (wn * near_mean + far) / total;
    const Scalar mm = mu.squaredNorm();
    const Scalar q = m2 + wn * (near_mean - mu).squaredNorm() +
                     std::max(far_sq_[j] - Scalar(2) * mu.dot(far) + mm * wf, Scalar(0));
    const Scalar err = Scalar(4) * (far_sq_[j] + Scalar(2) * std::sqrt(mm) * far.norm() + mm * wf);
    const Scalar budget = std::max(static_cast<Scalar>(d_) * v * total / (Scalar(16) * std::abs(t)),
                                   trace_budget(logit_err) * q);
    return err <= budget;
  }

  /// Marks sample j as one to stream again without relaxing (its check failed), or not.
  /// The mark outlives start(): streams of other samples leave it.
  void set_redo(field_index j, bool redo) noexcept { redo_[j] = redo ? Scalar(1) : Scalar(0); }
  /// Whether sample j is marked to stream again.
  [[nodiscard]] bool redo(field_index j) const noexcept { return redo_[j] != Scalar(0); }

  /// Joins sample j's near and far parts: the weight sum @p sum, the weighted sum (in
  /// @p far) and the squared deviations about the mean of all, `Q = Q_near + W_near
  /// ‖μ_near - μ‖² + Q_far(μ)` with `Q_far(μ) = Σ e ‖y‖² - 2 μ·Σ e y + ‖μ‖² Σ e` (never
  /// negative in exact arithmetic). @p tmp: d scalars.
  void finish(field_index j, Scalar* far_sum, Scalar& m2, Scalar& sum, Scalar* tmp) const {
    vector_map far(far_sum, d_), near_mean(near_mean_ + j * d_, d_), mu(tmp, d_);
    const Scalar wn = near_sum_[j], wf = far_sum_[j];
    const Scalar total = wn + wf;
    mu = (wn * near_mean + far) / total;
    const Scalar q_far = far_sq_[j] - Scalar(2) * mu.dot(far) + mu.squaredNorm() * wf;
    m2 += wn * (near_mean - mu).squaredNorm() + std::max(q_far, Scalar(0));
    sum = total;
    far += wn * near_mean;
  }

private:
  using const_vector_map = Eigen::Map<const Eigen::Matrix<Scalar, Eigen::Dynamic, 1>>;
  static constexpr Scalar inf = std::numeric_limits<Scalar>::infinity();

  // relaxed_[j]: 0 never relaxed, relaxed_now, or relaxed_before (then cut again).
  static constexpr Scalar relaxed_now = 1;
  static constexpr Scalar relaxed_before = 2;

  field_index d_ = 0;
  bool allow_relaxed_ = false;
  Scalar *near_mean_ = nullptr, *near_sum_ = nullptr, *far_sum_ = nullptr, *far_sq_ = nullptr,
         *cut_ = nullptr, *relaxed_ = nullptr, *redo_ = nullptr;
};

}  // namespace kinflow::detail
