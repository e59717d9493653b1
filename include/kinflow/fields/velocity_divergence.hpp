#pragma once
/// @file
/// @brief Velocity and exact divergence from one evaluation: the interface of fields that
/// compute both in one pass (the closed-form fields, whose divergence is a posterior trace
/// gathered beside the mean: docs/math.md, "The divergence in the velocity's pass"), and
/// the memo through which a solve carrying the log-likelihood uses it.
///
/// A solve evaluates the velocity at a stage and then, for the log-likelihood, the
/// divergence at the same stage. With such a field the velocity call computes both and
/// keeps the divergence with a copy of the stage's times and states; the divergence call
/// that follows gets it when its times and states are the same values, and evaluates it
/// afresh otherwise, so the memo never changes a result, only what it costs.

#include <Eigen/Core>

#include "kinflow/core/batch.hpp"

namespace kinflow {

/// A field with `velocity_and_divergence(t, X, V, D)` and
/// `velocity_and_divergence_at_times(T, X, V, D)`: velocity and exact divergence of every
/// column of X from one evaluation.
template <class F, class Scalar, int Dim>
concept velocity_divergence_field =
    requires(F& f, Scalar t, const sample_times<Scalar>& T, const batch<Scalar, Dim>& X,
             batch<Scalar, Dim>& V, per_sample<Scalar>& D) {
      f.velocity_and_divergence(t, X, V, D);
      f.velocity_and_divergence_at_times(T, X, V, D);
    };

/// The memo of a paired evaluation (see the file documentation): a batched velocity
/// `m(t, X, V)` / `m(T, X, V)` that keeps the divergence it computed, and lookup(), which
/// hands it back for the same times and states. Holds the field by reference; not for
/// concurrent use.
///
/// @tparam Field  the field's type (possibly const), a kinflow::velocity_divergence_field
/// @tparam Scalar float or double
/// @tparam Dim    the dimension d at compile time, or Eigen::Dynamic
template <class Field, class Scalar, int Dim>
class paired_divergence_memo {
public:
  using batch_type = batch<Scalar, Dim>;    ///< a d x B batch
  using values_type = per_sample<Scalar>;   ///< one value per sample
  using times_type = sample_times<Scalar>;  ///< one time per sample

  /// Keeps a reference to @p field.
  explicit paired_divergence_memo(Field& field) noexcept : field_(field) {}

  /// `V = v(t, X)`, keeping `div v(t, X)`. V may be X.
  void operator()(Scalar t, const batch_type& X, batch_type& V) {
    remember(X);
    t_.setConstant(X.cols(), t);
    field_.velocity_and_divergence(t, X, V, d_);
    valid_ = true;
  }

  /// `V.col(i) = v(T(i), X.col(i))`, keeping the divergence. V may be X.
  void operator()(const times_type& T, const batch_type& X, batch_type& V) {
    remember(X);
    t_ = T;
    field_.velocity_and_divergence_at_times(T, X, V, d_);
    valid_ = true;
  }

  /// True, with the kept divergence in @p D, when @p T and @p X hold the values of the last
  /// velocity call; false (D untouched) otherwise.
  [[nodiscard]] bool lookup(const times_type& T, const batch_type& X, values_type& D) const {
    if (!valid_ || T.size() != t_.size() || X.rows() != x_.rows() || X.cols() != x_.cols() ||
        d_.size() != X.cols() || (T.array() != t_.array()).any() || (X.array() != x_.array()).any())
      return false;
    D = d_;
    return true;
  }

private:
  void remember(const batch_type& X) {
    valid_ = false;  // until the evaluation has succeeded
    x_ = X;          // before the velocity, which may overwrite X
  }

  Field& field_;
  batch_type x_;
  times_type t_;
  values_type d_;
  bool valid_ = false;
};

}  // namespace kinflow
