#pragma once
/// @file
/// @brief Adaptive embedded Runge–Kutta integration (Dormand–Prince 5(4) by default) with
/// one step size, status and counter set per sample.
///
/// Each sample keeps its own time, step size, controller memory and counters: a hard
/// sample never shrinks an easy sample's steps. Every round, all unfinished samples attempt
/// one step of their own size through the step kernel (kinflow/integrators/kernels/rk_step.hpp);
/// the field is called once per stage on the batch of unfinished samples (with one time
/// per column when the field offers `velocity_at_times`, see concepts.hpp, and column by
/// column otherwise).
///
/// Error control (per sample i, over its d coordinates):
///     err_i = sqrt( mean_r ( e_r / (atol + rtol·max(|x_r|, |x̃_r|)) )² )
/// with `e = h Σ (b_j - b̂_j) k_j`; the step is accepted when `err_i <= 1`. The next step
/// is the tried one times the controller's factor (kinflow/integrators/controller.hpp:
/// the I controller by default, `safety·err^(-1/(q̂+1))` clamped to
/// `[factor_min, factor_max]` and not above 1 after a rejection; or the PI controller),
/// capped at `dt_max`. The first step follows Hairer, Nørsett & Wanner, Solving ODEs I,
/// §II.4 (one extra evaluation per sample).
///
/// Integrals along the path — the kinetic path energy, the log-likelihood, a user's own
/// (kinflow::along) — get the accepted steps of the state (kinflow/integrators/quadrature.hpp).
///
/// Failure is a per-sample solve_status, never an exception mid-solve (a user's controller
/// that returns a step factor that is not finite and positive is a programming error, and
/// raises kinflow::invalid_argument).

#include <Eigen/Core>
#include <cmath>
#include <cstddef>
#include <optional>
#include <type_traits>
#include <utility>

#include "kinflow/core/batch.hpp"
#include "kinflow/core/concepts.hpp"
#include "kinflow/core/errors.hpp"
#include "kinflow/core/field_evaluator.hpp"
#include "kinflow/detail/batch_callable.hpp"
#include "kinflow/integrators/adaptive_options.hpp"
#include "kinflow/integrators/controller.hpp"
#include "kinflow/integrators/detail/adaptive_loop.hpp"
#include "kinflow/integrators/detail/solve_core.hpp"
#include "kinflow/integrators/detail/solve_extras.hpp"
#include "kinflow/integrators/likelihood.hpp"
#include "kinflow/integrators/quadrature.hpp"
#include "kinflow/integrators/result.hpp"
#include "kinflow/integrators/tableau.hpp"

namespace kinflow {


/// Integrates `dx/dt = v(t, x)` from `t0` to `t1` (either direction) with an adaptive
/// embedded Runge–Kutta pair (kinflow::dopri5, kinflow::tsit5, kinflow::bs32), stepping the
/// batch `X` (d x B) in place with per-sample step-size control. See the file comment.
///
/// After `options`, any of these may follow, in any order, each at most once:
///  - a step-size controller (kinflow::i_controller, kinflow::pi_controller or a user's
///    own, see kinflow::step_size_controller); default: the I controller with
///    `options.safety`, `options.factor_min` and `options.factor_max`;
///  - integrals along the path, `kinflow::along(g…)` (kinflow/integrators/quadrature.hpp),
///    returned in `solve_result::integrals`;
///  - an observer, called after every accepted step of every sample with an
///    adaptive_step_view.
///
/// NFE per sample counts every field evaluation spent on it: the first-stage evaluation,
/// the initial-step heuristic's one, and S-1 per attempted step for FSAL methods (S
/// otherwise), plus what the integrands cost in evaluations.
///
/// @code
///   auto r = kinflow::integrate_adaptive(field, kinflow::dopri5, 0.0, 1.0, X, {},
///                                        kinflow::pi_controller{});
/// @endcode
///
/// @throws kinflow::invalid_argument for invalid options or times,
///         kinflow::dimension_mismatch when the field's output does not match `X`.
template <class Field, class Scalar, int Dim, std::size_t S, class... Extras>
  requires velocity_field<std::remove_reference_t<Field>, Scalar, Dim>
solve_result<Scalar> integrate_adaptive(Field&& field, const embedded_tableau<S>& method,
                                        double t0, double t1, batch<Scalar, Dim>& X,
                                        const adaptive_options& options = {},
                                        Extras&&... extras) {
  detail::check_adaptive_extras<Scalar, Dim, S, Extras...>();
  detail::validate(options);
  detail::require(std::isfinite(t0), "t0", t0, "expected a finite time");
  detail::require(std::isfinite(t1) && t1 != t0, "t1", t1, "expected a finite time != t0");

  const i_controller default_controller{options.safety, options.factor_min, options.factor_max};
  const path_integrals<> no_integrals{};
  no_observer none;
  const auto& controller = detail::extra_or<detail::extra_kind::controller>(default_controller, extras...);
  const auto& integrals = detail::extra_or<detail::extra_kind::integrals>(no_integrals, extras...);
  auto& observer = detail::extra_or<detail::extra_kind::observer>(none, extras...);
  using controller_type = std::remove_cvref_t<decltype(controller)>;
  detail::validate_controller(controller);

  detail::solve_core<std::remove_reference_t<Field>, Scalar, Dim, std::remove_cvref_t<decltype(integrals)>> core(
      field, t0, t1, detail::per_sample_steps, X, options.kpe, options.likelihood, integrals);
  return core.finish(X, detail::adaptive_solve<Scalar, Dim, S, controller_type>(
                            core.velocity(), core.switch_time(), method, t0, t1, X, options, controller, core.channels,
                            detail::observer_ref<adaptive_step_view<Scalar, Dim, S>>(observer)));
}

/// Readable diagnostic for a callable that is not a velocity field.
template <class Field, class Scalar, int Dim, std::size_t S, class... Extras>
  requires(!velocity_field<std::remove_reference_t<Field>, Scalar, Dim>)
solve_result<Scalar> integrate_adaptive(Field&&, const embedded_tableau<S>&, double, double,
                                        batch<Scalar, Dim>&, const adaptive_options& = {},
                                        Extras&&...) {
  static_assert(velocity_field<std::remove_reference_t<Field>, Scalar, Dim>,
                "kinflow::integrate_adaptive: the field is not a velocity field. It must be "
                "callable as v(t, x) -> Eigen vector (per sample) or v(t, X, V) (batched), with "
                "t the state's scalar type; see kinflow/core/concepts.hpp");
  return {};
}

}  // namespace kinflow
