#pragma once
/// @file
/// @brief The exact (closed-form) flow-matching field of a finite training set: the
/// minimiser of the flow-matching loss on `y_1 … y_N`, whose samples are training points
/// (memorization). Formulas: docs/math.md §2.
///
/// With `σ_t = 1 - (1 - σ_min) t` (σ_min = 0: `σ_t = 1 - t`):
///
///     p_t(x)   = (1/N) Σ_i N(x ; t y_i, σ_t² I)
///     w_i(x,t) = softmax_i( -‖x - t y_i‖² / (2 σ_t²) )       posterior p(y_i | x_t = x)
///     m(x,t)   = Σ_i w_i y_i                                 posterior mean (ideal denoiser)
///     v(x,t)   = (m - (1 - σ_min) x) / σ_t
///     log p_t  = logsumexp_i(-‖x - t y_i‖² / (2σ_t²)) - log N - d log σ_t - (d/2) log 2π
///     score    = (t m - x) / σ_t²
///     div v    = t / σ_t³ · tr Cov_w(y) - (1 - σ_min) d / σ_t
///
/// **t → 1: the clamp.** Every formula uses `σ_t := max(σ_t, ε)` (empirical_options::eps),
/// so nothing divides by zero as t → 1; wherever `σ_t ≥ ε` the clamp changes nothing.
///
/// **t = 1 exactly** (σ_min = 0; Heun, RK4 and Dormand–Prince evaluate a stage there). The
/// path is degenerate, `x_1 = x1`, and the flow-matching target is the conditional
/// expectation `E[x1 - x0 | x_1 = x] = E[x1 | x_1 = x] - E[x0] = m(x, 1)`, because the
/// noise x0 is independent of the data with mean 0. So at t ≥ 1 the velocity is
///
///     v(x, 1) = m(x, 1) = Σ_i w_i y_i,   w = softmax_i(-‖x - y_i‖² / (2ε²)),
///
/// which is x itself on a training point and the nearest training point(s) elsewhere:
/// bounded by the data, where the clamped `(m - x)/ε` would give a stage at t = 1 a kick of
/// order dist/ε (a Heun step of size h would overshoot by h/(2ε) times the distance). The
/// divergence at t = 1 is that of this velocity, `t tr Cov_w(y) / ε²`; log density, score
/// and posterior use the clamp. The t → 1 limit of the field is singular (it has no finite
/// value off the data), so any value at t = 1 is a choice: this one is the exact target and
/// keeps fixed-grid and adaptive solvers well-behaved. With σ_min > 0 the path is not
/// degenerate and the clamped formulas hold at t = 1 too.
///
/// **Numerics.** Log-sum-exp with max subtraction (no overflow, no 0/0 for far samples);
/// training points and samples are processed in tiles with a running log-sum-exp, so the
/// `N x B` weight matrix never exists (memory stays within empirical_options::memory_budget);
/// squared distances are formed directly for small d and from a matrix product for large d,
/// with the weight-carrying pairs recomputed directly when the expansion could cancel (see
/// kinflow::distance_method). Samples are spread over threads; a sample's result is the same
/// bits whatever the number of threads, and depends on the block sizes (memory budget) only
/// through rounding.
///
/// **Range.** Finite inputs of magnitude up to about 1e100 (double) or 1e12 (float), at any
/// `t ∈ [0, 1]`, give finite results. Samples are not checked for NaN at evaluation time: a
/// NaN in a sample makes that sample's results unspecified (its NaN coordinates stay NaN),
/// never affects other samples and never crashes. Training data are checked once.

#include <Eigen/Core>
#include <cmath>
#include <cstddef>
#include <limits>
#include <numbers>
#include <utility>

#include "kinflow/core/batch.hpp"
#include "kinflow/core/errors.hpp"
#include "kinflow/core/products.hpp"
#include "kinflow/detail/field_storage.hpp"
#include "kinflow/fields/closed_form.hpp"

