#pragma once
/// @file
/// @brief The interface kinflow::empirical_field and kinflow::gaussian_mixture_field have in
/// common, over the closed-form posterior engine of kinflow/fields/posterior_engine.hpp
/// (docs/math.md, "The closed-form posterior engine").
///
/// Both fields are posteriors over a set of Gaussian "points": for a sample x at time t the
/// logits are `L_i = log π_i - ‖x - t y_i‖² / (2 v_i) - (d/2) log v_i` (the last term and
/// the priors only where they differ between points), and every quantity the fields return
/// — velocity, log density, posterior mean and weights, divergence — is a finishing step
/// applied to the posterior statistics of kinflow::posterior_state. The engine computes
/// those statistics in tiles within a memory budget, on worker threads, with direct or
/// product-based distances; the fields supply the per-sample parameters of the logits and
/// the finishing steps.
///
/// The statistics of a batch over a subset of the points can be taken out
/// (closed_form_field::partial_state), merged with those of other subsets
/// (posterior_state::merge) and finished (closed_form_field::velocity_from,
/// closed_form_field::log_density_from): the way to split a training set over processes.

#include <cstddef>
#include <utility>
#include <vector>

#include <Eigen/Core>

#include "kinflow/core/batch.hpp"
#include "kinflow/core/errors.hpp"
#include "kinflow/fields/posterior_engine.hpp"
#include "kinflow/fields/posterior_state.hpp"

namespace kinflow {

/// What kinflow::empirical_field and kinflow::gaussian_mixture_field have in common: the
/// velocity in its three forms, posterior weights, log density, divergence, and the
/// partial posterior state with its finishing steps. `Derived` supplies the logit
/// parameters (`params(t)`), the finishing steps (`finish_velocity`, `log_density_shift`)
/// and its divergence (`divergence_impl`; with `divergence_in_stream()` true, also
/// `finish_divergence(t, column)` from the trace of a stream).
///
/// Each evaluation allocates its scratch (within the memory budget, with operator new) and,
/// when the work is large enough (N·B·(d + 16) beyond 4e5) and threads allow, runs on worker
/// threads started for the call; small evaluations stay on the calling thread.
///
/// @tparam Derived the field (CRTP)
/// @tparam Scalar  float or double
/// @tparam Dim     d fixed at compile time or Eigen::Dynamic
template <class Derived, class Scalar, int Dim>
class closed_form_field {
public:
  /// The scalar type.
  using scalar_type = Scalar;
  /// A batch of samples (d x B).
  using batch_type = batch<Scalar, Dim>;
  /// One sample.
  using point_type = point<Scalar, Dim>;
  /// Posterior weights, points x samples.
  using weights_type = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;
  /// One value per sample.
  using values_type = per_sample<Scalar>;
  /// The partial posterior state of a batch.
  using state_type = posterior_state<Scalar>;

  /// Dimension d.
  [[nodiscard]] Eigen::Index dim() const noexcept { return engine_.dim(); }
  /// Number of points (training points or mixture components).
  [[nodiscard]] Eigen::Index size() const noexcept { return engine_.size(); }
  /// True when the field references the caller's matrix rather than a copy.
  [[nodiscard]] bool holds_reference() const noexcept { return engine_.holds_reference(); }
  /// The engine (points, settings).
  [[nodiscard]] const posterior_engine<Scalar, Dim>& engine() const noexcept { return engine_; }
  /// How many (query, point) pairs the evaluations so far visited, against the dense count
  /// (see kinflow::pruning_mode; shared by copies of the field).
  [[nodiscard]] pruning_stats pruning_statistics() const noexcept { return engine_.pruning_statistics(); }
  /// Sets the counts of pruning_statistics() to zero and clears the recorded passes.
  void reset_pruning_statistics() const noexcept { engine_.reset_pruning_statistics(); }
  /// Starts (or stops) recording every pass over the points with its time and counts, for
  /// the share touched per step (kinflow::pruning_by_step); off by default, shared by copies.
  void record_pruning_passes(bool on) const noexcept { engine_.record_pruning_passes(on); }
  /// The passes recorded so far (see record_pruning_passes).
  [[nodiscard]] std::vector<pruning_pass> pruning_passes() const { return engine_.pruning_passes(); }

  /// Velocity `V.col(j) = v(X.col(j), t)`; V is resized to X's shape and may be X.
  void operator()(Scalar t, const batch_type& X, batch_type& V) const {
    velocity_impl([t](Eigen::Index) { return t; }, X, V);
  }

  /// Velocity with one time per column: `V.col(j) = v(X.col(j), T(j))`.
  void velocity_at_times(const sample_times<Scalar>& T, const batch_type& X, batch_type& V) const {
    detail::require_dimension("number of times T (one per column of X)", T.size(), X.cols());
    velocity_impl([&T](Eigen::Index j) { return T(j); }, X, V);
  }

  /// Velocity of every column of X, returned.
  [[nodiscard]] batch_type velocity(Scalar t, const batch_type& X) const {
    batch_type V;
    (*this)(t, X, V);
    return V;
  }

