#pragma once
/// @file
/// @brief Velocity-field concepts: the two forms a "model functor" may take.
///
/// A velocity field is any callable in one of two forms:
///  - per-sample: `v(t, x) -> vector`, `x` one sample (a `point<Scalar, Dim>`);
///  - batched:    `v(t, X, V)`, writing the `d x B` velocities of the batch `X` into `V`
///                (already sized; no allocation needed in the hot loop).
/// The library lifts the per-sample form to the batched one. When a callable offers
/// both, the batched form is used.
///
/// Optional extras are detected, never required:
///  - `f.velocity_at_times(T, X, V)`: batched evaluation with one time per column
///    (`T` a `sample_times<Scalar>`). Adaptive integration keeps one time per sample;
///    fields that offer this get one batched call per stage instead of B per-column calls.
///  - `f.dim()`: the field's dimension, checked against the state's before a solve.
///  - `f.switch_time()`: a time where the field has a kink (the τ of a KTS gain).
///  - `f.divergence(t, X, D)` and `f.divergence_at_times(T, X, D)`: the exact divergence
///    `div v = Σ_r ∂v_r/∂x_r` of every column, written into `D` (a `per_sample<Scalar>`,
///    resized by the field). The log-likelihood uses it when present and a Hutchinson
///    estimate otherwise (kinflow/fields/divergence.hpp).

#include <Eigen/Core>
#include <concepts>
#include <optional>
#include <type_traits>

#include "kinflow/core/batch.hpp"

namespace kinflow {

/// True for Eigen dense column vectors and vector expressions (what a per-sample
/// field must return).
template <class T>
concept eigen_vector_expression =
    std::derived_from<std::remove_cvref_t<T>, Eigen::DenseBase<std::remove_cvref_t<T>>> &&
    (std::remove_cvref_t<T>::ColsAtCompileTime == 1 ||
     std::remove_cvref_t<T>::ColsAtCompileTime == Eigen::Dynamic);

/// Batched form: `f(t, X, V)` with `X` a `const batch<Scalar, Dim>&` and `V` a
/// `batch<Scalar, Dim>&` of the same size to be filled.
template <class F, class Scalar, int Dim>
concept batched_velocity_field =
    real_scalar<Scalar> &&
    std::invocable<F&, Scalar, const batch<Scalar, Dim>&, batch<Scalar, Dim>&>;

/// Per-sample form: `f(t, x) -> vector`, `x` a `const point<Scalar, Dim>&`, returning an
/// Eigen column vector (or vector expression) of dimension d (a fixed-size return type
/// must have the state's dimension).
template <class F, class Scalar, int Dim>
concept sample_velocity_field = real_scalar<Scalar> && requires(F& f, Scalar t, const point<Scalar, Dim>& x) {
  { f(t, x) } -> eigen_vector_expression;
} && (Dim == Eigen::Dynamic ||
      std::remove_cvref_t<std::invoke_result_t<F&, Scalar, const point<Scalar, Dim>&>>::RowsAtCompileTime ==
          Eigen::Dynamic ||
      std::remove_cvref_t<std::invoke_result_t<F&, Scalar, const point<Scalar, Dim>&>>::RowsAtCompileTime == Dim);

/// A velocity field in either form (see the file comment).
template <class F, class Scalar, int Dim>
concept velocity_field =
    batched_velocity_field<F, Scalar, Dim> || sample_velocity_field<F, Scalar, Dim>;

/// Optional extra: batched evaluation with a time per column,
/// `f.velocity_at_times(T, X, V)` with `T` a `const sample_times<Scalar>&`.
template <class F, class Scalar, int Dim>
concept per_column_time_field = requires(F& f, const sample_times<Scalar>& T,
                                         const batch<Scalar, Dim>& X, batch<Scalar, Dim>& V) {
  f.velocity_at_times(T, X, V);
};

/// Optional extra: the exact divergence at one time, `f.divergence(t, X, D)`, writing
/// `D(i) = div v(t, X.col(i))` into a `per_sample<Scalar>` (resized by the field).
template <class F, class Scalar, int Dim>
concept divergence_field = requires(F& f, Scalar t, const batch<Scalar, Dim>& X, per_sample<Scalar>& D) {
  f.divergence(t, X, D);
};

/// Optional extra: the exact divergence with one time per column,
/// `f.divergence_at_times(T, X, D)`, `D(i) = div v(T(i), X.col(i))`.
template <class F, class Scalar, int Dim>
concept per_column_time_divergence_field =
    requires(F& f, const sample_times<Scalar>& T, const batch<Scalar, Dim>& X, per_sample<Scalar>& D) {
      f.divergence_at_times(T, X, D);
    };

/// Optional extra: the field's switch time, `f.switch_time()` returning a
/// `std::optional<double>`: a time where the field has a kink (a field shaped by a KTS gain:
/// the gain's τ). Adaptive solves end a step there, and the kinetic path energy's early/late
/// split uses it unless the caller sets another.
template <class F>
concept field_with_switch_time = requires(const F& f) {
  { f.switch_time() } -> std::convertible_to<std::optional<double>>;
};

/// Optional extra: the field knows its dimension, `f.dim()`.
template <class F>
concept field_with_dim = requires(const F& f) {
  { f.dim() } -> std::convertible_to<Eigen::Index>;
};

}  // namespace kinflow
