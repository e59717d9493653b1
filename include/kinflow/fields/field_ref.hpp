#pragma once
/// @file
/// @brief References to a velocity field of one type whatever the field's: the solves a
/// program runs on them are compiled once per scalar type, dimension and method, not once
/// per field.
///
/// A program that offers several fields (a command line with `--field`, a Python module)
/// and several solvers compiles every solve once per field and solver when it passes each
/// field as it is. Passing a reference instead compiles the solves once for all fields with
/// an exact divergence (kinflow::exact_field_ref) and once for all without
/// (kinflow::field_ref); only a thin call-through is compiled per field. The field is
/// evaluated on whole batches, so the one indirect call per evaluation costs nothing beside
/// it, and results are the same bits as with the field itself.
///
/// @code
///   kinflow::with_field_ref<double>(field, d, [&](auto& ref) {
///     auto r = kinflow::integrate(ref, kinflow::rk4, grid, X, options);
///   });
/// @endcode
///
/// A reference is not for concurrent use from several threads (it owns the scratch of
/// per-sample fields), like kinflow::field_evaluator; copies own their own scratch.

#include <Eigen/Core>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

#include "kinflow/core/batch.hpp"
#include "kinflow/core/concepts.hpp"
#include "kinflow/core/field_evaluator.hpp"
#include "kinflow/fields/divergence.hpp"
#include "kinflow/fields/velocity_divergence.hpp"

namespace kinflow {

/// True when a field of type `Field` has an exact divergence in either form (what
/// kinflow::exact_field_ref needs).
template <class Field, class Scalar, int Dim>
inline constexpr bool has_exact_divergence =
    divergence_field<Field, Scalar, Dim> || per_column_time_divergence_field<Field, Scalar, Dim>;

namespace detail {

/// The calls a field reference makes, whatever the field.
template <class Scalar, int Dim>
struct field_model {
  using batch_type = batch<Scalar, Dim>;
  virtual ~field_model() = default;
  [[nodiscard]] virtual std::unique_ptr<field_model> clone() const = 0;
  virtual void velocity(Scalar t, const batch_type& X, batch_type& V) = 0;
  virtual void velocity_at_times(const sample_times<Scalar>& T, const batch_type& X, batch_type& V) = 0;
  // Called only through kinflow::exact_field_ref, whose fields have them.
  virtual void divergence(Scalar t, const batch_type& X, per_sample<Scalar>& D) = 0;
  virtual void divergence_at_times(const sample_times<Scalar>& T, const batch_type& X, per_sample<Scalar>& D) = 0;
  virtual void velocity_and_divergence(Scalar t, const batch_type& X, batch_type& V, per_sample<Scalar>& D) = 0;
  virtual void velocity_and_divergence_at_times(const sample_times<Scalar>& T, const batch_type& X, batch_type& V,
                                                per_sample<Scalar>& D) = 0;
  [[nodiscard]] virtual std::optional<double> switch_time() const = 0;
  [[nodiscard]] virtual Eigen::Index dim() const = 0;
};

/// The call-through for a field of type `Field` (possibly const), kept by reference.
template <class Field, class Scalar, int Dim>
class field_model_of final : public field_model<Scalar, Dim> {
public:
  using batch_type = batch<Scalar, Dim>;
  static constexpr bool exact = has_exact_divergence<Field, Scalar, Dim>;