  /// Posterior weights `W(i, j) = p(point i | x_t = X.col(j))`, a size() x B matrix whose
  /// columns sum to 1. Its size is the caller's choice: meant for small problems (the
  /// velocity never forms it).
  void posterior_weights(Scalar t, const batch_type& X, weights_type& W) const {
    engine_.weights([this, t](Eigen::Index) { return derived().params(t); }, X, W);
  }

  /// Posterior weights (size() x B), returned.
  [[nodiscard]] weights_type posterior_weights(Scalar t, const batch_type& X) const {
    weights_type W;
    posterior_weights(t, X, W);
    return W;
  }

  /// Log density `log p_t(x)` of the probability path at every column of X.
  [[nodiscard]] values_type log_density(Scalar t, const batch_type& X) const {
    values_type out(X.cols());
    const Scalar shift = derived().log_density_shift(t);
    stream([t](Eigen::Index) { return t; }, X, {false, false},
           [&](Eigen::Index j, const detail::posterior_column<Scalar>& c) {
             out(j) = c.log_sum + shift;
           });
    return out;
  }

  /// Exact divergence of the velocity, `D(j) = div v(X.col(j), t)`; D is resized to
  /// X.cols(). (kinflow::divergence_field.)
  void divergence(Scalar t, const batch_type& X, values_type& D) const {
    derived().divergence_impl([t](Eigen::Index) { return t; }, X, D);
  }

  /// Exact divergence with one time per column: `D(j) = div v(X.col(j), T(j))`.
  /// (kinflow::per_column_time_divergence_field.)
  void divergence_at_times(const sample_times<Scalar>& T, const batch_type& X, values_type& D) const {
    detail::require_dimension("number of times T (one per column of X)", T.size(), X.cols());
    derived().divergence_impl([&T](Eigen::Index j) { return T(j); }, X, D);
  }

  /// Exact divergence of every column of X at time t, returned.
  [[nodiscard]] values_type divergence(Scalar t, const batch_type& X) const {
    values_type D;
    divergence(t, X, D);
    return D;
  }

  /// Velocity and exact divergence together, `V.col(j) = v(X.col(j), t)` and
  /// `D(j) = div v(X.col(j), t)`, in one pass over the points where the field's divergence
  /// is a posterior trace (docs/math.md, "The divergence in the velocity's pass"): what a
  /// solve carrying the log-likelihood calls at each stage. D has the bits of divergence();
  /// V agrees with operator() up to rounding. V may be X.
  void velocity_and_divergence(Scalar t, const batch_type& X, batch_type& V, values_type& D) const {
    velocity_divergence_impl([t](Eigen::Index) { return t; }, X, V, D);
  }

  /// Velocity and exact divergence with one time per column (see velocity_and_divergence).
  void velocity_and_divergence_at_times(const sample_times<Scalar>& T, const batch_type& X,
                                        batch_type& V, values_type& D) const {
    detail::require_dimension("number of times T (one per column of X)", T.size(), X.cols());
    velocity_divergence_impl([&T](Eigen::Index j) { return T(j); }, X, V, D);
  }

  /// The partial posterior state of every column of X at time t over this field's points,
  /// gathering @p request (the mean for velocity_from). Merge it with the states of the
  /// same batch over other points (posterior_state::merge), then finish it with the
  /// field of all the points.
  [[nodiscard]] state_type partial_state(Scalar t, const batch_type& X,
                                         posterior_request request = {true, false}) const {
    state_type out;
    engine_.accumulate([this, t](Eigen::Index) { return derived().params(t); }, X, request, out);
    return out;
  }

  /// The partial posterior state with one time per column: query j is `X.col(j)` at time
  /// `T(j)` (the states behind velocity_at_times and divergence_at_times).
  /// @throws kinflow::dimension_mismatch unless T has one entry per column of X.
  [[nodiscard]] state_type partial_state_at_times(const sample_times<Scalar>& T, const batch_type& X,
                                                  posterior_request request = {true, false}) const {
    detail::require_dimension("number of times T (one per column of X)", T.size(), X.cols());
    state_type out;
    engine_.accumulate([this, &T](Eigen::Index j) { return derived().params(T(j)); }, X, request,
                       out);
    return out;
  }

  /// Velocity at time t of every column of X from the posterior state @p state of X (this
  /// field's finishing step; the state may merge several subsets of the points).
  /// @throws kinflow::dimension_mismatch when the state's dimension or queries differ from
  ///         X's; kinflow::invalid_argument when the state lacks the mean.
  void velocity_from(Scalar t, const batch_type& X, const state_type& state, batch_type& V) const {
    velocity_from_impl([t](Eigen::Index) { return t; }, X, state, V);
  }

  /// Velocity with one time per column, `V.col(j)` at time `T(j)`, from the posterior state
  /// @p state of X (see velocity_from).
  void velocity_from_at_times(const sample_times<Scalar>& T, const batch_type& X, const state_type& state,
                              batch_type& V) const {
    detail::require_dimension("number of times T (one per column of X)", T.size(), X.cols());
    velocity_from_impl([&T](Eigen::Index j) { return T(j); }, X, state, V);
  }

