#pragma once
/// @file
/// @brief The exact class-conditional flow-matching field of a labelled training set: the
/// empirical field of each class's points, `v_c`, and of all points, `v_u`, both from one
/// pass over the training set (docs/math.md, "The class-conditional field"); and its
/// smoothed version (the smoothed empirical field of each class's points).
///
/// With labels `ℓ_i`, the class-c field is kinflow::empirical_field of the points with
/// `ℓ_i = c`, and the unconditional field that of all points. Their posteriors are
/// softmaxes over those points, so the partial posterior state of all points
/// (kinflow::posterior_state) is the merge of the per-class states: one pass gathers the
/// state of every class, hands each query the state of its own class for `v_c`, and merges
/// them for `v_u`. Both fields, their divergences and log densities then cost one pass over
/// the N points, as `v_u` alone does; `v_c` alone visits only each query's own class.
///
/// @code
///   kinflow::class_conditional_field<double> field(Y, labels);
///   field(t, X, C, V);                                 // V.col(j) = v_{C(j)}(t, X.col(j))
///   field.velocity_pair(t, X, C, U, Vc);               // v_u and v_c, one pass
///   auto r = kinflow::integrate(kinflow::conditioned(field, C), kinflow::rk4, grid, X);
///   auto g = kinflow::integrate(kinflow::guided(field, C, {.scale = 3.0}), kinflow::rk4, grid, X);
/// @endcode

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <Eigen/Core>

#include "kinflow/core/batch.hpp"
#include "kinflow/core/conditions.hpp"
#include "kinflow/core/errors.hpp"
#include "kinflow/detail/class_pass.hpp"
#include "kinflow/fields/empirical.hpp"
#include "kinflow/fields/gaussian_mixture.hpp"
#include "kinflow/fields/smoothed_empirical.hpp"

namespace kinflow {

/// The exact class-conditional field of a labelled training set (see the file comment).
///
/// A conditional field in the batched form, `field(t, X, C, V)` (class `-1`: the
/// unconditional field), with the per-column-time form, the pair `(v_u, v_c)` from one pass
/// (velocity_pair), their exact divergences, and the log densities `log p_t(x | c)`. Each
/// class keeps its own field of its points (kinflow::empirical_field, or with `Field` a
/// Gaussian mixture, the smoothed empirical field of its points:
/// kinflow::smoothed_class_conditional_field), with the options given, pruning included,
/// so memory is one copy of the training set. Evaluation is const and may run concurrently
/// from several threads.
///
/// @tparam Scalar float or double
/// @tparam Dim    d fixed at compile time or Eigen::Dynamic
/// @tparam Field  the field of one class: kinflow::empirical_field (the default) or
///                kinflow::gaussian_mixture_field (the smoothed field, equal weights and
///                one width s; the per-class states then merge to the smoothed field of
///                all points, as the empirical ones do)
template <class Scalar, int Dim = Eigen::Dynamic, class Field = empirical_field<Scalar, Dim>>
  requires real_scalar<Scalar>
class class_conditional_field {
  static constexpr bool smoothed = std::is_same_v<Field, gaussian_mixture_field<Scalar, Dim>>;
  static_assert(smoothed || std::is_same_v<Field, empirical_field<Scalar, Dim>>,
                "class_conditional_field: Field is empirical_field or gaussian_mixture_field (smoothed)");

public:
  using scalar_type = Scalar;                    ///< the scalar type
  using batch_type = batch<Scalar, Dim>;         ///< a batch of samples (d x B)
  using values_type = per_sample<Scalar>;        ///< one value per sample
  using field_type = Field;                      ///< the field of one class
  using options_type = typename Field::options_type;  ///< the options of every class's field
  using state_type = posterior_state<Scalar>;    ///< a partial posterior state

  /// The field of the training set @p training_set (d x N) with one label per point
  /// (@p labels, entries in `[0, classes)`). @p classes is the number of classes; -1 (the
  /// default) takes the largest label plus one. A class without points may exist (e.g. in
  /// a shard of a larger set); asking for it is an error.
  /// @throws kinflow::invalid_argument for labels of the wrong length, a negative label or
  ///         one at or beyond @p classes, an empty or non-finite training set, bad options.
  template <class Derived>
    requires(!smoothed)
  class_conditional_field(const Eigen::MatrixBase<Derived>& training_set, const class_labels& labels,
                          const options_type& options = {}, Eigen::Index classes = -1) {
    build(training_set, labels, options, classes,
          [](const batch_type& Yk, const options_type& o) { return field_type(Yk, o); });
  }