  field_model_of(Field& field, Eigen::Index dim) : field_(field), dim_(dim), eval_(field, dim) {
    if constexpr (exact) divergence_.emplace(field, dim, divergence_options{divergence_method::exact, {}});
  }
  [[nodiscard]] std::unique_ptr<field_model<Scalar, Dim>> clone() const override {
    return std::make_unique<field_model_of>(field_, dim_);
  }
  void velocity(Scalar t, const batch_type& X, batch_type& V) override { eval_(t, X, V); }
  void velocity_at_times(const sample_times<Scalar>& T, const batch_type& X, batch_type& V) override {
    eval_(T, X, V);
  }
  void divergence(Scalar t, const batch_type& X, per_sample<Scalar>& D) override {
    if constexpr (exact) (*divergence_)(t, X, D);
  }
  void divergence_at_times(const sample_times<Scalar>& T, const batch_type& X, per_sample<Scalar>& D) override {
    if constexpr (exact) (*divergence_)(T, X, D);
  }
  void velocity_and_divergence(Scalar t, const batch_type& X, batch_type& V, per_sample<Scalar>& D) override {
    if constexpr (velocity_divergence_field<Field, Scalar, Dim>) {
      field_.velocity_and_divergence(t, X, V, D);
      check(X, V, D);
    } else if constexpr (exact) {
      (*divergence_)(t, X, D);  // first: V may be X
      eval_(t, X, V);
    }
  }
  void velocity_and_divergence_at_times(const sample_times<Scalar>& T, const batch_type& X, batch_type& V,
                                        per_sample<Scalar>& D) override {
    if constexpr (velocity_divergence_field<Field, Scalar, Dim>) {
      field_.velocity_and_divergence_at_times(T, X, V, D);
      check(X, V, D);
    } else if constexpr (exact) {
      (*divergence_)(T, X, D);  // first: V may be X
      eval_(T, X, V);
    }
  }
  [[nodiscard]] std::optional<double> switch_time() const override {
    if constexpr (field_with_switch_time<Field>) return std::as_const(field_).switch_time();
    return std::nullopt;
  }
  [[nodiscard]] Eigen::Index dim() const override { return dim_; }

private:
  static void check(const batch_type& X, const batch_type& V, const per_sample<Scalar>& D) {
    require_dimension("rows of the velocity written by the field", V.rows(), X.rows());
    require_dimension("columns of the velocity written by the field", V.cols(), X.cols());
    require_dimension("entries of the divergence written by the field", D.size(), X.cols());
  }

  Field& field_;
  Eigen::Index dim_;
  field_evaluator<Field, Scalar, Dim> eval_;
  std::optional<divergence_evaluator<Field, Scalar, Dim>> divergence_;
};

/// What kinflow::field_ref and kinflow::exact_field_ref share.
template <class Scalar, int Dim>
class field_ref_base {
public:
  using batch_type = batch<Scalar, Dim>;  ///< a d x B batch

  field_ref_base(const field_ref_base& other) : model_(other.model_->clone()) {}
  field_ref_base(field_ref_base&&) noexcept = default;
  field_ref_base& operator=(const field_ref_base& other) {
    if (this != &other) model_ = other.model_->clone();
    return *this;
  }
  field_ref_base& operator=(field_ref_base&&) noexcept = default;
  ~field_ref_base() = default;

  /// `V = v(t, X)`; V must have the shape of X.
  void operator()(Scalar t, const batch_type& X, batch_type& V) const { model_->velocity(t, X, V); }
  /// `V.col(i) = v(T(i), X.col(i))`.
  void velocity_at_times(const sample_times<Scalar>& T, const batch_type& X, batch_type& V) const {
    model_->velocity_at_times(T, X, V);
  }
  /// The field's switch time (kinflow::field_with_switch_time), or none.
  [[nodiscard]] std::optional<double> switch_time() const { return model_->switch_time(); }
  /// The state dimension d given at construction.
  [[nodiscard]] Eigen::Index dim() const { return model_->dim(); }

protected:
  template <class Field>
  field_ref_base(Field& field, Eigen::Index dim)
      : model_(std::make_unique<field_model_of<Field, Scalar, Dim>>(field, dim)) {}

