#pragma once
/// @file
/// @brief The model log-likelihood of every sample, from the same solve that samples it
/// (the instantaneous change of variables, carried beside the state like the KPE).
///
/// For `dx/dt = ṽ(x, t)` from `x(0) ~ N(0, I)`, the density at the end point is
///
///     log p₁(x(1)) = log N(x(0); 0, I) − ∫₀¹ div ṽ(x(t), t) dt,
///     log N(x; 0, I) = −½‖x‖² − (d/2) log 2π          (natural log),
///
/// with `div ṽ = η(t) div v` for a field shaped by a KTS gain. The integral is one of the
/// integrals along the path (kinflow/integrators/quadrature.hpp): its integrand is the
/// divergence at every stage, `L += h Σ_j b_j div ṽ(stage_j)`, so it converges at the
/// integrator's order and costs no evaluation of the velocity when the field has an exact
/// divergence (the empirical and Gaussian-mixture fields, `mlp_field`, and fields shaped from
/// them). Where the field computes both in one pass (kinflow::velocity_divergence_field:
/// the closed-form fields), each stage's velocity evaluation brings its divergence along. Other fields get Hutchinson's estimate (2·probes evaluations per stage and sample;
/// see kinflow/fields/divergence.hpp for its bias and variance), counted in the NFE.
///
/// A sample whose solve stops early (max_steps_reached, dt_underflow) gets NaN, not the
/// value of a partial integral; a non-finite one gets what its arithmetic gave (not finite).
/// Hutchinson's probes are drawn per call, in column order, so a sample's estimate depends
/// on the batch it is solved in (the seed makes a run reproducible).
///
/// Forward (t from 0 to 1): the samples' log-likelihood under the model. Backward (t from
/// 1 to 0, e.g. a reversed grid): start from given data points `x₁` and get their
/// likelihood, `log p₁(x₁) = log N(x(0); 0, I) + ∫₁⁰ div ṽ dt`.
///
/// @code
///   kinflow::fixed_step_options opt;
///   opt.likelihood.enabled = true;
///   auto r = kinflow::integrate(field, kinflow::rk4, grid, X, opt);
///   r.log_likelihood;   // one value per sample, natural log
/// @endcode

#include <Eigen/Core>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>
#include <optional>

#include "kinflow/core/batch.hpp"
#include "kinflow/core/errors.hpp"
#include "kinflow/detail/batch_callable.hpp"
#include "kinflow/fields/divergence.hpp"
#include "kinflow/integrators/result.hpp"

namespace kinflow {

/// Options of the log-likelihood carried by a solve.
struct likelihood_options {
  bool enabled = false;  ///< carry the log-likelihood (solves between t = 0 and t = 1 only)
  /// Where the divergence comes from: the field's exact one when it has one (automatic,
  /// the default), or Hutchinson's estimate with its probes and seed.
  divergence_options divergence{};
  /// Adaptive solves: include the log-likelihood's local error in the error norm, so its
  /// accuracy is controlled like the state's (a sample whose path is easy to integrate,
  /// e.g. a straight line, may still have a divergence that is not). Applies to exact
  /// divergences only: a Hutchinson estimate's probe noise would drive the steps down, so
  /// with it the steps are those of the state alone.
  bool in_error_norm = true;
};

namespace detail {

/// The log-likelihood's integrand: the divergence of the field at every stage, through a
/// reference of one type whatever the field's (see kinflow/detail/batch_callable.hpp).
template <class Scalar, int Dim>
struct divergence_integrand {
  batched_divergence_ref<Scalar, Dim> divergence;

  void operator()(const sample_times<Scalar>& T, const batch<Scalar, Dim>& X, const batch<Scalar, Dim>&,
                  per_sample<Scalar>& G) const {
    divergence(T, X, G);
  }
};

/// Checks that a solve from `t0` to `t1` can carry the log-likelihood.
inline void require_likelihood_span(double t0, double t1) {
  const bool forward = t0 == 0 && t1 == 1, backward = t0 == 1 && t1 == 0;
  require(forward || backward, "likelihood.enabled", "true",
          "expected a solve from t = 0 to t = 1 or from t = 1 to t = 0 (the solve runs from t = " +
              to_text(t0) + " to t = " + to_text(t1) + ")");
}

/// `log N(x; 0, I)` of every column.
template <class Scalar, int Dim>
per_sample<Scalar> standard_normal_log_density(const batch<Scalar, Dim>& X) {
  const Scalar shift = Scalar(0.5) * static_cast<Scalar>(X.rows()) * std::log(Scalar(2) * std::numbers::pi_v<Scalar>);
  return (Scalar(-0.5) * X.colwise().squaredNorm().transpose()).array() - shift;
}

/// Sets up the likelihood's channel for `field`: the divergence evaluator in `evaluator`
/// (which must outlive the solve), the cost per evaluation, the error norm.
template <class Channel, class Field, class Scalar, int Dim>
void enable_likelihood(Channel& channel, std::optional<divergence_evaluator<Field, Scalar, Dim>>& evaluator,
                       Field& field, Eigen::Index d, const likelihood_options& o) {
  auto& e = evaluator.emplace(field, d, o.divergence);
  channel.enabled = true;
  channel.integrand.divergence = batched_divergence_ref<Scalar, Dim>(e);
  channel.cost = e.evaluations_per_sample();
  channel.in_error = o.in_error_norm && e.is_exact();
}

/// The velocity a solve evaluates at its stages: with the likelihood on and a field that
/// computes velocity and divergence in one pass (kinflow::velocity_divergence_field), the
/// divergence evaluator's paired evaluation, which keeps the divergence for the stage's
/// integrand; `eval` otherwise.
template <class Evaluator, class Field, class Scalar, int Dim>
batched_velocity_ref<Scalar, Dim> stage_velocity(Evaluator& eval,
                                                 std::optional<divergence_evaluator<Field, Scalar, Dim>>& divergence) {
  if constexpr (velocity_divergence_field<Field, Scalar, Dim>)
    if (divergence && divergence->paired() != nullptr)
      return batched_velocity_ref<Scalar, Dim>(*divergence->paired());
  return batched_velocity_ref<Scalar, Dim>(eval);
}

/// `log_likelihood = log N(x(0)) − ∫₀¹ div` from the channel's integral: forward, `log_n0`
/// holds `log N(x(0))` of the starting points; backward, `X` now holds `x(0)`.
template <class Channel, class Scalar, int Dim>
void finish_likelihood(const Channel& channel, bool forward, const per_sample<Scalar>& log_n0,
                       const batch<Scalar, Dim>& X, solve_result<Scalar>& res) {
  if (forward)
    res.log_likelihood = log_n0 - channel.value;
  else
    res.log_likelihood = standard_normal_log_density(X) + channel.value;
  // A sample that did not reach the end has no likelihood (its partial integral would read
  // as one).
  for (Eigen::Index i = 0; i < res.log_likelihood.size(); ++i)
    if (res.status[static_cast<std::size_t>(i)] != solve_status::success &&
        res.status[static_cast<std::size_t>(i)] != solve_status::non_finite)
      res.log_likelihood(i) = std::numeric_limits<Scalar>::quiet_NaN();
}

}  // namespace detail
}  // namespace kinflow
