#pragma once
/// @file
/// @brief Fixed-grid explicit Runge–Kutta integration of a batch, with the kinetic path
/// energy accumulated from the stage velocities.
///
/// @code
///   kinflow::batch<double, 2> X = ...;                       // x0, one column per sample
///   auto grid = kinflow::time_grid<>::uniform(100);          // t = 0 .. 1
///   auto r = kinflow::integrate(field, kinflow::rk4, grid, X); // X now holds x(1)
///   r.kpe.total;                                             // per-sample ½∫‖v‖²dt
/// @endcode

#include <Eigen/Core>
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <type_traits>
#include <utility>

#include "kinflow/core/batch.hpp"
#include "kinflow/core/concepts.hpp"
#include "kinflow/core/errors.hpp"
#include "kinflow/core/field_evaluator.hpp"
#include "kinflow/detail/batch_callable.hpp"
#include "kinflow/integrators/detail/solve_extras.hpp"
#include "kinflow/energy/kpe.hpp"
#include "kinflow/integrators/fixed_grid.hpp"
#include "kinflow/integrators/kernels/per_sample.hpp"
#include "kinflow/integrators/kernels/rk_step.hpp"
#include "kinflow/integrators/result.hpp"
#include "kinflow/integrators/tableau.hpp"
#include "kinflow/schedules/time_grid.hpp"

