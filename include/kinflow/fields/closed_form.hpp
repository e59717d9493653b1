#pragma once
/// @file
/// @brief The closed-form posterior engine shared by kinflow::empirical_field and
/// kinflow::gaussian_mixture_field, and the interface those fields have in common
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

#include <Eigen/Core>

#include "kinflow/core/batch.hpp"
#include "kinflow/core/errors.hpp"
#include "kinflow/core/products.hpp"
#include "kinflow/detail/field_storage.hpp"
#include "kinflow/detail/gemm.hpp"
#include "kinflow/detail/posterior_block.hpp"
#include "kinflow/detail/posterior_kernels.hpp"
#include "kinflow/detail/posterior_plan.hpp"
#include "kinflow/detail/posterior_weights.hpp"
#include "kinflow/fields/posterior_state.hpp"

namespace kinflow {

/// How a closed-form field evaluates: memory, threads and products. The options of both
/// closed-form fields (kinflow::empirical_options, kinflow::gaussian_mixture_options) derive
/// from it, so these four members are declared here once and read `opt.threads` on either.
/// (A designated initializer names them inside the base's braces:
/// `empirical_options<double>{{.threads = 1}}`.)
struct closed_form_settings {
  /// Scratch memory one evaluation may allocate beyond its inputs and outputs, in bytes
  /// (at least 64 KiB). Default 32 MiB. Matrix-product packing buffers of Eigen (used for
  /// large d; a few hundred KiB, independent of N and B) come on top.
  std::size_t memory_budget = std::size_t{32} << 20;
  /// Worker threads: 0 = all hardware threads, 1 = the calling thread only.
  unsigned threads = 0;
  /// How squared distances are formed; see kinflow::distance_method.
  distance_method distances = distance_method::automatic;
  /// Which library computes the matrix products of the product-based distances (d ≥ 5);
  /// see kinflow::matrix_products.
  matrix_products products = matrix_products::automatic;
};

/// The closed-form posterior engine over a set of points `y_1 … y_n` (d x n), with optional
/// per-point log priors `log π_i` and variances `s_i²`: streams a batch of samples over the
/// points and hands each sample's posterior statistics to a finishing step.
///
/// Meant for field implementers; users call the fields. Evaluation is const and may run
/// concurrently from several threads.
///
/// @tparam Scalar float or double
/// @tparam Dim    d fixed at compile time or Eigen::Dynamic
template <class Scalar, int Dim = Eigen::Dynamic>
  requires real_scalar<Scalar>
class posterior_engine {
public:
  /// The batch type of samples and points.
  using batch_type = batch<Scalar, Dim>;
  /// Per-point values (log priors, variances).
  using vector_type = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;

  /// An engine over @p points (already checked by the field) with the settings @p settings.
  /// @throws kinflow::invalid_argument for a memory budget below 64 KiB or unavailable BLAS.
  posterior_engine(detail::field_points<Scalar, Dim> points, const closed_form_settings& settings)
      : y_(std::move(points)), settings_(settings) {
    detail::require(settings_.memory_budget >= (std::size_t{64} << 10), "memory_budget",
                    settings_.memory_budget, "expected at least 65536 bytes");
    blas_ = detail::resolve_products(settings_.products, "products");
    sq_norm_ = detail::column_sq_norms<Scalar, Dim>(y_.view());
    max_norm_ = std::sqrt(sq_norm_.maxCoeff());
  }

  /// Gives the points log priors @p log_prior (n entries, or empty when all are equal) and
  /// variances @p spread (n entries `s_i²`, or empty for one variance per sample).
  void set_point_parameters(vector_type log_prior, vector_type spread) {
    log_prior_ = std::move(log_prior);
    spread_ = std::move(spread);
    min_spread_ = spread_.size() == 0 ? Scalar(0) : spread_.minCoeff();
  }

  /// Dimension d.
  [[nodiscard]] Eigen::Index dim() const noexcept { return y_.rows(); }
  /// Number of points n.
  [[nodiscard]] Eigen::Index size() const noexcept { return y_.cols(); }
  /// The points (d x n).
  [[nodiscard]] Eigen::Map<const batch_type> points() const { return y_.view(); }
  /// True when the engine references the caller's matrix rather than a copy.
  [[nodiscard]] bool holds_reference() const noexcept { return y_.is_reference(); }
  /// The settings in use.
  [[nodiscard]] const closed_form_settings& settings() const noexcept { return settings_; }