  std::unique_ptr<field_model<Scalar, Dim>> model_;
};

}  // namespace detail

/// A reference to any velocity field (per-sample or batched, with or without a time per
/// column), evaluated on batches of dimension d: a batched field with
/// `velocity_at_times`, `dim()` and `switch_time()`. The field must outlive the reference.
///
/// @tparam Scalar float or double
/// @tparam Dim    the dimension d at compile time, or Eigen::Dynamic
template <class Scalar, int Dim = Eigen::Dynamic>
class field_ref : public detail::field_ref_base<Scalar, Dim> {
public:
  /// Refers to @p field (kept by reference), of dimension @p dim.
  /// @throws kinflow::invalid_argument or kinflow::dimension_mismatch as
  ///         kinflow::field_evaluator does (d < 1, a field whose `dim()` is not d).
  template <class Field>
    requires velocity_field<Field, Scalar, Dim> && (!std::is_base_of_v<detail::field_ref_base<Scalar, Dim>,
                                                                        std::remove_cv_t<Field>>)
  field_ref(Field& field, Eigen::Index dim) : detail::field_ref_base<Scalar, Dim>(field, dim) {}
};

/// A reference to a velocity field with an exact divergence (kinflow::has_exact_divergence):
/// kinflow::field_ref's calls, and the divergence in all four forms, including velocity and
/// divergence from one evaluation (kinflow::velocity_divergence_field; from two when the
/// field computes them apart, the divergence first). The field must outlive the reference.
///
/// @tparam Scalar float or double
/// @tparam Dim    the dimension d at compile time, or Eigen::Dynamic
template <class Scalar, int Dim = Eigen::Dynamic>
class exact_field_ref : public detail::field_ref_base<Scalar, Dim> {
public:
  using typename detail::field_ref_base<Scalar, Dim>::batch_type;

  /// Refers to @p field (kept by reference), of dimension @p dim.
  /// @throws as kinflow::field_ref's constructor.
  template <class Field>
    requires velocity_field<Field, Scalar, Dim> && has_exact_divergence<Field, Scalar, Dim> &&
             (!std::is_base_of_v<detail::field_ref_base<Scalar, Dim>, std::remove_cv_t<Field>>)
  exact_field_ref(Field& field, Eigen::Index dim) : detail::field_ref_base<Scalar, Dim>(field, dim) {}

  /// `D(i) = div v(t, X.col(i))`.
  void divergence(Scalar t, const batch_type& X, per_sample<Scalar>& D) const { this->model_->divergence(t, X, D); }
  /// `D(i) = div v(T(i), X.col(i))`.
  void divergence_at_times(const sample_times<Scalar>& T, const batch_type& X, per_sample<Scalar>& D) const {
    this->model_->divergence_at_times(T, X, D);
  }
  /// `V = v(t, X)` and `D(i) = div v(t, X.col(i))`. V may be X.
  void velocity_and_divergence(Scalar t, const batch_type& X, batch_type& V, per_sample<Scalar>& D) const {
    this->model_->velocity_and_divergence(t, X, V, D);
  }
  /// `V.col(i) = v(T(i), X.col(i))` and `D(i) = div v(T(i), X.col(i))`. V may be X.
  void velocity_and_divergence_at_times(const sample_times<Scalar>& T, const batch_type& X, batch_type& V,
                                        per_sample<Scalar>& D) const {
    this->model_->velocity_and_divergence_at_times(T, X, V, D);
  }
};

/// Calls `visit(ref)` with a reference to @p field of dimension @p dim: a
/// kinflow::exact_field_ref when the field has an exact divergence, a kinflow::field_ref
/// otherwise. What `visit` does is then compiled for two types, whatever the fields.
template <class Scalar, int Dim = Eigen::Dynamic, class Field, class Visit>
  requires velocity_field<Field, Scalar, Dim>
decltype(auto) with_field_ref(Field& field, Eigen::Index dim, Visit&& visit) {
  if constexpr (has_exact_divergence<Field, Scalar, Dim>) {
    exact_field_ref<Scalar, Dim> ref(field, dim);
    return std::forward<Visit>(visit)(ref);
  } else {
    field_ref<Scalar, Dim> ref(field, dim);
    return std::forward<Visit>(visit)(ref);
  }
}

}  // namespace kinflow