namespace kinflow {

/// Default lower clamp ε of `σ_t` for empirical fields: 1e-3 for float, 1e-6 for double,
/// 1e-8 for long double.
///
/// Why: near `t = 1` the velocity `(m - x)/σ_t` is a difference of nearly equal vectors
/// divided by `σ_t`, so its rounding error relative to the scale of the data is about
/// `ε_mach / σ_t`. The defaults keep that below ~6e-5 (float) and ~2e-10 (double); the
/// logits `‖x - t y‖²/(2σ_t²)` stay far from overflow; and on uniform grids of up to 1000
/// steps (float) or 10⁶ steps (double) no time but `t = 1` itself is clamped.
template <class Scalar>
constexpr Scalar default_time_clamp() noexcept {
  if constexpr (std::numeric_limits<Scalar>::digits <= 24)
    return Scalar(1e-3);
  else if constexpr (std::numeric_limits<Scalar>::digits <= 53)
    return Scalar(1e-6);
  else
    return Scalar(1e-8);
}

/// Options of kinflow::empirical_field: σ_min and ε, and memory, threads, distances and
/// products from kinflow::closed_form_settings (`opt.threads = 1`).
template <class Scalar>
struct empirical_options : closed_form_settings {
  /// σ_min ∈ [0, 1): noise level left at t = 1 (`σ_t = 1 - (1 - σ_min) t`). Default 0.
  Scalar sigma_min = 0;
  /// ε ∈ (0, 1): `σ_t` is clamped to `max(σ_t, ε)` as t → 1; it is also the noise level of
  /// the posterior at t = 1. See kinflow::default_time_clamp for the default and why.
  Scalar eps = default_time_clamp<Scalar>();
};

/// The exact flow-matching velocity field of a training set `Y = [y_1 … y_N]` (d x N, one
/// column per point), with its posterior weights, posterior mean (ideal denoiser), log
/// density, score and divergence. See the file documentation for the formulas, the clamp
/// at t → 1 and the numerics.
///
/// A batched velocity field: `field(t, X, V)` and `field.velocity_at_times(T, X, V)` plug
/// into every integrator. Evaluation is const and may run concurrently from several
/// threads.
/// Memory and threads: see kinflow::closed_form_field.
///
/// @tparam Scalar float or double
/// @tparam Dim    d fixed at compile time (e.g. 2) or Eigen::Dynamic
template <class Scalar, int Dim = Eigen::Dynamic>
  requires real_scalar<Scalar>
class empirical_field : public closed_form_field<empirical_field<Scalar, Dim>, Scalar, Dim> {
  using base = closed_form_field<empirical_field<Scalar, Dim>, Scalar, Dim>;
  friend base;

public:
  using typename base::batch_type;
  using typename base::point_type;
  using typename base::values_type;
  /// The options type.
  using options_type = empirical_options<Scalar>;
  using base::dim;
  using base::size;

  /// Copies the training set @p training_set (d x N, N ≥ 1, finite entries).
  /// @throws kinflow::invalid_argument for an empty set, a non-finite entry or bad options;
  ///         kinflow::dimension_mismatch when the rows differ from a fixed Dim.
  template <class Derived>
  explicit empirical_field(const Eigen::MatrixBase<Derived>& training_set,
                           const options_type& options = {})
      : base(make_engine(detail::field_points<Scalar, Dim>(checked(training_set)), options)),
        opt_(options) {}

  /// Keeps a reference to @p training_set instead of a copy: the caller keeps it alive
  /// and unchanged while the field is used (squared norms are cached).
  empirical_field(keep_reference_t, const batch_type& training_set, const options_type& options = {})
      : base(make_engine(detail::field_points<Scalar, Dim>(keep_reference, checked(training_set)),
                         options)),
        opt_(options) {}
  empirical_field(keep_reference_t, const batch_type&&, const options_type& = {}) = delete;

  /// The training set (d x N).
  [[nodiscard]] Eigen::Map<const batch_type> training_set() const { return this->engine_.points(); }
  /// The options in use.
  [[nodiscard]] const options_type& options() const noexcept { return opt_; }

  /// Noise level `σ_t = max(1 - (1 - σ_min) t, ε)`.
  [[nodiscard]] Scalar sigma(Scalar t) const noexcept {
    using std::max;
    return max(Scalar(1) - (Scalar(1) - opt_.sigma_min) * t, opt_.eps);
  }

  /// Posterior mean (ideal denoiser) `M.col(j) = m(X.col(j), t) = Σ_i w_i y_i`, the
  /// expected training point given `x_t = x`.
  void posterior_mean(Scalar t, const batch_type& X, batch_type& M) const {
    this->engine_.check(X);
    M.resize(X.rows(), X.cols());
    const Eigen::Index d = dim();
    this->stream(
        [t](Eigen::Index) { return t; }, X, {true, false},
        [&](Eigen::Index j, const detail::posterior_column<Scalar>& c) {
          M.col(j) = Eigen::Map<const point_type>(c.mean, d);
        });
  }

  /// Posterior mean of every column of X, returned.
  [[nodiscard]] batch_type posterior_mean(Scalar t, const batch_type& X) const {
    batch_type M;
    posterior_mean(t, X, M);
    return M;
  }

  /// Score `S.col(j) = ∇ log p_t(x) = (t m - x) / σ_t²`.
  void score(Scalar t, const batch_type& X, batch_type& S) const {
    this->engine_.check(X);
    S.resize(X.rows(), X.cols());
    const Scalar s = sigma(t);
    const Scalar inv_var = Scalar(1) / (s * s);
    const Eigen::Index d = dim();
    this->stream([t](Eigen::Index) { return t; }, X, {true, false},
           [&](Eigen::Index j, const detail::posterior_column<Scalar>& c) {
             S.col(j) = (t * Eigen::Map<const point_type>(c.mean, d) - X.col(j)) * inv_var;
           });
  }

  /// Score of every column of X, returned.
  [[nodiscard]] batch_type score(Scalar t, const batch_type& X) const {
    batch_type S;
    score(t, X, S);
    return S;
  }

private:
  template <class Derived>
  static const Derived& checked(const Eigen::MatrixBase<Derived>& Y) {
    if constexpr (Dim != Eigen::Dynamic)
      detail::require_dimension("rows of the training set (dimension d)", Y.rows(), Dim);
    detail::require(Y.rows() >= 1, "training set rows (dimension d)", Y.rows(), "expected d >= 1");
    detail::require(Y.cols() >= 1, "training set columns (number of points N)", Y.cols(),
                    "expected a non-empty training set, N >= 1");
    detail::require_finite_entries(Y, "training set Y");
    return Y.derived();
  }

