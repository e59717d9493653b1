#pragma once
/// @file
/// @brief Hutchinson's stochastic estimate of the divergence of any velocity field
/// (kinflow::hutchinson_divergence and its options); the estimator, its bias and its
/// variance are in kinflow/fields/divergence.hpp and docs/math.md §8.2.
///
/// The estimate itself (the probes, the perturbed batch, the difference quotients) is
/// compiled once per scalar type and dimension, whatever the field (detail::hutchinson_core,
/// which reaches the field through a reference of one type: kinflow/detail/batch_callable.hpp);
/// only a thin call-through is compiled per field.

#include <Eigen/Core>
#include <cmath>
#include <cstdint>
#include <limits>

#include "kinflow/core/batch.hpp"
#include "kinflow/core/batch_columns.hpp"
#include "kinflow/core/concepts.hpp"
#include "kinflow/core/errors.hpp"
#include "kinflow/core/field_evaluator.hpp"
#include "kinflow/data/random.hpp"
#include "kinflow/detail/batch_callable.hpp"

namespace kinflow {


/// Options of kinflow::hutchinson_divergence.
struct hutchinson_options {
  /// Probes P per sample and call, P ≥ 1: the estimate is the mean of P single-probe
  /// estimates (variance `Var[zᵀJz] / P`), at 2P velocity evaluations per sample.
  int probes = 1;
  /// Seed of the probe stream (kinflow::random_stream). The same seed and the same
  /// sequence of calls give the same probes, hence the same estimates.
  std::uint64_t seed = 0;
  /// Relative finite-difference step. Sample x_i is perturbed by `±δ_i z` with
  /// `δ_i = 2^⌊log₂(step · max(1, ‖x_i‖_∞))⌋`: proportional to the sample's scale (never
  /// below `step` itself) and rounded down to a power of two, so that `x ± δ z` is formed
  /// without rounding for most x. 0 (default) means automatic, `step = ε^{1/3}` with ε the
  /// machine epsilon of the scalar (6.1e-6 in double, 4.9e-3 in float), which balances the
  /// O(δ²) truncation error against the O(ε/δ) rounding error. Otherwise in [1e-12, 1) (a smaller step would leave the difference
  /// quotient to rounding alone).
  double step = 0;
};

namespace detail {

/// Throws kinflow::invalid_argument naming the bad member of @p o and its valid range.
inline void validate(const hutchinson_options& o) {
  require(o.probes >= 1, "hutchinson_options.probes", o.probes,
          "expected at least 1 probe per sample");
  require(std::isfinite(o.step) && (o.step == 0 || (o.step >= 1e-12 && o.step < 1)),
          "hutchinson_options.step", o.step,
          "expected 0 (automatic) or a relative finite-difference step in [1e-12, 1)");
}

}  // namespace detail

namespace detail {

/// Hutchinson's estimator on a batched reference to the field: the probe stream, the
/// scratch and the estimate, of one type per scalar type and dimension (see
/// kinflow::hutchinson_divergence for what it computes).
template <class Scalar, int Dim>
class hutchinson_core {
public:
  using batch_type = batch<Scalar, Dim>;
  using values_type = per_sample<Scalar>;
  using times_type = sample_times<Scalar>;

  /// With validated options.
  explicit hutchinson_core(const hutchinson_options& options) : opt_(options), rng_(options.seed) {}