namespace kinflow {

namespace detail {

/// The Runge–Kutta step loop of the fixed-grid core: steps `[0, steps)` of the grid through
/// the step kernel, on the whole batch when observed or when `cols >= B`, else on tiles of
/// `cols` columns, each over all steps before the next; then, when `euler_last`, the last
/// step of the grid as an Euler step. The channels' stage sums go to the energy accumulator
/// and the integrals. `eval` evaluates the field and `observer` observes whatever their
/// types, so this is compiled once for all fields and observers.
template <class Scalar, int Dim, std::size_t S, class GridScalar, class Sums>
void rk_grid_steps(const batched_velocity_ref<Scalar, Dim>& eval, const butcher_tableau<S>& method,
                   const time_grid<GridScalar>& grid, bool euler_last, batch<Scalar, Dim>& X,
                   const fixed_step_options& options, Eigen::Index cols, Sums& core,
                   function_ref<void(const fixed_step_view<Scalar, Dim, S>&)> observer) {
  using batch_type = batch<Scalar, Dim>;
  const Eigen::Index d = X.rows(), B = X.cols();
  const std::size_t N = grid.steps(), steps = euler_last ? N - 1 : N;
  auto& channels = core.channels;
  rk_work<Scalar, Dim, S> work;
  const std::array<long double, S> no_error{};

  walk_tiles(X, cols, bool(observer), [&](batch_type& Xb, Eigen::Index first) {
    const Eigen::Index n = Xb.cols();
    work.resize(d, n);
    for (std::size_t step = 0; step < N; ++step) {
      const auto t = static_cast<Scalar>(grid[step]);
      const auto t_next = static_cast<Scalar>(grid[step + 1]);
      const Scalar h = t_next - t, habs = std::abs(h);
      if (step == steps) {  // the last step, by the last-step rule
        euler_step(eval, t, t_next, step, Xb, work.k[0], first, core.kpe, channels, core.extra_nfe);
      } else {
        for_each_in(channels, [&](auto& c) {
          if (c.enabled) c.step.start(n, false);
        });
        rk_step(eval, method, false, t, h, Xb, Xb, work, first_stage::evaluate,
                [&](std::size_t j, Scalar tj, const batch_type& Xj, const batch_type& Kj) {
                  for_each_in(channels, [&](auto& c) {
                    if (!c.enabled || !c.needs(method.b, no_error, j, false)) return;
                    c.evaluate(tj, Xj, Kj);
                    if (first == 0) core.extra_nfe += c.cost;
                    c.accumulate(c.weight(method.b, j), 0.0L, h, habs);
                  });
                });
        commit_step(core.kpe, channels, step, t, t_next, first, n);
      }
      if (observer) observer(fixed_step_view<Scalar, Dim, S>{step, t, h, X, work.k, method, step == steps});
      report_tile_progress(options.progress, first, n, step, N, B);
    }
  });
}

}  // namespace detail

/// Integrates `dx/dt = v(t, x)` over the grid with an explicit Runge–Kutta method,
/// stepping the batch `X` (d x B, one column per sample) in place.
///
/// Each step costs `S` field evaluations for the whole batch (NFE per sample = S·N; a
/// last-step rule makes the last step cost one). The kinetic path energy is accumulated
/// from the stages (see kinflow/energy/kpe.hpp). After `options`, either or both of these
/// may follow, in any order:
///  - integrals along the path, `kinflow::along(g…)` (kinflow/integrators/quadrature.hpp),
///    returned in `solve_result::integrals`;
///  - an observer, called after every step with a fixed_step_view.
/// No heap allocation happens inside a step once the work buffers are set up (per-sample
/// integrands excepted when they allocate themselves).
///
/// A sample whose state is not finite at the end (e.g. it started with NaN) gets
/// solve_status::non_finite; the others are unaffected.
///
/// @throws kinflow::invalid_argument for invalid options,
///         kinflow::dimension_mismatch when the field's output does not match `X`.
template <class Field, class Scalar, int Dim, std::size_t S, class GridScalar, class... Extras>
  requires velocity_field<std::remove_reference_t<Field>, Scalar, Dim>
solve_result<Scalar> integrate(Field&& field, const butcher_tableau<S>& method,
                               const time_grid<GridScalar>& grid, batch<Scalar, Dim>& X,
                               const fixed_step_options& options = {}, Extras&&... extras) {
  detail::check_fixed_grid_extras<Scalar, Dim, fixed_step_view<Scalar, Dim, S>, Extras...>();
  const path_integrals<> no_integrals{};
  no_observer none;
  const auto& integrals = detail::extra_or<detail::extra_kind::integrals>(no_integrals, extras...);
  auto& observer = detail::extra_or<detail::extra_kind::observer>(none, extras...);
  using Observer = decltype(observer);
  using field_type = std::remove_reference_t<Field>;
  const std::size_t N = grid.steps();
  detail::fixed_grid_core<field_type, Scalar, Dim, std::remove_cvref_t<decltype(integrals)>> core(
      field, grid, X, options, integrals);
  const bool euler_last = options.last_step != last_step_rule::method && S > 1;
  const Eigen::Index cols = detail::default_tile_columns<Scalar>(options.tile_columns, S + 2, X.rows());

  // Per-sample fields of fixed dimension without the likelihood run on the fused columns or
  // the structure-of-arrays tiles (kinflow/integrators/kernels/); everything else on the
  // general step loop.
  constexpr bool per_sample_field = Dim != Eigen::Dynamic && !batched_velocity_field<field_type, Scalar, Dim> &&
                                    !detail::is_active_observer<Observer> &&
                                    std::tuple_size_v<decltype(integrals.integrands)> == 0;
  bool done = false;
  if constexpr (per_sample_field) {
    if (!core.likelihood_enabled()) {
      detail::per_sample_grid_steps(field, method, grid, euler_last, X, options, cols, core);
      done = true;
    }
  }
  if (!done)
    detail::rk_grid_steps(core.velocity(), method, grid, euler_last, X, options, cols, core.sums(),
                          detail::observer_ref<fixed_step_view<Scalar, Dim, S>>(observer));
  const auto nfe = static_cast<std::int64_t>(euler_last ? S * (N - 1) + 1 : S * N);
  return core.finish(X, nfe, N);
}

/// Readable diagnostic for a callable that is not a velocity field.
template <class Field, class Scalar, int Dim, std::size_t S, class GridScalar, class... Extras>
  requires(!velocity_field<std::remove_reference_t<Field>, Scalar, Dim>)
solve_result<Scalar> integrate(Field&&, const butcher_tableau<S>&, const time_grid<GridScalar>&,
                               batch<Scalar, Dim>&, const fixed_step_options& = {}, Extras&&...) {
  static_assert(velocity_field<std::remove_reference_t<Field>, Scalar, Dim>,
                "kinflow::integrate: the field is not a velocity field. It must be callable as "
                "v(t, x) -> Eigen vector (per sample) or v(t, X, V) (batched), with t the "
                "state's scalar type; see kinflow/core/concepts.hpp");
  return {};
}

}  // namespace kinflow
