#pragma once
/// @file
/// @brief The exact flow-matching field of a Gaussian-mixture target (docs/math.md §3); its
/// special case with a Gaussian of std s at every training point is
/// kinflow::smoothed_empirical (kinflow/fields/smoothed_empirical.hpp, included here too).
///
/// Target `Σ_k π_k N(μ_k, s_k² I)` on the linear path `x_t = (1 - t) x0 + t x1`. Given
/// component k, `x_t ~ N(t μ_k, σ_k(t)² I)` with `σ_k(t)² = (1 - t)² + t² s_k²`, and
///
///     v_k(x,t) = μ_k + (t s_k² - (1 - t)) / σ_k(t)² · (x - t μ_k)
///     w_k(x,t) = π_k N(x ; t μ_k, σ_k(t)² I) / p_t(x)        (note the -d log σ_k term)
///     v(x,t)   = Σ_k w_k v_k
///     log p_t  = logsumexp_k(log π_k - ‖x - t μ_k‖²/(2σ_k²) - d log σ_k) - (d/2) log 2π
///
/// Since every `s_k > 0`, `σ_k(t)² ≥ s_k²/(1 + s_k²) > 0` on [0, 1]: the field is smooth up
/// to and including `t = 1`, no clamp is needed. With all `s_k = s → 0` it tends to the
/// empirical field (kinflow::empirical_field).
///
/// **Divergence.** With `g_k = (t s_k² - (1 - t))/σ_k²` (so `v_k = μ_k + g_k (x - t μ_k)`,
/// `∇·v_k = d g_k`) and `a_k = ∇ log N_k = -(x - t μ_k)/σ_k²`, the weights have
/// `∇w_k = w_k (a_k - ā)`, `ā = Σ_l w_l a_l`, so
///
///     div v = Σ_k w_k d g_k + Σ_k w_k (a_k - ā)·(v_k - v̄),     v̄ = v = Σ_k w_k v_k
///
/// (a weighted covariance, equal to `Σ_k w_k a_k·v_k - ā·v̄`). With one shared std s,
/// `a_k - ā = t (μ_k - μ̄)/σ²` and `v_k - v̄ = (1 - t)(μ_k - μ̄)/σ²`, so
///
///     div v = d g + t (1 - t)/σ⁴ · tr Cov_w(μ),   tr Cov_w(μ) = Σ_k w_k ‖μ_k - μ̄‖²
///
/// At `t = 1` every `v_k = x` and `div v = d` exactly; at `t = 0`, `div v = -d`.
///
/// Numerics as for the empirical field: log-sum-exp over components in blocks with an online
/// maximum, bounded scratch memory, direct or GEMM-expanded distances (kinflow::
/// distance_method), samples spread over threads with thread-count-independent results.
/// Equal stds are detected and then cost nothing per pair beyond the empirical field.

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <numbers>
#include <sstream>
#include <string>
#include <utility>

#include "kinflow/core/batch.hpp"
#include "kinflow/core/errors.hpp"
#include "kinflow/core/products.hpp"
#include "kinflow/detail/field_parallel.hpp"
#include "kinflow/detail/field_storage.hpp"
#include "kinflow/detail/posterior_plan.hpp"
#include "kinflow/detail/vector_exp.hpp"
#include "kinflow/fields/closed_form.hpp"

