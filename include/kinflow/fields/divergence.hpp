#pragma once
/// @file
/// @brief Divergence of any velocity field: the field's own exact divergence when it has
/// one, Hutchinson's stochastic trace estimator otherwise (docs/math.md §8.2).
///
/// The log-likelihood along a path needs `div v = tr ∂v/∂x` at every sample. Fields may
/// offer it exactly (kinflow::divergence_field, kinflow::per_column_time_divergence_field:
/// the closed-form fields and the MLP do). For any other field, Hutchinson's estimator
///
///     div v(x) = E_z[ zᵀ (∂v/∂x) z ],   z Rademacher (independent ±1 entries),
///
/// with the Jacobian–vector product from a central difference of the velocity,
///
///     zᵀ J z ≈ zᵀ (v(x + δ z) - v(x - δ z)) / (2δ),
///
/// averaged over P probes per sample: 2P velocity evaluations per sample.
///
/// **Bias.** Only the finite difference's, `O(δ²)`: the central difference of a smooth v is
/// `J z + (δ²/6) ∂³v[z, z, z] + O(δ⁴)`, and its rounding adds about `ε ‖v‖₁ / δ` (ε the
/// machine epsilon). The automatic step (hutchinson_options::step) balances the two at
/// `O(ε^{2/3})` relative: about 4e-11 in double, 2e-5 in float. For a field linear in x the
/// difference is exact up to that rounding.
///
/// **Variance.** For one probe, `zᵀJz = tr J + Σ_{r≠c} J_rc z_r z_c`; the products `z_r z_c`
/// over unordered pairs {r, c} are uncorrelated with variance 1, so
///
///     Var[zᵀ J z] = Σ_{r<c} (J_rc + J_cr)² = Σ_{r≠c} (J_rc² + J_rc J_cr)
///
/// (zero for a diagonal Jacobian). Among probes with independent zero-mean, unit-variance
/// entries this is the smallest: in general `(E z⁴ - 1) Σ_r J_rr²` comes on top, e.g.
/// `2 Σ_r J_rr²` for Gaussian probes. The mean over P independent probes
/// has variance `Var[zᵀJz] / P`, standard error `sqrt(Var / P)`; the estimator's
/// operator() overloads with a variance output report the sample estimate of it.
///
/// @code
///   kinflow::divergence_evaluator<decltype(field), double, 2> div(field, 2);   // automatic
///   kinflow::per_sample<double> D;
///   div(0.5, X, D);                    // exact if the field has it, Hutchinson otherwise
/// @endcode

#include <Eigen/Core>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <type_traits>

#include "kinflow/core/batch.hpp"
#include "kinflow/core/batch_columns.hpp"
#include "kinflow/core/concepts.hpp"
#include "kinflow/core/errors.hpp"
#include "kinflow/core/field_evaluator.hpp"
#include "kinflow/data/random.hpp"
#include "kinflow/fields/velocity_divergence.hpp"

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

/// Hutchinson's estimate of the divergence of any velocity field (see the file
/// documentation for the estimator, its bias and its variance):
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
      : eval_(checked_field(field, dim, options), dim), opt_(options), rng_(options.seed) {}

  /// `D(i)` ≈ div v(T(i), X.col(i)) (one time per sample); D is resized to X.cols().
  void operator()(const times_type& T, const batch_type& X, values_type& D) {
    detail::require_dimension("number of times T (one per column of X)", T.size(), X.cols());
    estimate(&T, Scalar(0), X, D, nullptr);
  }

  /// `D(i)` ≈ div v(t, X.col(i)) at the common time @p t.
  void operator()(Scalar t, const batch_type& X, values_type& D) {
    estimate(nullptr, t, X, D, nullptr);
  }

  /// As above, and `variance(i)` = the sample variance of the P single-probe estimates
  /// of sample i divided by P: an unbiased estimate of the variance of D(i) (its square
  /// root is the standard error). Needs P ≥ 2.
  /// @throws kinflow::invalid_argument when hutchinson_options::probes < 2.
  void operator()(const times_type& T, const batch_type& X, values_type& D, values_type& variance) {
    detail::require_dimension("number of times T (one per column of X)", T.size(), X.cols());
    require_variance();
    estimate(&T, Scalar(0), X, D, &variance);
  }

  /// At a common time, with the variance estimate (see above). Needs P ≥ 2.
  void operator()(Scalar t, const batch_type& X, values_type& D, values_type& variance) {
    require_variance();
    estimate(nullptr, t, X, D, &variance);
  }

  /// Velocity evaluations per sample and call: 2 · hutchinson_options::probes (the field is
  /// called once per call, on a batch of that many columns per sample).
  [[nodiscard]] int evaluations_per_sample() const noexcept { return 2 * opt_.probes; }

  /// The probes of the last call: d x (P·B), column `p·B + i` is the probe z_p of sample
  /// i (entries ±1). Empty before the first call.
  [[nodiscard]] const batch_type& last_probes() const noexcept { return z_; }

  /// The steps δ_i of the last call (one per sample).
  [[nodiscard]] const values_type& last_steps() const noexcept { return delta_; }

  /// Restarts the probe stream from @p seed (as if newly constructed with it).
  void reseed(std::uint64_t seed) {
    opt_.seed = seed;
    rng_ = random_stream(seed);
  }

  /// The options in use (the seed as last set).
  [[nodiscard]] const hutchinson_options& options() const noexcept { return opt_; }
  /// The state dimension d.
  [[nodiscard]] Eigen::Index dim() const noexcept { return eval_.dim(); }

