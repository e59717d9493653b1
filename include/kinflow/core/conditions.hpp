#pragma once
/// @file
/// @brief Conditional velocity fields `v(t, x, c)`: the concepts, which columns of a solved
/// batch a call covers, and kinflow::conditioned, which binds one class per sample and
/// makes a plain field that every integrator takes.
///
/// A conditional field takes one class index per sample (kinflow::class_labels; the index
/// kinflow::null_class, -1, asks for the unconditional field), in one of two forms:
///  - batched:    `f(t, X, C, V)`, `C` a `const class_labels&` with one entry per column;
///  - per-sample: `f(t, x, c) -> vector`, `c` an `Eigen::Index`.
/// A batched field may also offer `f.velocity_at_times(T, X, C, V)` (one time per column).
///
/// **Which columns a call covers.** Solvers evaluate a field on parts of the batch: tiles of
/// columns in a fixed-grid solve, the unfinished samples of an adaptive one, stacked copies
/// in Hutchinson's estimate. A field with one condition per sample must know which sample
/// each column of a call is: the solvers say it through kinflow::batch_columns (per thread,
/// for the duration of the calls), and kinflow::conditioned reads it. A program that calls
/// such a field on a part of a batch itself opens a kinflow::batch_columns::scope naming
/// the columns.
///
/// @code
///   kinflow::class_conditional_field<double> field(Y, labels);   // exact, per class
///   kinflow::class_labels c = kinflow::class_labels::Constant(B, 3);
///   auto r = kinflow::integrate(kinflow::conditioned(field, c), kinflow::rk4, grid, X);
/// @endcode

#include <Eigen/Core>
#include <concepts>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "kinflow/core/batch.hpp"
#include "kinflow/core/batch_columns.hpp"
#include "kinflow/core/concepts.hpp"
#include "kinflow/core/errors.hpp"

namespace kinflow {

/// Batched conditional form: `f(t, X, C, V)` (see the file comment).
template <class F, class Scalar, int Dim>
concept batched_conditional_field =
    real_scalar<Scalar> &&
    std::invocable<F&, Scalar, const batch<Scalar, Dim>&, const class_labels&, batch<Scalar, Dim>&>;

/// Per-sample conditional form: `f(t, x, c) -> vector` (see the file comment).
template <class F, class Scalar, int Dim>
concept sample_conditional_field =
    real_scalar<Scalar> && requires(F& f, Scalar t, const point<Scalar, Dim>& x, Eigen::Index c) {
      { f(t, x, c) } -> eigen_vector_expression;
    };

/// A conditional velocity field in either form.
template <class F, class Scalar, int Dim>
concept conditional_field =
    batched_conditional_field<F, Scalar, Dim> || sample_conditional_field<F, Scalar, Dim>;

/// Optional extra of a batched conditional field: `f.velocity_at_times(T, X, C, V)`.
template <class F, class Scalar, int Dim>
concept per_column_time_conditional_field =
    requires(F& f, const sample_times<Scalar>& T, const batch<Scalar, Dim>& X, const class_labels& C,
             batch<Scalar, Dim>& V) { f.velocity_at_times(T, X, C, V); };

namespace detail {

/// Rejects classes outside `[-1, classes)` (with `classes < 0`: any class >= -1).
inline void require_classes(const class_labels& C, Eigen::Index classes, std::string_view what) {
  for (Eigen::Index j = 0; j < C.size(); ++j) {
    const Eigen::Index c = C(j);
    if (c < null_class || (classes >= 0 && c >= classes))
      throw invalid_argument(invalid_message(
          std::string(what) + "[" + std::to_string(j) + "]", c,
          classes >= 0 ? "expected a class in [0, " + std::to_string(classes) + ") or -1 (unconditional)"
                       : std::string("expected a class >= 0 or -1 (unconditional)")));
  }
}

/// The training points of each class, from one label per point (@p labels, entries in
/// `[0, classes)`; @p classes = -1 takes the largest label plus one): entry k lists the
/// indices of class k's points, in order.
/// @throws kinflow::invalid_argument for an empty set, labels of the wrong length (@p n
///         points), a negative label or one at or beyond @p classes, or bad @p classes.
inline std::vector<std::vector<Eigen::Index>> points_by_class(const class_labels& labels, Eigen::Index n,
                                                               Eigen::Index classes) {
  require(n >= 1, "training set columns (number of points N)", n, "expected a non-empty training set, N >= 1");
  require(labels.size() == n, "labels", labels.size(),
          "expected one label per training point (N = " + std::to_string(n) + ")");
  require(classes == -1 || classes >= 1, "classes", classes,
          "expected a number of classes >= 1, or -1 (the largest label plus one)");
  for (Eigen::Index i = 0; i < labels.size(); ++i)
    if (labels(i) < 0 || (classes >= 1 && labels(i) >= classes))
      throw invalid_argument(invalid_message("labels[" + std::to_string(i) + "]", labels(i),
                                             classes >= 1 ? "expected a label in [0, " + std::to_string(classes) + ")"
                                                          : std::string("expected a label >= 0")));
  const Eigen::Index K = classes >= 1 ? classes : labels.maxCoeff() + 1;
  std::vector<std::vector<Eigen::Index>> members(static_cast<std::size_t>(K));
  for (Eigen::Index i = 0; i < labels.size(); ++i) members[static_cast<std::size_t>(labels(i))].push_back(i);
  return members;
}

/// Rejects classes the conditional field @p f cannot take: below -1, or at or beyond its
/// `classes()` when it has one; @p what names them in messages.
template <class F>
void require_classes_of(const F& f, const class_labels& C, std::string_view what) {
  if constexpr (requires { f.classes(); })
    require_classes(C, static_cast<Eigen::Index>(f.classes()), what);
  else
    require_classes(C, -1, what);
}

/// `V = f(t, X, C)` for a conditional field of either form; `T` (when not null) gives one
/// time per column. A batched field without the per-column-time form is called column by
/// column there.
template <class F, class Scalar, int Dim>
void evaluate_conditional(F& f, Scalar t, const sample_times<Scalar>* T, const batch<Scalar, Dim>& X,
                          const class_labels& C, batch<Scalar, Dim>& V) {
  V.resize(X.rows(), X.cols());
  if constexpr (batched_conditional_field<F, Scalar, Dim>) {
    if (T == nullptr) {
      f(t, X, C, V);
      return;
    }
    if constexpr (per_column_time_conditional_field<F, Scalar, Dim>) {
      f.velocity_at_times(*T, X, C, V);
    } else {
      batch<Scalar, Dim> x(X.rows(), 1), v(X.rows(), 1);
      class_labels c(1);
      for (Eigen::Index j = 0; j < X.cols(); ++j) {
        x = X.col(j);
        c(0) = C(j);
        f((*T)(j), static_cast<const batch<Scalar, Dim>&>(x), static_cast<const class_labels&>(c), v);
        V.col(j) = v.col(0);
      }
    }
  } else {
    point<Scalar, Dim> x(X.rows());
    for (Eigen::Index j = 0; j < X.cols(); ++j) {
      x = X.col(j);
      V.col(j) = f(T == nullptr ? t : (*T)(j), static_cast<const point<Scalar, Dim>&>(x), C(j));
    }
  }
}

/// The classes of the columns of the current call (kinflow::batch_columns) from the classes
/// of the whole batch.
inline void gather_classes(const class_labels& all, Eigen::Index cols, class_labels& out,
                           std::string_view what) {
  const batch_columns& at = batch_columns::current();
  out.resize(cols);
  for (Eigen::Index m = 0; m < cols; ++m) {
    const Eigen::Index i = at[m];
    if (i < 0 || i >= all.size())
      throw invalid_argument(invalid_message(
          what, all.size(),
          "expected one class per sample of the batch; the field was called for sample " +
              std::to_string(i)));
    out(m) = all(i);
  }
}

}  // namespace detail

/// A conditional field with one class bound to every sample of a batch: a plain batched
/// field (see the file comment). `Field` is held as kinflow::shaped holds its field: by
/// reference for an lvalue, by value for an rvalue.
template <class Field>
class conditioned_field {
public:
  using inner_type = std::remove_reference_t<Field>;  ///< the conditional field's type

