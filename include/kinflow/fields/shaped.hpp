#pragma once
/// @file
/// @brief The shaped field `η(t)·v(x, t)`: Kinetic Trajectory Shaping as a field, so it
/// composes with every integrator (fixed-step and adaptive) and with every field.
///
/// @code
///   auto shaped = kinflow::shaped(field, kinflow::kts_gain::balanced());
///   auto r = kinflow::integrate(shaped, kinflow::euler, grid, X);        // the reference sampler
///   auto a = kinflow::integrate_adaptive(shaped, kinflow::dopri5, 0.0, 1.0, Y);
///   r.kpe.total;   // energy of the velocity actually integrated, η·v
/// @endcode
///
/// The gain multiplies every stage velocity at that stage's own time: a Runge–Kutta method
/// applied to the shaped field integrates the shaped ODE `x' = η(t)·v(x, t)` at its full
/// order wherever `η` is smooth (put `τ` on a grid node: `η` has a kink there, and a jump
/// for the constant forms). The reference Heun sampler instead multiplies the whole step by
/// one averaged gain; docs/kts.md derives the difference, `(h³/4)·η'·∂v/∂t` per step.
///
/// The shaped field has the same form as the inner one:
///  - batched `f(t, X, V)`            → batched, `V ← η(t)·V` after the inner call;
///  - per-sample `f(t, x) -> vector`  → per-sample, returning `η(t)·f(t, x)` (the library
///    lifts it to batches as it would the inner field);
///  - `f.velocity_at_times(T, X, V)`  → forwarded, column i scaled by `η(T(i))`; adaptive
///    integration then makes one batched call per stage. Without it the integrators fall
///    back to per-column calls of the batched form, each with its own `η(t)`;
///  - `f.dim()`                       → forwarded;
///  - `f.divergence(t, X, D)`          → forwarded, `D ← η(t)·D` (`div(η v) = η div v`, η
///    does not depend on x);
///  - `f.divergence_at_times(T, X, D)` → forwarded, entry i scaled by `η(T(i))`.
///  - `f.velocity_and_divergence(t, X, V, D)` and `…_at_times(T, X, V, D)` → forwarded,
///    both scaled (kinflow::velocity_divergence_field).
/// With the identity gain (`α0 = β0 = 0`) the inner velocities and divergences are passed
/// through untouched, so results are bit-identical to those of the unshaped field.

#include <Eigen/Core>
#include <algorithm>
#include <concepts>
#include <optional>
#include <type_traits>
#include <utility>

#include "kinflow/core/batch.hpp"
#include "kinflow/core/concepts.hpp"
#include "kinflow/fields/velocity_divergence.hpp"
#include "kinflow/schedules/kts.hpp"

namespace kinflow {

/// A velocity field multiplied by a KTS gain: `ṽ(x, t) = η(t)·v(x, t)`.
///
/// `Field` is the inner field's type as deduced by kinflow::shaped: an lvalue reference
/// (`F&`, the inner field is held by reference and must outlive the shaped field) or a
/// plain type (an rvalue moved in and owned).
template <class Field>
class shaped_field {
public:
  using inner_type = std::remove_reference_t<Field>;  ///< the inner field's type

private:
  // What the inner field looks like from a const member: a held reference stays mutable.
  using const_inner = std::conditional_t<std::is_lvalue_reference_v<Field>, inner_type, const inner_type>;

public:
  /// Shapes `field` with `gain`.
  template <class F>
    requires std::constructible_from<Field, F&&>
  shaped_field(F&& field, const kts_gain& gain) : field_(std::forward<F>(field)), gain_(gain) {}

  /// Batched form: `V = η(t)·v(t, X)`.
  template <std::floating_point Scalar, int Dim>
    requires batched_velocity_field<inner_type, Scalar, Dim>
  void operator()(Scalar t, const batch<Scalar, Dim>& X, batch<Scalar, Dim>& V) {
    field_(t, X, V);
    scale(t, V);
  }
  /// Batched form, const access.
  template <std::floating_point Scalar, int Dim>
    requires batched_velocity_field<const_inner, Scalar, Dim>
  void operator()(Scalar t, const batch<Scalar, Dim>& X, batch<Scalar, Dim>& V) const {
    field_(t, X, V);
    scale(t, V);
  }