  /// `D(i)` (and with `variance`, the variance of the mean of the P single-probe estimates)
  /// at the times `*T` (one per column) or, when `T` is null, at `t`. `per_column` tells
  /// whether the field takes a time per column in one call (`velocity_at_times`); a field
  /// that does not is called once at the common time when all times are equal.
  void estimate(const batched_velocity_ref<Scalar, Dim>& eval, bool per_column_field, Eigen::Index d,
                const times_type* T, Scalar t, const batch_type& X, values_type& D, values_type* variance) {
    require_dimension("rows of the sample batch X (dimension d)", X.rows(), d);
    if (variance != nullptr)
      require(opt_.probes >= 2, "hutchinson_options.probes", opt_.probes,
              "expected at least 2 probes per sample to estimate the variance");
    const Eigen::Index B = X.cols(), P = opt_.probes;
    const Eigen::Index PB = P * B;
    D.resize(B);
    if (variance != nullptr) variance->resize(B);
    z_.resize(d, PB);
    delta_.resize(B);
    if (B == 0) return;

    // Probes: bits of the stream, in column order, bit 1 → -1, bit 0 → +1; a call starts
    // on a fresh 64-bit word.
    std::uint64_t word = 0;
    int left = 0;
    for (Eigen::Index c = 0; c < PB; ++c)
      for (Eigen::Index r = 0; r < d; ++r) {
        if (left == 0) {
          word = rng_.bits();
          left = 64;
        }
        z_(r, c) = (word & 1u) != 0 ? Scalar(-1) : Scalar(1);
        word >>= 1;
        --left;
      }

    const Scalar rel = relative_step();
    for (Eigen::Index i = 0; i < B; ++i) delta_(i) = power_of_two_step(rel, X.col(i).cwiseAbs().maxCoeff());

    // Plus points in columns [0, PB), minus points in [PB, 2PB).
    xs_.resize(d, 2 * PB);
    vs_.resize(d, 2 * PB);
    for (Eigen::Index p = 0; p < P; ++p)
      for (Eigen::Index i = 0; i < B; ++i) {
        const Eigen::Index c = p * B + i;
        xs_.col(c) = X.col(i) + delta_(i) * z_.col(c);
        xs_.col(PB + c) = X.col(i) - delta_(i) * z_.col(c);
      }
    // A field without velocity_at_times would be called column by column for a time per
    // column: when all times are equal, one batched call at that time does the same.
    const auto columns = batch_columns::scope::repeating(B);  // 2P copies of the batch side by side
    bool per_column = T != nullptr;
    if (!per_column_field && per_column && (T->array() == (*T)(0)).all()) {
      per_column = false;
      t = (*T)(0);
    }
    if (per_column) {
      ts_.resize(2 * PB);
      for (Eigen::Index p = 0; p < 2 * P; ++p) ts_.segment(p * B, B) = *T;
      eval(ts_, static_cast<const batch_type&>(xs_), vs_);
    } else {
      eval(t, static_cast<const batch_type&>(xs_), vs_);
    }

    // Per sample: mean (and sample variance, Welford) of the P single-probe estimates.
    for (Eigen::Index i = 0; i < B; ++i) {
      const Scalar inv_2delta = Scalar(1) / (Scalar(2) * delta_(i));
      Scalar mean = 0, m2 = 0;
      for (Eigen::Index p = 0; p < P; ++p) {
        const Eigen::Index c = p * B + i;
        const Scalar est = z_.col(c).dot(vs_.col(c) - vs_.col(PB + c)) * inv_2delta;
        const Scalar dev = est - mean;
        mean += dev / static_cast<Scalar>(p + 1);
        m2 += dev * (est - mean);
      }
      D(i) = mean;
      if (variance != nullptr)
        (*variance)(i) = m2 / static_cast<Scalar>(P - 1) / static_cast<Scalar>(P);
    }
  }

  /// Restarts the probe stream from `seed`.
  void reseed(std::uint64_t seed) {
    opt_.seed = seed;
    rng_ = random_stream(seed);
  }

  [[nodiscard]] const hutchinson_options& options() const noexcept { return opt_; }  ///< the options in use
  [[nodiscard]] const batch_type& last_probes() const noexcept { return z_; }       ///< probes of the last call
  [[nodiscard]] const values_type& last_steps() const noexcept { return delta_; }   ///< steps of the last call

private:
  /// The relative step: hutchinson_options::step, or ε^{1/3}.
  [[nodiscard]] Scalar relative_step() const {
    if (opt_.step > 0) return static_cast<Scalar>(opt_.step);
    return std::cbrt(std::numeric_limits<Scalar>::epsilon());
  }

  /// δ = 2^⌊log₂(rel · max(1, scale))⌋.
  [[nodiscard]] static Scalar power_of_two_step(Scalar rel, Scalar scale) {
    const Scalar raw = rel * (scale > Scalar(1) ? scale : Scalar(1));
    if (!std::isfinite(raw)) return rel;  // a non-finite sample: its estimate is unspecified
    int e = 0;
    (void)std::frexp(raw, &e);  // raw = m 2^e, m ∈ [½, 1)
    return std::ldexp(Scalar(1), e - 1);
  }

