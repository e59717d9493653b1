#pragma once
/// @file
/// @brief Private: a Runge–Kutta fixed-grid solve of a per-sample field of fixed dimension on
/// one of the two per-sample kernels (the fused columns or the structure-of-arrays tiles,
/// the faster one by default: kernel_choice.hpp), then a last-step rule's Euler step.

#include <Eigen/Core>
#include <cstddef>
#include <vector>

#include "kinflow/core/batch.hpp"
#include "kinflow/energy/kpe.hpp"
#include "kinflow/integrators/fixed_grid.hpp"
#include "kinflow/integrators/kernels/fused_columns.hpp"
#include "kinflow/integrators/kernels/kernel_choice.hpp"
#include "kinflow/integrators/kernels/soa_tiles.hpp"
#include "kinflow/integrators/tableau.hpp"
#include "kinflow/schedules/time_grid.hpp"

namespace kinflow::detail {

/// All steps of `grid` on `X` with the per-sample kernel that `options.kernel` names (or the
/// faster one), the last one by Euler when `euler_last`; the energies go to `core`.
template <class Field, class Scalar, int Dim, std::size_t S, class GridScalar, class Core>
void per_sample_grid_steps(Field& field, const butcher_tableau<S>& method, const time_grid<GridScalar>& grid,
                           bool euler_last, batch<Scalar, Dim>& X, const fixed_step_options& options,
                           Eigen::Index cols, Core& core) {
  const std::size_t N = grid.steps(), steps = euler_last ? N - 1 : N;
  const bool kpe_on = core.kpe.enabled();
  const bool left = options.kpe.quadrature == kpe_quadrature::left_riemann;
  bool soa = false;
  if constexpr (soa_suited<Dim>) {
    if (options.kpe.profile == kpe_profile::none && steps > 0)
      soa = options.kernel == per_sample_kernel::structure_of_arrays ||
            (options.kernel == per_sample_kernel::automatic &&
             structure_of_arrays_is_faster(field, method, grid, X, kpe_on, left));
    if (soa) {
      const auto& times = grid.times();
      const time_grid<GridScalar> head =
          euler_last ? time_grid<GridScalar>(std::vector<GridScalar>(times.begin(), times.end() - 1)) : grid;
      soa_fixed_steps(field, method, head, X, kpe_on, left, core.tau(),
                      kpe_on ? core.kpe.early_values().data() : nullptr,
                      kpe_on ? core.kpe.late_values().data() : nullptr, &options.progress);
    }
  }
  if (!soa) fused_fixed_steps(field, method, grid, steps, X, core.kpe, cols, options.progress, N);
  if (euler_last) {
    batch<Scalar, Dim> V;
    euler_step(core.velocity(), static_cast<Scalar>(grid[N - 1]), static_cast<Scalar>(grid[N]), N - 1, X, V,
               Eigen::Index{0}, core.kpe, core.channels, core.extra_nfe);
    report_progress(options.progress, 1.0, 1.0);
  }
}

}  // namespace kinflow::detail