private:
  static Field& checked_field(Field& field, Eigen::Index dim, const hutchinson_options& o) {
    detail::validate(o);
    detail::require(dim >= 1, "dim (state dimension d)", dim, "expected d >= 1");
    if constexpr (Dim != Eigen::Dynamic) detail::require_dimension("dim (state dimension d)", dim, Dim);
    return field;
  }

  void require_variance() const {
    detail::require(opt_.probes >= 2, "hutchinson_options.probes", opt_.probes,
                    "expected at least 2 probes per sample to estimate the variance");
  }

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

  void estimate(const times_type* T, Scalar t, const batch_type& X, values_type& D, values_type* variance) {
    detail::require_dimension("rows of the sample batch X (dimension d)", X.rows(), dim());
    const Eigen::Index d = dim(), B = X.cols(), P = opt_.probes;
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
    if constexpr (!per_column_time_field<Field, Scalar, Dim>)
      if (per_column && (T->array() == (*T)(0)).all()) {
        per_column = false;
        t = (*T)(0);
      }
    if (per_column) {
      ts_.resize(2 * PB);
      for (Eigen::Index p = 0; p < 2 * P; ++p) ts_.segment(p * B, B) = *T;
      eval_(ts_, static_cast<const batch_type&>(xs_), vs_);
    } else {
      eval_(t, static_cast<const batch_type&>(xs_), vs_);
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

  field_evaluator<Field, Scalar, Dim> eval_;
  hutchinson_options opt_;
  random_stream rng_;
  batch_type z_, xs_, vs_;
  values_type delta_;
  times_type ts_;
};

/// How kinflow::divergence_evaluator gets the divergence.
enum class divergence_method {
  automatic,  ///< the field's exact divergence when it has one, Hutchinson otherwise
  exact,      ///< the field's exact divergence; a field without one is an invalid_argument
  hutchinson  ///< Hutchinson's estimator, even when the field has an exact divergence
};

/// Options of kinflow::divergence_evaluator.
struct divergence_options {
  /// Exact, Hutchinson or automatic (the default); see kinflow::divergence_method.
  divergence_method method = divergence_method::automatic;
  /// Options of the Hutchinson estimator (validated whichever method is used).
  hutchinson_options hutchinson = {};
};

/// The divergence of a velocity field, exact or estimated (see the file documentation):
/// the field's `divergence_at_times(T, X, D)` / `divergence(t, X, D)` when
/// kinflow::per_column_time_divergence_field / kinflow::divergence_field holds and the
/// method allows, kinflow::hutchinson_divergence otherwise.
///
/// An exact field with only one of the two forms serves both: the one-time form through a
/// constant T, the time-per-column form through one call when all times are equal and one
/// call per column otherwise. The divergence a field writes must have one entry per column
/// (else kinflow::dimension_mismatch).
///
/// @tparam Field  the velocity field's type (possibly const)
/// @tparam Scalar float or double
/// @tparam Dim    the dimension d at compile time, or Eigen::Dynamic
template <class Field, class Scalar, int Dim>
  requires velocity_field<Field, Scalar, Dim>
class divergence_evaluator {
public:
  using batch_type = batch<Scalar, Dim>;    ///< a d x B batch
  using values_type = per_sample<Scalar>;   ///< one value per sample
  using times_type = sample_times<Scalar>;  ///< one time per sample

  /// True when `Field` offers an exact divergence in either form.
  static constexpr bool field_has_divergence =
      divergence_field<Field, Scalar, Dim> || per_column_time_divergence_field<Field, Scalar, Dim>;

  /// @param field   the velocity field (kept by reference)
  /// @param dim     the state dimension d
  /// @param options the method and the Hutchinson options
  /// @throws kinflow::invalid_argument naming `divergence_options.method` when the method
  ///         is `exact` and the field has no divergence, or naming the bad Hutchinson
  ///         option; kinflow::dimension_mismatch when d disagrees with the field.
  divergence_evaluator(Field& field, Eigen::Index dim, const divergence_options& options = {})
      : field_(field), dim_(dim), requested_(options.method) {
    detail::validate(options.hutchinson);
    detail::require(dim >= 1, "dim (state dimension d)", dim, "expected d >= 1");
    if constexpr (Dim != Eigen::Dynamic) detail::require_dimension("dim (state dimension d)", dim, Dim);
    if constexpr (field_with_dim<Field>)
      detail::require_dimension("field dim()", static_cast<long long>(field_.dim()), dim);
    if (options.method == divergence_method::exact)
      detail::require(field_has_divergence, "divergence_options.method", "exact",
                      "expected automatic or hutchinson: the field has no exact divergence "
                      "(neither divergence(t, X, D) nor divergence_at_times(T, X, D))");
    exact_ = field_has_divergence && options.method != divergence_method::hutchinson;
    if (!exact_) hutchinson_.emplace(field, dim, options.hutchinson);
    if constexpr (velocity_divergence_field<Field, Scalar, Dim>)
      if (exact_) paired_.emplace(field);
  }

  /// `D(i) = div v(T(i), X.col(i))` (exact or estimated); D is resized to X.cols().
  void operator()(const times_type& T, const batch_type& X, values_type& D) {
    detail::require_dimension("number of times T (one per column of X)", T.size(), X.cols());
    if (!exact_) {
      (*hutchinson_)(T, X, D);
      return;
    }
    if constexpr (velocity_divergence_field<Field, Scalar, Dim>)
      if (paired_ && paired_->lookup(T, X, D)) return;
    if constexpr (per_column_time_divergence_field<Field, Scalar, Dim>) {
      field_.divergence_at_times(T, X, D);
      check_size(D, X);
    } else if constexpr (divergence_field<Field, Scalar, Dim>) {
      const Eigen::Index B = X.cols();
      if (B == 0 || (T.array() == T(0)).all()) {
        field_.divergence(B == 0 ? Scalar(0) : T(0), X, D);
        check_size(D, X);
        return;
      }
      D.resize(B);
      xcol_.resize(X.rows(), 1);
      for (Eigen::Index i = 0; i < B; ++i) {
        xcol_ = X.col(i);
        field_.divergence(T(i), static_cast<const batch_type&>(xcol_), dcol_);
        check_size(dcol_, xcol_);
        D(i) = dcol_(0);
      }
    }
  }

  /// `D(i) = div v(t, X.col(i))` at the common time @p t.
  void operator()(Scalar t, const batch_type& X, values_type& D) {
    if (!exact_) {
      (*hutchinson_)(t, X, D);
      return;
    }
    if constexpr (divergence_field<Field, Scalar, Dim>) {
      field_.divergence(t, X, D);
      check_size(D, X);
    } else if constexpr (per_column_time_divergence_field<Field, Scalar, Dim>) {
      tcol_.setConstant(X.cols(), t);
      field_.divergence_at_times(static_cast<const times_type&>(tcol_), X, D);
      check_size(D, X);
    }
  }

  /// The method in use: divergence_method::exact or divergence_method::hutchinson.
  [[nodiscard]] divergence_method method() const noexcept {
    return exact_ ? divergence_method::exact : divergence_method::hutchinson;
  }
  /// The method asked for in the options (possibly divergence_method::automatic).
  [[nodiscard]] divergence_method requested_method() const noexcept { return requested_; }
  /// True when the field's exact divergence is used.
  [[nodiscard]] bool is_exact() const noexcept { return exact_; }

  /// Velocity evaluations per sample and call: 0 for the exact divergence, 2 · probes for
  /// Hutchinson (the exact divergence's own cost is the field's business).
  [[nodiscard]] int evaluations_per_sample() const noexcept {
    return exact_ ? 0 : hutchinson_->evaluations_per_sample();
  }

  /// The Hutchinson estimator in use, or nullptr with the exact divergence.
  [[nodiscard]] hutchinson_divergence<Field, Scalar, Dim>* hutchinson() noexcept {
    return hutchinson_ ? &*hutchinson_ : nullptr;
  }

  /// The state dimension d.
  [[nodiscard]] Eigen::Index dim() const noexcept { return dim_; }

  /// With an exact divergence from a kinflow::velocity_divergence_field: the velocity that
  /// keeps the divergence for the call of this evaluator that follows at the same stage
  /// (what a solve carrying the log-likelihood evaluates). nullptr otherwise.
  [[nodiscard]] auto* paired() noexcept { return paired_ ? &*paired_ : nullptr; }

private:
  /// The memo, or an empty placeholder for fields without the paired evaluation.
  struct no_memo {};
  using memo_type = std::conditional_t<velocity_divergence_field<Field, Scalar, Dim>,
                                       paired_divergence_memo<Field, Scalar, Dim>, no_memo>;

  template <class Batch>
  static void check_size(const values_type& D, const Batch& X) {
    if (D.size() != X.cols())
      detail::require_dimension("entries of the divergence written by the field", D.size(), X.cols());
  }

  Field& field_;
  Eigen::Index dim_;
  divergence_method requested_;
  bool exact_ = false;
  std::optional<hutchinson_divergence<Field, Scalar, Dim>> hutchinson_;
  std::optional<memo_type> paired_;
  batch_type xcol_;
  values_type dcol_;
  times_type tcol_;
};

}  // namespace kinflow
