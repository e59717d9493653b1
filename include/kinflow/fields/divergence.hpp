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
#include "kinflow/fields/hutchinson.hpp"
#include "kinflow/fields/velocity_divergence.hpp"

namespace kinflow {

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
