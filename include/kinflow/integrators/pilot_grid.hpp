#pragma once
/// @file
/// @brief Grids built from a pilot run of the field: acceleration-equidistributing grids, and
/// make_grid() for any grid_spec (analytic or pilot-based) given the field.
///
/// The acceleration grid places N steps so that each carries an equal share of
/// `∫ ‖dv/dt‖^γ dt` along the paths, the signal of the SharpEuler sampler: where the velocity
/// turns quickly, a fixed-step method makes its largest local error
/// (Euler's is `½h²‖dv/dt‖`). `dv/dt = ∂v/∂t + (∇v) v` is the total derivative along the path,
/// which the pilot sees as the change of the velocity between its consecutive grid points:
///
///     A_m = mean over samples of ‖v(x(s_{m+1}), s_{m+1}) − v(x(s_m), s_m)‖ = ∫ over [s_m, s_{m+1}] of ‖dv/dt‖ dt
///
/// (exact when dv/dt keeps its direction on the step, as on the Gaussian target of docs/math.md §3.4).
/// The velocities are the first stages `k_1 = v(x_m, s_m)` of the pilot's steps, so the pilot
/// costs no evaluation beyond its solve; the last pilot step, whose end velocity is not
/// evaluated, repeats the density of the one before (the field may be singular at t = 1).
/// The increments `A_m` go to the energy grid's builder energy_equidistributing_grid() with the
/// same smoothing, floor and exponent γ (so the sample mean of ‖dv/dt‖ is raised to γ).

#include <Eigen/Core>
#include <cstddef>
#include <type_traits>
#include <vector>

#include "kinflow/core/batch.hpp"
#include "kinflow/core/concepts.hpp"
#include "kinflow/core/errors.hpp"
#include "kinflow/integrators/energy_grid.hpp"
#include "kinflow/integrators/explicit_rk.hpp"
#include "kinflow/integrators/tableau.hpp"
#include "kinflow/schedules/grid_spec.hpp"
#include "kinflow/schedules/time_grid.hpp"

namespace kinflow {

/// Runs a pilot solve and returns the grid of `steps` steps on which every step carries an
/// equal share of `∫ ‖dv/dt‖^γ dt` (see the file comment; γ is `options.gamma`).
///
/// The pilot integrates a copy of `pilot_samples` with `method` on a uniform grid of
/// `options.pilot_steps` steps from `options.t0` to `options.t1`; samples whose solve or
/// velocity changes are not finite are left out. `options.quadrature` is not used. Pass the
/// field you will sample with (for KTS, the shaped field).
///
/// @throws kinflow::invalid_argument for invalid options, `pilot_steps < 2`, an empty pilot
///   batch, or when no pilot sample stays finite; kinflow::dimension_mismatch when the
///   field's output does not match the samples.
template <class Field, class Method, class Scalar, int Dim>
  requires velocity_field<std::remove_reference_t<Field>, Scalar, Dim>
[[nodiscard]] time_grid<double> pilot_acceleration_grid(Field&& field, const Method& method,
                                                        const batch<Scalar, Dim>& pilot_samples, std::size_t steps,
                                                        const energy_grid_options& options = {}) {
  const auto pilot = detail::pilot_grid_for(options, steps, pilot_samples, 2);
  const Eigen::Index B = pilot_samples.cols(), M = static_cast<Eigen::Index>(pilot.steps());
  Eigen::MatrixXd change(B, M);  // ‖Δv‖ per sample and pilot step
  batch<Scalar, Dim> previous;
  batch<Scalar, Dim> X = pilot_samples;
  const auto r = integrate(field, method, pilot, X, fixed_step_options{},
                           [&](const auto& view) {
                             // The velocity at the step's start: a Runge-Kutta step's first
                             // stage, a multistep step's evaluation.
                             const batch<Scalar, Dim>* first_stage = nullptr;
                             if constexpr (requires { view.v; })
                               first_stage = &view.v;
                             else
                               first_stage = &view.k[0];
                             const auto& k1 = *first_stage;
                             const auto m = static_cast<Eigen::Index>(view.step);
                             if (m > 0)
                               for (Eigen::Index i = 0; i < B; ++i)
                                 change(i, m - 1) = static_cast<double>((k1.col(i) - previous.col(i)).norm());
                             previous = k1;
                           });
  // The last pilot step: the density of the one before, scaled to its length.
  const double last = std::abs(pilot[pilot.steps()] - pilot[pilot.steps() - 1]);
  const double before = std::abs(pilot[pilot.steps() - 1] - pilot[pilot.steps() - 2]);
  change.col(M - 1) = change.col(M - 2) * (last / before);
  const Eigen::VectorXd profile = detail::mean_of_finite_samples(change, r.status);
  return energy_equidistributing_grid(pilot, profile, steps, options);
}

/// The grid a spec names, with `steps` steps from 0 to 1: the analytic ones by
/// make_grid(spec, steps), `energy` by pilot_energy_grid() and `acceleration` by
/// pilot_acceleration_grid(), their pilot run on `pilot_samples` with `method` and
/// `options` (whose `gamma` the spec's γ replaces).
/// @throws kinflow::invalid_argument as those builders do.
template <class Field, class Method, class Scalar, int Dim>
  requires velocity_field<std::remove_reference_t<Field>, Scalar, Dim>
[[nodiscard]] time_grid<double> make_grid(const grid_spec& spec, std::size_t steps, Field&& field,
                                          const Method& method, const batch<Scalar, Dim>& pilot_samples,
                                          energy_grid_options options = {}) {
  if (!spec.needs_pilot()) return make_grid<double>(spec, steps);
  options.gamma = spec.gamma;
  if (spec.kind == grid_kind::energy) return pilot_energy_grid(field, method, pilot_samples, steps, options);
  return pilot_acceleration_grid(field, method, pilot_samples, steps, options);
}

}  // namespace kinflow