  /// Log density at time t from the posterior state @p state (this field's finishing step:
  /// its normalisation, e.g. the number of training points N, is this field's).
  [[nodiscard]] values_type log_density_from(Scalar t, const state_type& state) const {
    detail::require_dimension("dimension of the posterior state", state.dim(), dim());
    values_type out(state.size());
    const Scalar shift = derived().log_density_shift(t);
    for (Eigen::Index j = 0; j < state.size(); ++j) out(j) = state.log_sum(j) + shift;
    return out;
  }

  /// Exact divergence at time t from the posterior state @p state (this field's finishing
  /// step, from the trace of the posterior covariance; the state may merge several subsets
  /// of the points).
  /// @throws kinflow::dimension_mismatch when the state's dimension differs from the
  ///         field's; kinflow::invalid_argument when the state lacks the trace.
  [[nodiscard]] values_type divergence_from(Scalar t, const state_type& state) const {
    return divergence_from_impl([t](Eigen::Index) { return t; }, state);
  }

  /// Exact divergence with one time per query, query j at time `T(j)`, from the posterior
  /// state @p state (see divergence_from).
  [[nodiscard]] values_type divergence_from_at_times(const sample_times<Scalar>& T, const state_type& state) const {
    detail::require_dimension("number of times T (one per query of the state)", T.size(), state.size());
    return divergence_from_impl([&T](Eigen::Index j) { return T(j); }, state);
  }

protected:
  /// Takes the engine.
  explicit closed_form_field(posterior_engine<Scalar, Dim> engine) : engine_(std::move(engine)) {}

  /// Streams X with the parameters of each column's time `time_of(j)`.
  template <class TimeOf, class Finish>
  void stream(const TimeOf& time_of, const batch_type& X, posterior_request request,
              const Finish& finish) const {
    engine_.stream([&](Eigen::Index j) { return derived().params(time_of(j)); }, X, request, finish);
  }

  /// The engine of the field's points.
  posterior_engine<Scalar, Dim> engine_;

private:
  [[nodiscard]] const Derived& derived() const noexcept { return static_cast<const Derived&>(*this); }

  template <class TimeOf>
  void velocity_from_impl(const TimeOf& time_of, const batch_type& X, const state_type& state,
                          batch_type& V) const {
    engine_.check(X);
    detail::require_dimension("dimension of the posterior state", state.dim(), dim());
    detail::require_dimension("queries of the posterior state (one per column of X)",
                              state.size(), X.cols());
    detail::require(state.request().mean, "posterior state request.mean", state.request().mean,
                    "expected a state gathered with request.mean = true");
    V.resize(X.rows(), X.cols());
    posterior_engine<Scalar, Dim>::finish_state(
        state, [&](Eigen::Index j, const detail::posterior_column<Scalar>& c) {
          auto v = V.col(j);
          derived().finish_velocity(time_of(j), X.col(j), c, v);
        });
  }

  template <class TimeOf>
  [[nodiscard]] values_type divergence_from_impl(const TimeOf& time_of, const state_type& state) const {
    detail::require_dimension("dimension of the posterior state", state.dim(), dim());
    detail::require(state.request().trace, "posterior state request.trace", state.request().trace,
                    "expected a state gathered with request.trace = true");
    values_type out(state.size());
    posterior_engine<Scalar, Dim>::finish_state(
        state, [&](Eigen::Index j, const detail::posterior_column<Scalar>& c) {
          out(j) = derived().finish_divergence(time_of(j), c);
        });
    return out;
  }

  /// One stream gathering the mean and the trace when the field finishes its divergence from
  /// the trace (`finish_divergence`); the divergence first, then the velocity, otherwise.
  template <class TimeOf>
  void velocity_divergence_impl(const TimeOf& time_of, const batch_type& X, batch_type& V,
                                values_type& D) const {
    if (!derived().divergence_in_stream()) {
      derived().divergence_impl(time_of, X, D);  // before V, which may be X, is written
      velocity_impl(time_of, X, V);
      return;
    }
    engine_.check(X);
    V.resize(X.rows(), X.cols());
    D.resize(X.cols());
    stream(time_of, X, {true, true}, [&](Eigen::Index j, const detail::posterior_column<Scalar>& c) {
      const Scalar t = time_of(j);
      D(j) = derived().finish_divergence(t, c);
      auto v = V.col(j);
      derived().finish_velocity(t, X.col(j), c, v);
    });
  }

  template <class TimeOf>
  void velocity_impl(const TimeOf& time_of, const batch_type& X, batch_type& V) const {
    engine_.check(X);
    V.resize(X.rows(), X.cols());
    stream(time_of, X, {true, false},
           [&](Eigen::Index j, const detail::posterior_column<Scalar>& c) {
             auto v = V.col(j);
             derived().finish_velocity(time_of(j), X.col(j), c, v);
           });
  }
};

}  // namespace kinflow