  /// Per-sample form: `η(t)·v(t, x)`, returned as a plain vector.
  template <std::floating_point Scalar, int Dim>
    requires sample_velocity_field<inner_type, Scalar, Dim>
  [[nodiscard]] auto operator()(Scalar t, const point<Scalar, Dim>& x) {
    return scaled_sample(field_, t, x);
  }
  /// Per-sample form, const access.
  template <std::floating_point Scalar, int Dim>
    requires sample_velocity_field<const_inner, Scalar, Dim>
  [[nodiscard]] auto operator()(Scalar t, const point<Scalar, Dim>& x) const {
    return scaled_sample(field_, t, x);
  }

  /// One time per column (present when the inner field has it):
  /// `V.col(i) = η(T(i))·v(T(i), X.col(i))`.
  template <std::floating_point Scalar, int Dim>
    requires per_column_time_field<inner_type, Scalar, Dim>
  void velocity_at_times(const sample_times<Scalar>& T, const batch<Scalar, Dim>& X,
                         batch<Scalar, Dim>& V) {
    field_.velocity_at_times(T, X, V);
    scale_columns(T, V);
  }
  /// One time per column, const access.
  template <std::floating_point Scalar, int Dim>
    requires per_column_time_field<const_inner, Scalar, Dim>
  void velocity_at_times(const sample_times<Scalar>& T, const batch<Scalar, Dim>& X,
                         batch<Scalar, Dim>& V) const {
    field_.velocity_at_times(T, X, V);
    scale_columns(T, V);
  }

  /// Exact divergence (present when the inner field has it): `D = η(t)·div v(t, X)`.
  template <std::floating_point Scalar, int Dim>
    requires divergence_field<inner_type, Scalar, Dim>
  void divergence(Scalar t, const batch<Scalar, Dim>& X, per_sample<Scalar>& D) {
    field_.divergence(t, X, D);
    scale_values(t, D);
  }
  /// Exact divergence, const access.
  template <std::floating_point Scalar, int Dim>
    requires divergence_field<const_inner, Scalar, Dim>
  void divergence(Scalar t, const batch<Scalar, Dim>& X, per_sample<Scalar>& D) const {
    field_.divergence(t, X, D);
    scale_values(t, D);
  }

  /// Exact divergence with one time per column (present when the inner field has it):
  /// `D(i) = η(T(i))·div v(T(i), X.col(i))`.
  template <std::floating_point Scalar, int Dim>
    requires per_column_time_divergence_field<inner_type, Scalar, Dim>
  void divergence_at_times(const sample_times<Scalar>& T, const batch<Scalar, Dim>& X,
                           per_sample<Scalar>& D) {
    field_.divergence_at_times(T, X, D);
    scale_entries(T, D);
  }
  /// Exact divergence with one time per column, const access.
  template <std::floating_point Scalar, int Dim>
    requires per_column_time_divergence_field<const_inner, Scalar, Dim>
  void divergence_at_times(const sample_times<Scalar>& T, const batch<Scalar, Dim>& X,
                           per_sample<Scalar>& D) const {
    field_.divergence_at_times(T, X, D);
    scale_entries(T, D);
  }

  /// Velocity and exact divergence from one evaluation (present when the inner field has
  /// it with const access, kinflow::velocity_divergence_field, as the closed-form fields
  /// do): `V = η(t)·v`, `D = η(t)·div v`.
  template <std::floating_point Scalar, int Dim>
    requires velocity_divergence_field<const_inner, Scalar, Dim>
  void velocity_and_divergence(Scalar t, const batch<Scalar, Dim>& X, batch<Scalar, Dim>& V,
                               per_sample<Scalar>& D) const {
    field_.velocity_and_divergence(t, X, V, D);
    scale(t, V);
    scale_values(t, D);
  }