  /// The smoothed field: each class's field is the smoothed empirical field of its points,
  /// `N(y_i, s² I)` with equal weights (kinflow::smoothed_empirical), and the unconditional
  /// field that of all points. Otherwise as the constructor above.
  /// @throws as above, and kinflow::invalid_argument unless @p s is finite and > 0.
  template <class Derived>
    requires smoothed
  class_conditional_field(const Eigen::MatrixBase<Derived>& training_set, const class_labels& labels, Scalar s,
                          const options_type& options = {}, Eigen::Index classes = -1) {
    build(training_set, labels, options, classes,
          [s](const batch_type& Yk, const options_type& o) { return smoothed_empirical(Yk, s, o); });
    smoothing_ = s;
  }

  /// The smoothing width s of the smoothed field (0 for the empirical one).
  [[nodiscard]] Scalar smoothing() const noexcept { return smoothing_; }

  /// Dimension d.
  [[nodiscard]] Eigen::Index dim() const noexcept { return any().dim(); }
  /// Number of training points N (all classes).
  [[nodiscard]] Eigen::Index size() const noexcept { return size_; }
  /// Number of classes K (valid classes are 0 … K-1, and -1 for the unconditional field).
  [[nodiscard]] Eigen::Index classes() const noexcept { return static_cast<Eigen::Index>(fields_.size()); }
  /// Number of training points of class @p c (0 for a class without points).
  [[nodiscard]] Eigen::Index class_size(Eigen::Index c) const {
    check_class_index(c);
    const auto& f = fields_[static_cast<std::size_t>(c)];
    return f ? f->size() : 0;
  }
  /// The empirical field of class @p c's points.
  /// @throws kinflow::invalid_argument for a class out of range or without points.
  [[nodiscard]] const field_type& class_field(Eigen::Index c) const {
    check_class_index(c);
    require_points(c);
    return *fields_[static_cast<std::size_t>(c)];
  }
  /// The pairs every class's field visited so far, summed over the classes (see
  /// kinflow::pruning_stats; shared by copies).
  [[nodiscard]] pruning_stats pruning_statistics() const noexcept {
    pruning_stats total;
    each_field([&](const field_type& f) { total += f.pruning_statistics(); });
    return total;
  }
  /// Sets every class's counts to zero and clears their recorded passes.
  void reset_pruning_statistics() const noexcept {
    each_field([](const field_type& f) { f.reset_pruning_statistics(); });
  }
  /// Starts (or stops) recording every class's passes over its points (see
  /// closed_form_field::record_pruning_passes); off by default, shared by copies.
  void record_pruning_passes(bool on) const noexcept {
    each_field([on](const field_type& f) { f.record_pruning_passes(on); });
  }
  /// Every class's recorded passes. An evaluation with v_u passes each sample over every
  /// class's points (one pass gives v_u and v_c), one of v_c alone over its own class's.
  [[nodiscard]] std::vector<pruning_pass> pruning_passes() const {
    std::vector<pruning_pass> all;
    each_field([&](const field_type& f) {
      const std::vector<pruning_pass> p = f.pruning_passes();
      all.insert(all.end(), p.begin(), p.end());
    });
    return all;
  }
  /// The options every class's field uses.
  [[nodiscard]] const options_type& options() const noexcept { return opt_; }

  /// Conditional velocity: `V.col(j) = v_{C(j)}(t, X.col(j))`, the unconditional field where
  /// `C(j) = -1`. V may be X.
  /// @throws kinflow::invalid_argument for a class out of range or without points;
  ///         kinflow::dimension_mismatch for a C of the wrong length or X of the wrong rows.
  void operator()(Scalar t, const batch_type& X, const class_labels& C, batch_type& V) const {
    evaluate(at_time{t}, X, C, nullptr, &V, nullptr, nullptr);
  }
  /// Conditional velocity with one time per column, `V.col(j)` at `T(j)`.
  void velocity_at_times(const sample_times<Scalar>& T, const batch_type& X, const class_labels& C,
                         batch_type& V) const {
    detail::require_dimension("number of times T (one per column of X)", T.size(), X.cols());
    evaluate(at_times{&T}, X, C, nullptr, &V, nullptr, nullptr);
  }