  /// Throws kinflow::dimension_mismatch unless X has d rows.
  void check(const batch_type& X) const {
    detail::require_dimension("rows of the sample batch X (dimension d)", X.rows(), dim());
  }

  /// Streams every column of X over the points: `finish(j, column)` once per column, from
  /// worker threads, with the normalised statistics of @p request; `params(j)` gives column
  /// j's logit parameters. `finish` may write column j of an output that aliases X.
  template <class Params, class Finish>
  void stream(const Params& params, const batch_type& X, posterior_request request,
              const Finish& finish) const {
    const Eigen::Index d = dim();
    const bool mean = request.mean;
    run(params, X, request, [&](Eigen::Index j, const detail::posterior_raw<Scalar>& raw) {
      finish(j, detail::normalise(raw, d, mean));
    });
  }

  /// The partial state of every column of X over the points into @p out (resized).
  template <class Params>
  void accumulate(const Params& params, const batch_type& X, posterior_request request,
                  posterior_state<Scalar>& out) const {
    out = posterior_state<Scalar>(dim(), X.cols(), request);
    const Eigen::Index d = dim();
    run(params, X, request, [&](Eigen::Index j, const detail::posterior_raw<Scalar>& raw) {
      Scalar* r = out.record(j);
      r[0] = raw.max;
      r[1] = raw.sum;
      r[2] = raw.coef;
      r[3] = raw.m2;
      std::copy(raw.weighted, raw.weighted + d, r + posterior_state<Scalar>::header_size);
    });
  }

  /// Normalised statistics of every query of @p state: `finish(j, column)` in order.
  template <class Finish>
  static void finish_state(const posterior_state<Scalar>& state, const Finish& finish) {
    const Eigen::Index d = state.dim();
    Eigen::Matrix<Scalar, Eigen::Dynamic, 1> weighted(d);
    for (Eigen::Index j = 0; j < state.size(); ++j) {
      weighted = state.weighted_sum(j);
      const detail::posterior_raw<Scalar> raw{state.max_logit(j), state.weight_sum(j),
                                              state.coef_sum(j), state.deviation_sum(j),
                                              weighted.data()};
      finish(j, detail::normalise(raw, d, state.request().mean));
    }
  }

  /// The normalised posterior weights of every column of X into the n x B matrix @p W
  /// (resized), with direct distances.
  template <class Params>
  void weights(const Params& params, const batch_type& X,
               Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>& W) const {
    check(X);
    W.resize(size(), X.cols());
    detail::posterior_weight_matrix<Scalar, Dim>(view(), X, params, settings_.memory_budget,
                                                 settings_.threads, W);
  }

private:
  [[nodiscard]] detail::posterior_points<Scalar, Dim> view() const {
    return {y_.view(),
            sq_norm_.data(),
            max_norm_,
            log_prior_.size() == 0 ? nullptr : log_prior_.data(),
            spread_.size() == 0 ? nullptr : spread_.data(),
            spread_.size() == 0 ? Scalar(0) : min_spread_};
  }

  template <class Params, class Sink>
  void run(const Params& params, const batch_type& X, posterior_request request,
           const Sink& sink) const {
    check(X);
    auto plan = detail::make_posterior_plan<Scalar>(dim(), size(), X.cols(), settings_.memory_budget,
                                                    settings_.threads, settings_.distances,
                                                    request.trace);
    plan.blas = blas_;
    detail::posterior_stream<Scalar, Dim>(view(), X, params, request, plan, sink);
  }

  detail::field_points<Scalar, Dim> y_;
  closed_form_settings settings_;
  bool blas_ = false;  // products through BLAS (resolved from settings_.products)
  vector_type sq_norm_;
  Scalar max_norm_ = 0;
  vector_type log_prior_;  // empty when all priors are equal
  vector_type spread_;     // s_i², empty for one variance per sample
  Scalar min_spread_ = 0;
};

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
          derived().finish_velocity(t, X.col(j), c, v);
        });
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
    detail::require_dimension("dimension of the posterior state", state.dim(), dim());
    detail::require(state.request().trace, "posterior state request.trace", state.request().trace,
                    "expected a state gathered with request.trace = true");
    values_type out(state.size());
    posterior_engine<Scalar, Dim>::finish_state(
        state, [&](Eigen::Index j, const detail::posterior_column<Scalar>& c) {
          out(j) = derived().finish_divergence(t, c);
        });
    return out;
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
