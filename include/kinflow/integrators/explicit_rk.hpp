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
#include <array>
#include <cmath>
#include <cstddef>
#include <type_traits>
#include <utility>

#include "kinflow/core/batch.hpp"
#include "kinflow/core/concepts.hpp"
#include "kinflow/core/errors.hpp"
#include "kinflow/core/field_evaluator.hpp"
#include "kinflow/detail/rk_combine.hpp"
#include "kinflow/energy/kpe.hpp"
#include "kinflow/integrators/result.hpp"
#include "kinflow/integrators/tableau.hpp"
#include "kinflow/schedules/time_grid.hpp"

namespace kinflow {

/// Options of fixed-grid integration.
struct fixed_step_options {
  kpe_options kpe{};  ///< kinetic path energy accumulation
};

/// What an observer of a fixed-grid solve sees after each step over `[t, t + dt]`.
template <class Scalar, int Dim, std::size_t S>
struct fixed_step_view {
  std::size_t step;                          ///< index n of the step `[t_n, t_{n+1}]`
  Scalar t;                                  ///< `t_n`, the step's start
  Scalar dt;                                 ///< `t_{n+1} - t_n` (negative when backward)
  const batch<Scalar, Dim>& x;               ///< the state at `t_{n+1}` (already updated)
  const std::array<batch<Scalar, Dim>, S>& k;  ///< stage velocities `k_j` of this step
  const butcher_tableau<S>& method;          ///< the method (for its weights `b` and nodes `c`)
};

/// The default observer: observes nothing, costs nothing.
struct no_observer {};

namespace detail {
template <class Obs, class View>
inline constexpr bool is_active_observer =
    !std::is_same_v<std::remove_cvref_t<Obs>, no_observer>;

template <class Obs, class View>
concept observer_of = std::is_same_v<std::remove_cvref_t<Obs>, no_observer> ||
                      std::invocable<Obs&, const View&>;
}  // namespace detail

/// Integrates `dx/dt = v(t, x)` over the grid with an explicit Runge–Kutta method,
/// stepping the batch `X` (d x B, one column per sample) in place.
///
/// Each step costs `S` field evaluations for the whole batch (NFE per sample = S·N).
/// The kinetic path energy is accumulated from the stages (see kinflow/energy/kpe.hpp).
/// The observer, when given, is called after every step with a fixed_step_view.
/// No heap allocation happens inside a step once the work buffers are set up.
///
/// A sample whose state is not finite at the end (e.g. it started with NaN) gets
/// solve_status::non_finite; the others are unaffected.
///
/// @throws kinflow::invalid_argument for invalid options,
///         kinflow::dimension_mismatch when the field's output does not match `X`.
template <class Field, class Scalar, int Dim, std::size_t S, class GridScalar,
          class Observer = no_observer>
  requires velocity_field<std::remove_reference_t<Field>, Scalar, Dim> &&
           detail::observer_of<Observer, fixed_step_view<Scalar, Dim, S>>
solve_result<Scalar> integrate(Field&& field, const butcher_tableau<S>& method,
                               const time_grid<GridScalar>& grid, batch<Scalar, Dim>& X,
                               const fixed_step_options& options = {},
                               Observer&& observer = {}) {
  using batch_type = batch<Scalar, Dim>;
  using field_type = std::remove_reference_t<Field>;
  const Eigen::Index d = X.rows(), B = X.cols();
  const std::size_t N = grid.steps();

  field_evaluator<field_type, Scalar, Dim> eval(field, d);
  detail::kpe_accumulator<Scalar> kpe(options.kpe, B, N);

  std::array<batch_type, S> k;
  for (auto& kj : k) kj.resize(d, B);
  batch_type stage_state;
  if constexpr (S > 1) stage_state.resize(d, B);

  for (std::size_t n = 0; n < N; ++n) {
    const auto t = static_cast<Scalar>(grid[n]);
    const auto t_next = static_cast<Scalar>(grid[n + 1]);
    const Scalar h = t_next - t;
    eval(t + static_cast<Scalar>(method.c[0]) * h, X, k[0]);
    for (std::size_t j = 1; j < S; ++j) {
      const auto terms = detail::nonzero_terms<Scalar, S>(method.a[j], j, h);
      detail::combine(stage_state, X, k, terms);
      eval(t + static_cast<Scalar>(method.c[j]) * h, stage_state, k[j]);
    }
    detail::combine(X, X, k, detail::nonzero_terms<Scalar, S>(method.b, S, h));
    kpe.add_step(n, t, t_next, k, method.b);
    if constexpr (detail::is_active_observer<Observer, void>)
      observer(fixed_step_view<Scalar, Dim, S>{n, t, h, X, k, method});
  }

  solve_result<Scalar> result;
  result.status.assign(static_cast<std::size_t>(B), solve_status::success);
  result.nfe.setConstant(B, static_cast<std::int64_t>(S * N));
  result.accepted.setConstant(B, static_cast<std::int64_t>(N));
  result.rejected.setZero(B);
  if (kpe.enabled()) result.kpe = std::move(kpe.result());
  for (Eigen::Index i = 0; i < B; ++i) {
    bool finite = X.col(i).allFinite();
    if (kpe.enabled()) finite = finite && std::isfinite(result.kpe.total(i));
    if (!finite) result.status[static_cast<std::size_t>(i)] = solve_status::non_finite;
  }
  return result;
}

/// Readable diagnostic for a callable that is not a velocity field.
template <class Field, class Scalar, int Dim, std::size_t S, class GridScalar,
          class Observer = no_observer>
  requires(!velocity_field<std::remove_reference_t<Field>, Scalar, Dim>)
solve_result<Scalar> integrate(Field&&, const butcher_tableau<S>&, const time_grid<GridScalar>&,
                               batch<Scalar, Dim>&, const fixed_step_options& = {},
                               Observer&& = {}) {
  static_assert(velocity_field<std::remove_reference_t<Field>, Scalar, Dim>,
                "kinflow::integrate: the field is not a velocity field. It must be callable as "
                "v(t, x) -> Eigen vector (per sample) or v(t, X, V) (batched), with t the "
                "state's scalar type; see kinflow/core/concepts.hpp");
  return {};
}

}  // namespace kinflow