  /// The unconditional velocity `v_u` (of all points) of every column of X.
  void unconditional(Scalar t, const batch_type& X, batch_type& V) const {
    const class_labels C = class_labels::Constant(X.cols(), null_class);
    evaluate(at_time{t}, X, C, &V, nullptr, nullptr, nullptr);
  }

  /// Both velocities from one pass: `U.col(j) = v_u(t, X.col(j))` and
  /// `Vc.col(j) = v_{C(j)}(t, X.col(j))` (U and Vc distinct; either may be X).
  void velocity_pair(Scalar t, const batch_type& X, const class_labels& C, batch_type& U, batch_type& Vc) const {
    evaluate(at_time{t}, X, C, &U, &Vc, nullptr, nullptr);
  }
  /// velocity_pair with one time per column.
  void velocity_pair_at_times(const sample_times<Scalar>& T, const batch_type& X, const class_labels& C,
                              batch_type& U, batch_type& Vc) const {
    detail::require_dimension("number of times T (one per column of X)", T.size(), X.cols());
    evaluate(at_times{&T}, X, C, &U, &Vc, nullptr, nullptr);
  }

  /// Both velocities and their exact divergences `Du`, `Dc` from one pass.
  void velocity_pair_and_divergence(Scalar t, const batch_type& X, const class_labels& C, batch_type& U,
                                    batch_type& Vc, values_type& Du, values_type& Dc) const {
    evaluate(at_time{t}, X, C, &U, &Vc, &Du, &Dc);
  }
  /// velocity_pair_and_divergence with one time per column.
  void velocity_pair_and_divergence_at_times(const sample_times<Scalar>& T, const batch_type& X,
                                             const class_labels& C, batch_type& U, batch_type& Vc,
                                             values_type& Du, values_type& Dc) const {
    detail::require_dimension("number of times T (one per column of X)", T.size(), X.cols());
    evaluate(at_times{&T}, X, C, &U, &Vc, &Du, &Dc);
  }

  /// The partial posterior states of every column of X at time t over this field's points,
  /// for a training set split into shards (one field per shard, with the same number of
  /// classes): `first` over all of them (for `v_u`), `second` over the column's class (all
  /// of them for class -1; empty where this shard has no point of it). Merge each with the
  /// other shards' (posterior_state::merge) and finish them with velocity_pair_from. With
  /// @p unconditional false (v_c alone), `first` is empty but for the columns of class -1,
  /// and each class streams only its own columns: about 1/K of the work.
  [[nodiscard]] std::pair<state_type, state_type> partial_states(Scalar t, const batch_type& X, const class_labels& C,
                                                                 posterior_request request = {true, false},
                                                                 bool unconditional = true) const {
    return states(at_time{t}, X, C, request, unconditional);
  }

  /// partial_states() with one time per column, query j at time `T(j)`.
  [[nodiscard]] std::pair<state_type, state_type> partial_states_at_times(const sample_times<Scalar>& T,
                                                                          const batch_type& X, const class_labels& C,
                                                                          posterior_request request = {true, false},
                                                                          bool unconditional = true) const {
    detail::require_dimension("number of times T (one per column of X)", T.size(), X.cols());
    return states(at_times{&T}, X, C, request, unconditional);
  }

  /// Both velocities at time t from merged states (see partial_states): `U` from @p u, `Vc`
  /// from @p c.
  /// @throws kinflow::invalid_argument when a column's state is empty (its class has no
  ///         point in any shard) or lacks the mean; kinflow::dimension_mismatch for states
  ///         of other queries.
  void velocity_pair_from(Scalar t, const batch_type& X, const state_type& u, const state_type& c, batch_type& U,
                          batch_type& Vc) const {
    for (const state_type* s : {&u, &c})
      for (Eigen::Index j = 0; j < s->size(); ++j)
        detail::require(s->weight_sum(j) > 0, "posterior state of column " + std::to_string(j), "empty",
                        "expected a state over at least one point (the column's class has no point in any shard)");
    const field_type& f = any();
    f.velocity_from(t, X, u, U);
    f.velocity_from(t, X, c, Vc);
  }