  /// Velocity and exact divergence with one time per column (as above): column and entry i
  /// scaled by `η(T(i))`.
  template <std::floating_point Scalar, int Dim>
    requires velocity_divergence_field<const_inner, Scalar, Dim>
  void velocity_and_divergence_at_times(const sample_times<Scalar>& T, const batch<Scalar, Dim>& X,
                                        batch<Scalar, Dim>& V, per_sample<Scalar>& D) const {
    field_.velocity_and_divergence_at_times(T, X, V, D);
    scale_columns(T, V);
    scale_entries(T, D);
  }

  /// The switch time τ of the gain, where η has a kink (kinflow::field_with_switch_time):
  /// adaptive solves end a step there and the kinetic energy's early/late split uses it
  /// unless the caller sets `kpe.tau`. None for the identity gain (no kink), unless the
  /// inner field names one.
  [[nodiscard]] std::optional<double> switch_time() const {
    if (!gain_.is_identity()) return gain_.tau();
    if constexpr (field_with_switch_time<inner_type>) return std::as_const(field_).switch_time();
    return std::nullopt;
  }

  /// The inner field's dimension (present when the inner field has `dim()`).
  [[nodiscard]] Eigen::Index dim() const
    requires field_with_dim<inner_type>
  {
    return static_cast<Eigen::Index>(std::as_const(field_).dim());
  }

  /// The gain `η`.
  [[nodiscard]] const kts_gain& gain() const noexcept { return gain_; }
  /// The inner field `v`.
  [[nodiscard]] inner_type& inner() noexcept { return field_; }
  /// The inner field `v`.
  [[nodiscard]] const inner_type& inner() const noexcept { return field_; }

private:
  template <class Scalar, int Dim>
  void scale(Scalar t, batch<Scalar, Dim>& V) const {
    if (!gain_.is_identity()) V *= gain_(t);
  }

  template <class Scalar, int Dim>
  void scale_columns(const sample_times<Scalar>& T, batch<Scalar, Dim>& V) const {
    if (gain_.is_identity()) return;
    // A wrongly sized V is reported by the caller's shape check; only touch what exists.
    const Eigen::Index n = std::min(V.cols(), T.size());
    for (Eigen::Index i = 0; i < n; ++i) V.col(i) *= gain_(T(i));
  }

  template <class Scalar>
  void scale_values(Scalar t, per_sample<Scalar>& D) const {
    if (!gain_.is_identity()) D *= gain_(t);
  }

  template <class Scalar>
  void scale_entries(const sample_times<Scalar>& T, per_sample<Scalar>& D) const {
    if (gain_.is_identity()) return;
    const Eigen::Index n = std::min(D.size(), T.size());
    for (Eigen::Index i = 0; i < n; ++i) D(i) *= gain_(T(i));
  }

  template <class Inner, class Scalar, int Dim>
  auto scaled_sample(Inner& inner, Scalar t, const point<Scalar, Dim>& x) const {
    using plain = typename std::remove_cvref_t<decltype(inner(t, x))>::PlainObject;
    plain v = inner(t, x);
    if (!gain_.is_identity()) v *= gain_(t);
    return v;
  }

  Field field_;
  kts_gain gain_;
};

/// Deduction guide: lvalues are held by reference, rvalues by value.
template <class F>
shaped_field(F&&, const kts_gain&) -> shaped_field<F>;

/// `η(t)·field`: the field shaped by a KTS gain (see the file comment). An lvalue `field`
/// is held by reference (keep it alive while the shaped field is used); an rvalue is moved
/// into the shaped field.
template <class F>
[[nodiscard]] shaped_field<F> shaped(F&& field, const kts_gain& gain) {
  return shaped_field<F>(std::forward<F>(field), gain);
}

/// `η(t)·field` with a gain built from `options`, e.g.
/// `kinflow::shaped(field, {.alpha0 = 0.01, .beta0 = 0.01})`.
/// @throws kinflow::invalid_argument for invalid options (see kts_gain).
template <class F>
[[nodiscard]] shaped_field<F> shaped(F&& field, const kts_options& options) {
  return shaped_field<F>(std::forward<F>(field), kts_gain(options));
}

}  // namespace kinflow
