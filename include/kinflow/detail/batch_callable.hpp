#pragma once
/// @file
/// @brief Private: non-owning references to a batched field evaluation and to a batched
/// divergence, of one type whatever the field's.
///
/// The solvers' drivers (the adaptive loop, the fixed-grid step loop) take these instead
/// of the field's own type, so a program that integrates many fields compiles each driver
/// once per scalar type and method, not once per field: only the thin call-through below is
/// compiled per field. The field is called once per stage on a whole batch, so the one
/// indirect call per batch this costs is nothing beside the evaluation.

#include <Eigen/Core>

#include "kinflow/core/batch.hpp"

namespace kinflow::detail {

/// A reference to an evaluator `e` (kinflow::field_evaluator) with both batched forms,
/// `e(t, X, V)` at one time and `e(T, X, V)` at one time per column. The evaluator must
/// outlive the reference.
template <class Scalar, int Dim>
class batched_velocity_ref {
public:
  using batch_type = batch<Scalar, Dim>;  ///< a d x B batch

  /// Refers to `e`.
  template <class Evaluator>
  explicit batched_velocity_ref(Evaluator& e) noexcept
      : object_(&e),
        at_time_([](void* o, Scalar t, const batch_type& X, batch_type& V) { (*static_cast<Evaluator*>(o))(t, X, V); }),
        at_times_([](void* o, const sample_times<Scalar>& T, const batch_type& X, batch_type& V) {
          (*static_cast<Evaluator*>(o))(T, X, V);
        }) {}

  /// `V = v(t, X)`.
  void operator()(Scalar t, const batch_type& X, batch_type& V) const { at_time_(object_, t, X, V); }
  /// `V.col(i) = v(T(i), X.col(i))`.
  void operator()(const sample_times<Scalar>& T, const batch_type& X, batch_type& V) const {
    at_times_(object_, T, X, V);
  }

private:
  void* object_;
  void (*at_time_)(void*, Scalar, const batch_type&, batch_type&);
  void (*at_times_)(void*, const sample_times<Scalar>&, const batch_type&, batch_type&);
};

/// A reference to a batched divergence `e(T, X, D)` (kinflow::divergence_evaluator), or
/// to nothing; only a reference to something may be called.
template <class Scalar, int Dim>
class batched_divergence_ref {
public:
  using batch_type = batch<Scalar, Dim>;  ///< a d x B batch

  batched_divergence_ref() = default;
  /// Refers to `e`.
  template <class Evaluator>
  explicit batched_divergence_ref(Evaluator& e) noexcept
      : object_(&e), call_([](void* o, const sample_times<Scalar>& T, const batch_type& X, per_sample<Scalar>& D) {
          (*static_cast<Evaluator*>(o))(T, X, D);
        }) {}

  /// `D(i) = div v(T(i), X.col(i))`.
  void operator()(const sample_times<Scalar>& T, const batch_type& X, per_sample<Scalar>& D) const {
    call_(object_, T, X, D);
  }

private:
  void* object_ = nullptr;
  void (*call_)(void*, const sample_times<Scalar>&, const batch_type&, per_sample<Scalar>&) = nullptr;
};

}  // namespace kinflow::detail