  hutchinson_options opt_;
  random_stream rng_;
  batch_type z_, xs_, vs_;
  values_type delta_;
  times_type ts_;
};

}  // namespace detail

/// Hutchinson's estimate of the divergence of any velocity field (see
/// kinflow/fields/divergence.hpp for the estimator, its bias and its variance):
///
///     D(i) = (1/P) Σ_p z_pᵀ (v(T(i), x_i + δ_i z_p) - v(T(i), x_i - δ_i z_p)) / (2δ_i)
///
/// with fresh Rademacher probes `z_p` (independent for every sample and probe) on every
/// call, drawn from a kinflow::random_stream seeded with hutchinson_options::seed. All
/// 2·P·B perturbed samples of a call go to the field in one batched evaluation (through
/// kinflow::field_evaluator, so per-sample, batched and per-column-time fields all work;
/// a time per column goes to `velocity_at_times` when the field has it, and otherwise, when
/// all times are equal, to one batched call at that time instead of one call per column).
///
/// Holds the field by reference and owns its scratch: repeated calls with the same batch
/// size do not allocate. Not for concurrent use from several threads (the probe stream and
/// the scratch are state); use one estimator per thread.
///
/// @tparam Field  the velocity field's type (possibly const)
/// @tparam Scalar float or double
/// @tparam Dim    the dimension d at compile time, or Eigen::Dynamic
template <class Field, class Scalar, int Dim>
  requires velocity_field<Field, Scalar, Dim>
class hutchinson_divergence {
public:
  using batch_type = batch<Scalar, Dim>;    ///< a d x B batch
  using values_type = per_sample<Scalar>;   ///< one value per sample
  using times_type = sample_times<Scalar>;  ///< one time per sample

  /// @param field   the velocity field (kept by reference)
  /// @param dim     the state dimension d (checked against `field.dim()` when it exists)
  /// @param options probes, seed and step
  /// @throws kinflow::invalid_argument for invalid options or d < 1 (naming the option and
  ///         its valid range); kinflow::dimension_mismatch when d disagrees with the field
  ///         or a fixed Dim.
  hutchinson_divergence(Field& field, Eigen::Index dim, const hutchinson_options& options = {})
      : eval_(checked_field(field, dim, options), dim), core_(options) {}

  /// `D(i)` ≈ div v(T(i), X.col(i)) (one time per sample); D is resized to X.cols().
  void operator()(const times_type& T, const batch_type& X, values_type& D) {
    detail::require_dimension("number of times T (one per column of X)", T.size(), X.cols());
    estimate(&T, Scalar(0), X, D, nullptr);
  }

  /// `D(i)` ≈ div v(t, X.col(i)) at the common time @p t.
  void operator()(Scalar t, const batch_type& X, values_type& D) { estimate(nullptr, t, X, D, nullptr); }

  /// As above, and `variance(i)` = the sample variance of the P single-probe estimates
  /// of sample i divided by P: an unbiased estimate of the variance of D(i) (its square
  /// root is the standard error). Needs P ≥ 2.
  /// @throws kinflow::invalid_argument when hutchinson_options::probes < 2.
  void operator()(const times_type& T, const batch_type& X, values_type& D, values_type& variance) {
    detail::require_dimension("number of times T (one per column of X)", T.size(), X.cols());
    estimate(&T, Scalar(0), X, D, &variance);
  }

  /// At a common time, with the variance estimate (see above). Needs P ≥ 2.
  void operator()(Scalar t, const batch_type& X, values_type& D, values_type& variance) {
    estimate(nullptr, t, X, D, &variance);
  }

  /// Velocity evaluations per sample and call: 2 · hutchinson_options::probes (the field is
  /// called once per call, on a batch of that many columns per sample).
  [[nodiscard]] int evaluations_per_sample() const noexcept { return 2 * core_.options().probes; }

  /// The probes of the last call: d x (P·B), column `p·B + i` is the probe z_p of sample
  /// i (entries ±1). Empty before the first call.
  [[nodiscard]] const batch_type& last_probes() const noexcept { return core_.last_probes(); }

  /// The steps δ_i of the last call (one per sample).
  [[nodiscard]] const values_type& last_steps() const noexcept { return core_.last_steps(); }

  /// Restarts the probe stream from @p seed (as if newly constructed with it).
  void reseed(std::uint64_t seed) { core_.reseed(seed); }

  /// The options in use (the seed as last set).
  [[nodiscard]] const hutchinson_options& options() const noexcept { return core_.options(); }
  /// The state dimension d.
  [[nodiscard]] Eigen::Index dim() const noexcept { return eval_.dim(); }

private:
  static Field& checked_field(Field& field, Eigen::Index dim, const hutchinson_options& o) {
    detail::validate(o);
    detail::require(dim >= 1, "dim (state dimension d)", dim, "expected d >= 1");
    if constexpr (Dim != Eigen::Dynamic) detail::require_dimension("dim (state dimension d)", dim, Dim);
    return field;
  }

  void estimate(const times_type* T, Scalar t, const batch_type& X, values_type& D, values_type* variance) {
    core_.estimate(detail::batched_velocity_ref<Scalar, Dim>(eval_), per_column_time_field<Field, Scalar, Dim>, dim(),
                   T, t, X, D, variance);
  }

  field_evaluator<Field, Scalar, Dim> eval_;
  detail::hutchinson_core<Scalar, Dim> core_;
};

}  // namespace kinflow