  /// Exact divergence of the conditional velocity, `D(j) = div v_{C(j)}(t, X.col(j))`.
  void divergence(Scalar t, const batch_type& X, const class_labels& C, values_type& D) const {
    evaluate(at_time{t}, X, C, nullptr, nullptr, nullptr, &D);
  }

  /// Log density of the conditional path, `log p_t(X.col(j) | C(j))` (class -1: of all
  /// points, `log p_t(x)`).
  [[nodiscard]] values_type log_density(Scalar t, const batch_type& X, const class_labels& C) const {
    check(X, C);
    state_type u, c;
    pass(at_time{t}, X, C, {false, false}, u, c, false);
    values_type out = any().log_density_from(t, c);  // normalised by the first class's size
    const Scalar log_first = std::log(static_cast<Scalar>(any().size()));
    for (Eigen::Index j = 0; j < X.cols(); ++j)
      out(j) += log_first - std::log(static_cast<Scalar>(C(j) == null_class ? size_ : class_size(C(j))));
    return out;
  }

private:
  template <class Derived, class Make>
  void build(const Eigen::MatrixBase<Derived>& training_set, const class_labels& labels, const options_type& options,
             Eigen::Index classes, const Make& make) {
    const std::vector<std::vector<Eigen::Index>> members =
        detail::points_by_class(labels, training_set.cols(), classes);
    fields_.resize(members.size());
    for (std::size_t k = 0; k < members.size(); ++k) {
      if (members[k].empty()) continue;
      batch_type Yk(training_set.rows(), static_cast<Eigen::Index>(members[k].size()));
      for (std::size_t m = 0; m < members[k].size(); ++m)
        Yk.col(static_cast<Eigen::Index>(m)) = training_set.col(members[k][m]).template cast<Scalar>();
      fields_[k] = std::make_shared<const field_type>(make(Yk, class_options(options)));
      if (first_ < 0) first_ = static_cast<Eigen::Index>(k);
    }
    size_ = training_set.cols();
    opt_ = options;
  }

  // The time of every column (at_time), or one time per column (at_times).
  struct at_time { Scalar t; };
  struct at_times { const sample_times<Scalar>* T; };

  [[nodiscard]] const field_type& any() const { return *fields_[static_cast<std::size_t>(first_)]; }

  void check_class_index(Eigen::Index c) const {
    detail::require(c >= 0 && c < classes(), "class", c,
                    "expected a class in [0, " + std::to_string(classes()) + ")");
  }
  void require_points(Eigen::Index c) const {
    detail::require(fields_[static_cast<std::size_t>(c)] != nullptr, "class", c,
                    "expected a class with training points (this one has none)");
  }

  void check(const batch_type& X, const class_labels& C) const {
    detail::require_dimension("rows of the sample batch X (dimension d)", X.rows(), dim());
    detail::require_dimension("number of classes C (one per column of X)", C.size(), X.cols());
    detail::require_classes(C, classes(), "C");
    for (Eigen::Index j = 0; j < C.size(); ++j)
      if (C(j) != null_class) require_points(C(j));
  }

  /// Every class's field runs on one thread: an evaluation spreads the classes over the
  /// workers instead (pass()), which starts threads once per evaluation, not once per class.
  static options_type class_options(options_type o) {
    o.threads = 1;
    return o;
  }

  /// partial_states() at `time_of` after the checks of X and C.
  template <class TimeOf>
  std::pair<state_type, state_type> states(const TimeOf& time_of, const batch_type& X, const class_labels& C,
                                           posterior_request request, bool unconditional) const {
    detail::require_dimension("rows of the sample batch X (dimension d)", X.rows(), dim());
    detail::require_dimension("number of classes C (one per column of X)", C.size(), X.cols());
    detail::require_classes(C, classes(), "C");
    std::pair<state_type, state_type> out;
    pass(time_of, X, C, request, out.first, out.second, unconditional);
    return out;
  }