  static posterior_engine<Scalar, Dim> make_engine(detail::field_points<Scalar, Dim> points,
                                                   const options_type& opt) {
    detail::require(opt.sigma_min >= Scalar(0) && opt.sigma_min < Scalar(1), "sigma_min",
                    opt.sigma_min, "expected 0 <= sigma_min < 1");
    detail::require(opt.eps > Scalar(0) && opt.eps < Scalar(1), "eps", opt.eps,
                    "expected 0 < eps < 1 (lower clamp of sigma_t = 1 - (1 - sigma_min) t)");
    return posterior_engine<Scalar, Dim>(std::move(points), static_cast<const closed_form_settings&>(opt));
  }

  /// True where the path is degenerate (σ_min = 0 and t ≥ 1) and the velocity is `m`.
  [[nodiscard]] bool at_data_time(Scalar t) const noexcept {
    return opt_.sigma_min == Scalar(0) && t >= Scalar(1);
  }

  /// Logit parameters at time t: points scaled by t, shared variance σ_t².
  [[nodiscard]] detail::posterior_params<Scalar> params(Scalar t) const noexcept {
    const Scalar s = sigma(t);
    return {t, s * s};
  }

  /// `v = (m - (1 - σ_min) x) / σ_t`, and `m` at t ≥ 1 when σ_min = 0.
  template <class XCol, class VCol>
  void finish_velocity(Scalar t, const XCol& x, const detail::posterior_column<Scalar>& col,
                       VCol& v) const {
    const Eigen::Map<const point_type> m(col.mean, dim());
    if (at_data_time(t))
      v = m;
    else
      v = (m - (Scalar(1) - opt_.sigma_min) * x) * (Scalar(1) / sigma(t));
  }

  /// `-log N - d log σ_t - (d/2) log 2π`.
  [[nodiscard]] Scalar log_density_shift(Scalar t) const {
    return -std::log(static_cast<Scalar>(size())) - static_cast<Scalar>(dim()) * std::log(sigma(t)) -
           Scalar(0.5) * static_cast<Scalar>(dim()) * std::log(Scalar(2) * std::numbers::pi_v<Scalar>);
  }

  /// `div v = t/σ_t³ · tr Cov_w(y) - (1 - σ_min) d / σ_t` (`t tr Cov_w(y) / σ_t²` at t ≥ 1
  /// when σ_min = 0, the divergence of `m`), with `tr Cov_w(y) = Σ_i w_i ‖y_i - m‖²`
  /// accumulated in a cancellation-free form (docs/math.md, "The divergence in the
  /// velocity's pass").
  template <class TimeOf>
  void divergence_impl(const TimeOf& time_of, const batch_type& X, values_type& D) const {
    this->engine_.check(X);
    D.resize(X.cols());
    this->stream(time_of, X, {false, true},
                 [&](Eigen::Index j, const detail::posterior_column<Scalar>& col) {
                   D(j) = finish_divergence(time_of(j), col);
                 });
  }

  /// The divergence is a finishing step of the trace (velocity_and_divergence: one pass).
  [[nodiscard]] static constexpr bool divergence_in_stream() noexcept { return true; }

  /// div v at time t from the posterior's trace (see divergence_impl).
  [[nodiscard]] Scalar finish_divergence(Scalar t, const detail::posterior_column<Scalar>& col) const {
    const Scalar s = sigma(t);
    const Scalar a = t / (s * s * s);
    return at_data_time(t) ? a * s * col.trace
                           : a * col.trace - (Scalar(1) - opt_.sigma_min) * static_cast<Scalar>(dim()) / s;
  }

  options_type opt_;
};

/// Deduces `empirical_field<Scalar, Rows>` from the training matrix.
template <class Derived>
empirical_field(const Eigen::MatrixBase<Derived>&)
    -> empirical_field<typename Derived::Scalar, Derived::RowsAtCompileTime>;
/// Deduces `empirical_field<Scalar, Rows>` from the training matrix and options.
template <class Derived>
empirical_field(const Eigen::MatrixBase<Derived>&, const empirical_options<typename Derived::Scalar>&)
    -> empirical_field<typename Derived::Scalar, Derived::RowsAtCompileTime>;
/// Deduces `empirical_field<Scalar, Dim>` from a referenced training batch.
template <class Scalar, int Dim>
empirical_field(keep_reference_t, const batch<Scalar, Dim>&) -> empirical_field<Scalar, Dim>;
/// Deduces `empirical_field<Scalar, Dim>` from a referenced training batch and options.
template <class Scalar, int Dim>
empirical_field(keep_reference_t, const batch<Scalar, Dim>&, const empirical_options<Scalar>&)
    -> empirical_field<Scalar, Dim>;

}  // namespace kinflow