  /// Binds @p classes (one per sample of the batch to be solved; -1: unconditional).
  /// @throws kinflow::invalid_argument for a class below -1, or at or beyond the field's
  ///         `classes()` when it has one.
  template <class F>
    requires std::constructible_from<Field, F&&>
  conditioned_field(F&& field, class_labels classes) : field_(std::forward<F>(field)), classes_(std::move(classes)) {
    detail::require_classes_of(std::as_const(field_), classes_, "classes");
  }

  /// `V.col(m) = v(t, X.col(m), c)` with c the class of the sample column m is.
  template <std::floating_point Scalar, int Dim>
    requires conditional_field<const inner_type, Scalar, Dim>
  void operator()(Scalar t, const batch<Scalar, Dim>& X, batch<Scalar, Dim>& V) const {
    thread_local class_labels C;
    detail::gather_classes(classes_, X.cols(), C, "classes");
    detail::evaluate_conditional(field_, t, static_cast<const sample_times<Scalar>*>(nullptr), X,
                                 static_cast<const class_labels&>(C), V);
  }

  /// One time per column: `V.col(m) = v(T(m), X.col(m), c)`.
  template <std::floating_point Scalar, int Dim>
    requires conditional_field<const inner_type, Scalar, Dim>
  void velocity_at_times(const sample_times<Scalar>& T, const batch<Scalar, Dim>& X,
                         batch<Scalar, Dim>& V) const {
    detail::require_dimension("number of times T (one per column of X)", T.size(), X.cols());
    thread_local class_labels C;
    detail::gather_classes(classes_, X.cols(), C, "classes");
    detail::evaluate_conditional(field_, Scalar(0), &T, X, static_cast<const class_labels&>(C), V);
  }

  /// The inner field's dimension (when it has `dim()`).
  [[nodiscard]] Eigen::Index dim() const
    requires field_with_dim<inner_type>
  {
    return static_cast<Eigen::Index>(std::as_const(field_).dim());
  }

  /// The classes bound, one per sample.
  [[nodiscard]] const class_labels& classes() const noexcept { return classes_; }
  /// The conditional field.
  [[nodiscard]] const inner_type& inner() const noexcept { return field_; }

private:
  Field field_;
  class_labels classes_;
};

/// Deduction guide: lvalues are held by reference, rvalues by value.
template <class F>
conditioned_field(F&&, class_labels) -> conditioned_field<F>;

/// The conditional @p field with @p classes bound, one per sample (see conditioned_field).
template <class F>
[[nodiscard]] conditioned_field<F> conditioned(F&& field, class_labels classes) {
  return conditioned_field<F>(std::forward<F>(field), std::move(classes));
}

}  // namespace kinflow
