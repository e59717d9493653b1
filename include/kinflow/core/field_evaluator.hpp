#pragma once
/// @file
/// @brief Uniform access to any velocity field: lifts per-sample functors to batched
/// form and evaluates fields at one time per column.

#include <Eigen/Core>
#include <cmath>
#include <type_traits>

#include "kinflow/core/batch.hpp"
#include "kinflow/core/concepts.hpp"
#include "kinflow/core/errors.hpp"

namespace kinflow {

/// Evaluates a velocity field on batches, whatever form the field takes.
///
/// Holds the field by reference and owns the small scratch buffers that lifting needs,
/// so repeated calls do not allocate (for fixed-size dimensions, or after the first call
/// for dynamic ones). Output sizes are checked: a field that writes a velocity of the
/// wrong dimension raises kinflow::dimension_mismatch.
template <class Field, class Scalar, int Dim>
  requires velocity_field<Field, Scalar, Dim>
class field_evaluator {
public:
  using batch_type = batch<Scalar, Dim>;  ///< a d x B batch
  using point_type = point<Scalar, Dim>;  ///< one sample (a column)

  /// @param field  the velocity field (kept by reference)
  /// @param dim    the state dimension d
  field_evaluator(Field& field, Eigen::Index dim) : field_(field), dim_(dim) {
    if constexpr (field_with_dim<Field>)
      detail::require_dimension("field dim()", static_cast<long long>(field_.dim()), dim);
    if constexpr (!batched_velocity_field<Field, Scalar, Dim>) {
      x_.resize(dim);
    } else if constexpr (!per_column_time_field<Field, Scalar, Dim>) {
      xcol_.resize(dim, 1);
      vcol_.resize(dim, 1);
    }
  }

  /// `V = v(t, X)` for every column of `X` at the common time `t`. `V` must have
  /// the shape of `X`.
  void operator()(Scalar t, const batch_type& X, batch_type& V) {
    if constexpr (batched_velocity_field<Field, Scalar, Dim>) {
      field_(t, X, V);
      check_shape(V, X);
    } else {
      for (Eigen::Index i = 0; i < X.cols(); ++i) {
        x_ = X.col(i);
        eval_sample(t, V, i);
      }
    }
  }

  /// `V.col(i) = v(T(i), X.col(i))`: one time per column.
  void operator()(const sample_times<Scalar>& T, const batch_type& X, batch_type& V) {
    if constexpr (per_column_time_field<Field, Scalar, Dim>) {
      field_.velocity_at_times(T, X, V);
      check_shape(V, X);
    } else if constexpr (batched_velocity_field<Field, Scalar, Dim>) {
      for (Eigen::Index i = 0; i < X.cols(); ++i) {
        xcol_ = X.col(i);
        field_(T(i), static_cast<const batch_type&>(xcol_), vcol_);
        check_shape(vcol_, xcol_);
        V.col(i) = vcol_;
      }
    } else {
      for (Eigen::Index i = 0; i < X.cols(); ++i) {
        x_ = X.col(i);
        eval_sample(T(i), V, i);
      }
    }
  }

  /// The state dimension d.
  [[nodiscard]] Eigen::Index dim() const noexcept { return dim_; }

private:
  void eval_sample(Scalar t, batch_type& V, Eigen::Index i) {
    decltype(auto) v = field_(t, static_cast<const point_type&>(x_));
    if (v.size() != dim_)
      detail::require_dimension("velocity returned by the per-sample field", v.size(), dim_);
    V.col(i) = v;
  }

  static void check_shape(const batch_type& V, const batch_type& X) {
    if (V.rows() != X.rows())
      detail::require_dimension("rows of the velocity written by the batched field", V.rows(),
                                X.rows());
    if (V.cols() != X.cols())
      detail::require_dimension("columns of the velocity written by the batched field", V.cols(),
                                X.cols());
  }

  Field& field_;
  Eigen::Index dim_;
  point_type x_;
  batch_type xcol_, vcol_;
};

/// Evaluates any velocity field on a batch: `V = v(t, X)`, resizing `V` to `X`'s shape.
/// Convenience for users and tests; integrators keep a field_evaluator instead.
template <class Field, class Scalar, int Dim>
  requires velocity_field<std::remove_reference_t<Field>, Scalar, Dim>
void evaluate(Field&& field, Scalar t, const batch<Scalar, Dim>& X, batch<Scalar, Dim>& V) {
  V.resize(X.rows(), X.cols());
  field_evaluator<std::remove_reference_t<Field>, Scalar, Dim> eval(field, X.rows());
  eval(t, X, V);
}

}  // namespace kinflow