namespace kinflow {

/// Options of kinflow::gaussian_mixture_field: the weight tolerance, and memory, threads,
/// distances and products from kinflow::closed_form_settings (`opt.threads = 1`).
template <class Scalar>
struct gaussian_mixture_options : closed_form_settings {
  /// Mixture weights must sum to 1 within this tolerance; they are then divided by their
  /// sum (so rounding in the caller's weights does not matter). Weights further from
  /// summing to 1 are rejected, never silently renormalised. Default 1e-6.
  Scalar weight_tolerance = Scalar(1e-6);
};

/// The exact velocity field of the Gaussian mixture `Σ_k π_k N(μ_k, s_k² I)` (K
/// components in dimension d), with posterior weights over components, log density and
/// exact divergence. See the file documentation for the formulas.
///
/// A batched velocity field: `field(t, X, V)` and `field.velocity_at_times(T, X, V)` plug
/// into every integrator. Evaluation is const and may run concurrently.
/// Memory and threads: see kinflow::closed_form_field.
///
/// @tparam Scalar float or double
/// @tparam Dim    d fixed at compile time (e.g. 2) or Eigen::Dynamic
template <class Scalar, int Dim = Eigen::Dynamic>
  requires real_scalar<Scalar>
class gaussian_mixture_field
    : public closed_form_field<gaussian_mixture_field<Scalar, Dim>, Scalar, Dim> {
  using base = closed_form_field<gaussian_mixture_field<Scalar, Dim>, Scalar, Dim>;
  friend base;

public:
  using typename base::batch_type;
  using typename base::point_type;
  using typename base::values_type;
  /// Per-component values (weights, stds).
  using vector_type = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;
  /// The options type.
  using options_type = gaussian_mixture_options<Scalar>;
  using base::dim;
  using base::size;

  /// Copies the mixture: @p weights π (K entries, > 0, summing to 1 within
  /// options.weight_tolerance), @p means μ (d x K, one column per component, finite),
  /// @p stds s (K entries, finite, > 0).
  /// @throws kinflow::invalid_argument naming the bad parameter and its valid range;
  ///         kinflow::dimension_mismatch when K or d disagree.
  template <class DW, class DM, class DS>
  gaussian_mixture_field(const Eigen::MatrixBase<DW>& weights, const Eigen::MatrixBase<DM>& means,
                         const Eigen::MatrixBase<DS>& stds, const options_type& options = {})
      : base(make_engine(detail::field_points<Scalar, Dim>(checked_means(means)), options)),
        opt_(options) {
    init(weights, stds);
  }

  /// As above, but keeps a reference to @p means instead of a copy (the caller keeps it
  /// alive and unchanged while the field is used).
  template <class DW, class DS>
  gaussian_mixture_field(keep_reference_t, const Eigen::MatrixBase<DW>& weights,
                         const batch_type& means, const Eigen::MatrixBase<DS>& stds,
                         const options_type& options = {})
      : base(make_engine(detail::field_points<Scalar, Dim>(keep_reference, checked_means(means)),
                         options)),
        opt_(options) {
    init(weights, stds);
  }
  template <class DW, class DS>
  gaussian_mixture_field(keep_reference_t, const Eigen::MatrixBase<DW>&, const batch_type&&,
                         const Eigen::MatrixBase<DS>&, const options_type& = {}) = delete;

  /// Mixture weights π (normalised to sum to 1).
  [[nodiscard]] const vector_type& weights() const noexcept { return pi_; }
  /// Component means μ (d x K).
  [[nodiscard]] Eigen::Map<const batch_type> means() const { return this->engine_.points(); }
  /// Component standard deviations s.
  [[nodiscard]] const vector_type& stds() const noexcept { return s_; }
  /// The options in use.
  [[nodiscard]] const options_type& options() const noexcept { return opt_; }

private:
  template <class DM>
  static const DM& checked_means(const Eigen::MatrixBase<DM>& means) {
    if constexpr (Dim != Eigen::Dynamic)
      detail::require_dimension("rows of the means (dimension d)", means.rows(), Dim);
    detail::require(means.rows() >= 1, "means rows (dimension d)", means.rows(), "expected d >= 1");
    detail::require(means.cols() >= 1, "means columns (number of components K)", means.cols(),
                    "expected at least one component");
    detail::require_finite_entries(means, "means");
    return means.derived();
  }

  static posterior_engine<Scalar, Dim> make_engine(detail::field_points<Scalar, Dim> points,
                                                   const options_type& opt) {
    detail::require(opt.weight_tolerance >= Scalar(0), "weight_tolerance", opt.weight_tolerance,
                    "expected >= 0");
    return posterior_engine<Scalar, Dim>(std::move(points), static_cast<const closed_form_settings&>(opt));
  }

  template <class DW, class DS>
  void init(const Eigen::MatrixBase<DW>& weights, const Eigen::MatrixBase<DS>& stds) {
    const Eigen::Index K = size();
    detail::require(weights.rows() == 1 || weights.cols() == 1, "weights shape (rows)",
                    weights.rows(), "expected a vector of K entries");
    detail::require(stds.rows() == 1 || stds.cols() == 1, "stds shape (rows)", stds.rows(),
                    "expected a vector of K entries");
    detail::require_dimension("number of weights (components K of the means)", weights.size(), K);
    detail::require_dimension("number of stds (components K of the means)", stds.size(), K);

    long double total = 0;
    for (Eigen::Index k = 0; k < K; ++k) {
      const Scalar w = weights(k);
      detail::require(std::isfinite(w) && w > Scalar(0), indexed("weights", k), w,
                      "expected a finite weight > 0 (drop components of weight 0)");
      total += static_cast<long double>(w);
    }
    detail::require(std::abs(total - 1.0L) <= static_cast<long double>(opt_.weight_tolerance),
                    "sum of the weights", static_cast<double>(total),
                    "expected 1 within weight_tolerance (weights are not renormalised silently)");
    pi_.resize(K);
    for (Eigen::Index k = 0; k < K; ++k)
      pi_(k) = static_cast<Scalar>(static_cast<long double>(weights(k)) / total);

    s_.resize(K);
    for (Eigen::Index k = 0; k < K; ++k) {
      const Scalar s = stds(k);
      detail::require(std::isfinite(s) && s > Scalar(0), indexed("stds", k), s,
                      "expected a finite standard deviation > 0");
      s_(k) = s;
    }

    const bool equal_weights = (pi_.array() == pi_(0)).all();
    if (!equal_weights) log_pi_ = pi_.array().log().matrix();
    const bool equal_stds = (s_.array() == s_(0)).all();
    shared_s2_ = s_(0) * s_(0);
    if (!equal_stds) var_ = s_.array().square().matrix();
    this->engine_.set_point_parameters(log_pi_, var_);
  }

  static std::string indexed(const char* name, Eigen::Index k) {
    std::ostringstream os;
    os << name << "(" << k << ")";
    return os.str();
  }

  /// `σ(t)² = (1 - t)² + t² s²` for the shared std.
  [[nodiscard]] Scalar shared_variance(Scalar t) const noexcept {
    return (Scalar(1) - t) * (Scalar(1) - t) + t * t * shared_s2_;
  }

  /// Logit parameters at time t: the shared variance σ(t)², or u = 1 - t with per-component
  /// variances `u² + t² s_k²`.
  [[nodiscard]] detail::posterior_params<Scalar> params(Scalar t) const noexcept {
    if (var_.size() == 0) return {t, shared_variance(t)};
    return {t, Scalar(1) - t};
  }

  /// Shared std: `v = (1 - t c) m + c x`, `c = (t s² - (1 - t)) / σ(t)²`, `m = Σ w_k μ_k`;
  /// per-component stds: `v = Σ w_k (1 - t c_k) μ_k + (Σ w_k c_k) x`.
  template <class XCol, class VCol>
  void finish_velocity(Scalar t, const XCol& x, const detail::posterior_column<Scalar>& col,
                       VCol& v) const {
    const Eigen::Map<const point_type> m(col.mean, dim());
    if (var_.size() == 0) {
      const Scalar c = (t * shared_s2_ - (Scalar(1) - t)) / shared_variance(t);
      v = (Scalar(1) - t * c) * m + c * x;
    } else {
      v = m + col.coef * x;
    }
  }

  /// `-(d/2) log 2π`, with `-log K` for equal weights and `-(d/2) log σ(t)²` for equal stds
  /// (otherwise inside the logits).
  [[nodiscard]] Scalar log_density_shift(Scalar t) const {
    const Scalar half_d = Scalar(0.5) * static_cast<Scalar>(dim());
    Scalar shift = -half_d * std::log(Scalar(2) * std::numbers::pi_v<Scalar>);
    if (log_pi_.size() == 0) shift -= std::log(static_cast<Scalar>(size()));
    if (var_.size() == 0) shift -= half_d * std::log(shared_variance(t));
    return shift;
  }

  /// Equal stds: one streamed pass with the shared-variance formula, the trace of the
  /// weighted covariance of the means accumulated by a pairwise (Chan) update, direct
  /// distances. Per-component stds: one pass over the components per sample, the weights
  /// by an online log-sum-exp and the covariance term by a weighted Welford (West) update of
  /// the means of `a_k` and `v_k - x` and of their co-moment, so nothing is formed as a
  /// difference of large sums; `v_k - x = (1 - t)(μ_k - h_k (x - t μ_k))` with
  /// `h_k = (2 - t - t s_k²)/σ_k²` carries its factor (1 - t) exactly, so at t = 1 the
  /// covariance term is exactly 0. Scratch: O(d) per worker thread (no K x B matrix).
  template <class TimeOf>
  void divergence_impl(const TimeOf& time_of, const batch_type& X, values_type& D) const {
    this->engine_.check(X);
    D.resize(X.cols());
    if (divergence_in_stream()) {
      this->stream(time_of, X, {false, true},
                   [&](Eigen::Index j, const detail::posterior_column<Scalar>& col) {
                     D(j) = finish_divergence(time_of(j), col);
                   });
      return;
    }
    const Eigen::Index B = X.cols();
    if (B == 0) return;
    // Columns in blocks spread over threads; each column is computed by the same sequence
    // of operations whatever the number of threads.
    const Eigen::Index cols = 64;
    const auto tasks = static_cast<std::size_t>((B + cols - 1) / cols);
    const double work = static_cast<double>(size()) * static_cast<double>(B) *
                        static_cast<double>(dim() + 16);
    const unsigned workers = work < 4.0e5 ? 1u : detail::field_worker_count(opt_.threads, tasks);
    const Eigen::Index ld = detail::field_pad<Scalar>(dim());
    detail::field_scratch<Scalar> mem(static_cast<std::size_t>(workers) * 3 *
                                      static_cast<std::size_t>(ld));
    detail::field_parallel_for(workers, tasks, [&](unsigned w, std::size_t task) {
      Scalar* scratch = mem.data() + static_cast<std::size_t>(w) * 3 * static_cast<std::size_t>(ld);
      const Eigen::Index j0 = static_cast<Eigen::Index>(task) * cols;
      const Eigen::Index j1 = std::min(B, j0 + cols);
      for (Eigen::Index j = j0; j < j1; ++j)
        D(j) = component_divergence(time_of(j), X.col(j).data(), scratch, ld);
    });
  }

  /// Equal stds: the divergence is a finishing step of the trace (one pass with the velocity).
  [[nodiscard]] bool divergence_in_stream() const noexcept { return var_.size() == 0; }

  /// Shared std: `div v = d g + t (1 - t)/σ⁴ · Σ_k w_k ‖μ_k - μ̄‖²` from the trace.
  [[nodiscard]] Scalar finish_divergence(Scalar t, const detail::posterior_column<Scalar>& col) const {
    const Scalar u = Scalar(1) - t;
    const Scalar var = shared_variance(t);
    const Scalar g = (t * shared_s2_ - u) / var;
    return static_cast<Scalar>(dim()) * g + (t * u / (var * var)) * col.trace;
  }

  /// div v at one sample x (d entries) and time t with per-component stds: one pass over
  /// the components (see divergence()). @p scratch holds 3 arrays of @p ld scalars.
  Scalar component_divergence(Scalar t, const Scalar* x, Scalar* scratch, Eigen::Index ld) const {
    constexpr Scalar neg_inf = -std::numeric_limits<Scalar>::infinity();
    const Eigen::Index d = Dim == Eigen::Dynamic ? dim() : Eigen::Index{Dim};
    const Eigen::Index K = size();
    const Scalar u = Scalar(1) - t;
    const Scalar half_d = Scalar(0.5) * static_cast<Scalar>(d);
    const Scalar floor = detail::exp_floor<Scalar>();
    const auto M = this->engine_.points();
    Scalar* delta = scratch;            // x - t μ_k
    Scalar* a_mean = scratch + ld;      // running Σ w a_k / Σ w
    Scalar* b_mean = scratch + 2 * ld;  // running Σ w (v_k - x) / Σ w
    std::fill(a_mean, a_mean + d, Scalar(0));
    std::fill(b_mean, b_mean + d, Scalar(0));
    Scalar run_max = neg_inf, z = 0, gsum = 0, comoment = 0;
    for (Eigen::Index k = 0; k < K; ++k) {
      const Scalar* mk = M.col(k).data();
      const Scalar s2 = var_(k);
      const Scalar var = u * u + t * t * s2;
      Scalar q = 0;
      for (Eigen::Index r = 0; r < d; ++r) {
        delta[r] = x[r] - t * mk[r];
        q += delta[r] * delta[r];
      }
      Scalar logit = -(half_d * std::log(var) + Scalar(0.5) * q / var);
      if (log_pi_.size() != 0) logit += log_pi_(k);
      if (!(logit > neg_inf)) continue;  // weight exactly 0 (or a NaN sample: skipped)
      if (logit > run_max) {
        if (run_max > neg_inf) {
          const Scalar alpha = std::exp(std::max(run_max - logit, floor));
          z *= alpha;
          gsum *= alpha;
          comoment *= alpha;
        }
        run_max = logit;
      }
      const Scalar diff = logit - run_max;
      if (diff < floor) continue;  // below the rounding of the sums, whose largest term is 1
      const Scalar e = std::exp(diff);
      const Scalar inv_var = Scalar(1) / var;
      const Scalar g = (t * s2 - u) * inv_var;
      const Scalar h = (Scalar(1) + u - t * s2) * inv_var;
      z += e;
      gsum += e * g;
      const Scalar r_w = e / z;
      // West's weighted update: C += e (1 - e/Z) (a_k - ā)·(b_k - b̄), then the means.
      Scalar dot = 0;
      for (Eigen::Index r = 0; r < d; ++r) {
        const Scalar a = -delta[r] * inv_var;
        const Scalar b = u * (mk[r] - h * delta[r]);
        const Scalar da = a - a_mean[r];
        const Scalar db = b - b_mean[r];
        dot += da * db;
        a_mean[r] += r_w * da;
        b_mean[r] += r_w * db;
      }
      comoment += e * (Scalar(1) - r_w) * dot;
    }
    if (!(z > Scalar(0))) return std::numeric_limits<Scalar>::quiet_NaN();
    return (static_cast<Scalar>(d) * gsum + comoment) / z;
  }

  options_type opt_;
  vector_type pi_, s_;
  vector_type log_pi_;  // empty when all weights are equal
  vector_type var_;     // s_k², empty when all stds are equal
  Scalar shared_s2_ = 0;
};

/// Deduces `gaussian_mixture_field<Scalar, Rows of the means>`.
template <class DW, class DM, class DS>
gaussian_mixture_field(const Eigen::MatrixBase<DW>&, const Eigen::MatrixBase<DM>&,
                       const Eigen::MatrixBase<DS>&)
    -> gaussian_mixture_field<typename DM::Scalar, DM::RowsAtCompileTime>;
/// Deduces `gaussian_mixture_field<Scalar, Rows of the means>` with options.
template <class DW, class DM, class DS>
gaussian_mixture_field(const Eigen::MatrixBase<DW>&, const Eigen::MatrixBase<DM>&,
                       const Eigen::MatrixBase<DS>&, const gaussian_mixture_options<typename DM::Scalar>&)
    -> gaussian_mixture_field<typename DM::Scalar, DM::RowsAtCompileTime>;

}  // namespace kinflow

// The smoothed empirical field (a Gaussian at every training point) lives in its own file;
// this one has always provided it too.
#include "kinflow/fields/smoothed_empirical.hpp"