  /// The states of every column over all points (@p u) and over its own class's (@p c), from
  /// one pass over the classes (detail::class_pass); without @p all_u, of its own class only.
  template <class TimeOf>
  void pass(const TimeOf& time_of, const batch_type& X, const class_labels& C, posterior_request request,
            state_type& u, state_type& c, bool all_u = true) const {
    detail::class_pass(fields_, size_, dim(), opt_.memory_budget, opt_.threads, time_of, X, C, request, u, c, all_u);
  }

  /// The outputs asked for (null: not wanted) from one pass.
  template <class TimeOf>
  void evaluate(const TimeOf& time_of, const batch_type& X, const class_labels& C, batch_type* U,
                batch_type* Vc, values_type* Du, values_type* Dc) const {
    check(X, C);
    state_type u, c;
    const bool velocities = U != nullptr || Vc != nullptr;
    pass(time_of, X, C, {velocities, Du != nullptr || Dc != nullptr}, u, c, U != nullptr || Du != nullptr);
    const field_type& f = any();  // the finishing steps do not depend on the class
    if constexpr (std::is_same_v<TimeOf, at_time>) {
      if (Du != nullptr) *Du = f.divergence_from(time_of.t, u);
      if (Dc != nullptr) *Dc = f.divergence_from(time_of.t, c);
    } else {
      if (Du != nullptr) *Du = f.divergence_from_at_times(*time_of.T, u);
      if (Dc != nullptr) *Dc = f.divergence_from_at_times(*time_of.T, c);
    }
    // The velocities last, and one written over X after the other.
    auto finish = [&](const state_type& s, batch_type* V) {
      if (V == nullptr) return;
      if constexpr (std::is_same_v<TimeOf, at_time>)
        f.velocity_from(time_of.t, X, s, *V);
      else
        f.velocity_from_at_times(*time_of.T, X, s, *V);
    };
    if (U == &X) {
      finish(c, Vc);
      finish(u, U);
    } else {
      finish(u, U);
      finish(c, Vc);
    }
  }

  template <class Fn>
  void each_field(Fn&& fn) const {  // fn(field) for every class with points
    for (const auto& f : fields_)
      if (f) fn(*f);
  }

  std::vector<std::shared_ptr<const field_type>> fields_;  // null for a class without points
  Eigen::Index first_ = -1;                                // a class with points
  Eigen::Index size_ = 0;
  options_type opt_;  // as given (each class's field has threads = 1)
  Scalar smoothing_ = 0;  // s of the smoothed field
};

/// The smoothed class-conditional field: each class's field is the smoothed empirical
/// field of its points (see class_conditional_field).
template <class Scalar, int Dim = Eigen::Dynamic>
using smoothed_class_conditional_field = class_conditional_field<Scalar, Dim, gaussian_mixture_field<Scalar, Dim>>;

/// The smoothed class-conditional field of @p training_set with @p labels and width @p s
/// (kinflow::smoothed_empirical of each class's points, and of all points for class -1).
/// @throws kinflow::invalid_argument as class_conditional_field's constructors.
template <class Derived>
[[nodiscard]] smoothed_class_conditional_field<typename Derived::Scalar, Derived::RowsAtCompileTime>
smoothed_class_conditional(const Eigen::MatrixBase<Derived>& training_set, const class_labels& labels,
                           typename Derived::Scalar s,
                           const gaussian_mixture_options<typename Derived::Scalar>& options = {},
                           Eigen::Index classes = -1) {
  return {training_set, labels, s, options, classes};
}

/// Deduces `class_conditional_field<Scalar, Rows>` from the training matrix.
template <class Derived>
class_conditional_field(const Eigen::MatrixBase<Derived>&, const class_labels&)
    -> class_conditional_field<typename Derived::Scalar, Derived::RowsAtCompileTime>;
/// Deduces `class_conditional_field<Scalar, Rows>` from the training matrix and options.
template <class Derived>
class_conditional_field(const Eigen::MatrixBase<Derived>&, const class_labels&,
                        const empirical_options<typename Derived::Scalar>&, Eigen::Index = -1)
    -> class_conditional_field<typename Derived::Scalar, Derived::RowsAtCompileTime>;

}  // namespace kinflow
