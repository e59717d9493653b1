#pragma once
/// @file
/// @brief Private: per_sample_kernel::automatic — which of the two per-sample kernels runs a
/// field faster, found out by timing both on a copy of the batch's first tile.
///
/// Whether a per-sample field vectorizes across samples (structure-of-arrays tiles, 4-7x
/// faster than the fused columns for fields written coordinate by coordinate) or runs its
/// own SIMD on the point (Eigen vector operations: the fused columns are 2-10x faster) is a
/// property of how the field is written and compiled, which no type trait can see. So the
/// automatic choice measures, as FFTW's planner does: both kernels integrate a copy of the
/// first tile over the first steps of the grid, twice each (the faster time of the two
/// counts, so that a first call's cold caches and a passing interrupt do not decide), and
/// the batch then runs with the faster kernel. The copies are thrown away: every sample of
/// the solve goes through one kernel. The two kernels agree to rounding, so results do not
/// depend on the choice beyond that (set fixed_step_options::kernel for bitwise repeatable
/// results across runs). Batches under 16 tiles are not worth the measurement and run the
/// fused columns.

#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <vector>

#include "kinflow/core/batch.hpp"
#include "kinflow/energy/kpe.hpp"
#include "kinflow/integrators/kernels/fused_columns.hpp"
#include "kinflow/integrators/kernels/soa_tiles.hpp"
#include "kinflow/integrators/tableau.hpp"
#include "kinflow/schedules/time_grid.hpp"

namespace kinflow::detail {

/// True when the structure-of-arrays tiles integrate `field` faster than the fused columns
/// (see the file comment). `kpe` and `left_riemann` are the solve's energy settings, so that
/// the timed work is the solve's own.
template <class Field, class Scalar, int Dim, std::size_t S, class GridScalar>
[[nodiscard]] bool structure_of_arrays_is_faster(Field& field, const butcher_tableau<S>& method,
                                                 const time_grid<GridScalar>& grid, const batch<Scalar, Dim>& X,
                                                 bool kpe, bool left_riemann) {
  constexpr Eigen::Index tile = soa_default_tile<Scalar, Dim>;
  if (X.cols() < 16 * tile) return false;
  const std::size_t steps = std::min<std::size_t>(grid.steps(), 8);
  const auto& times = grid.times();
  const time_grid<GridScalar> head(std::vector<GridScalar>(times.begin(), times.begin() + static_cast<std::ptrdiff_t>(steps) + 1));
  kpe_options energy;
  energy.enabled = kpe;
  energy.quadrature = left_riemann ? kpe_quadrature::left_riemann : kpe_quadrature::stage;
  const progress_callback none{};
  using clock = std::chrono::steady_clock;
  auto time = [](auto&& run) {
    const auto start = clock::now();
    run();
    return clock::now() - start;
  };
  clock::duration fused = clock::duration::max(), soa = clock::duration::max();
  for (int round = 0; round < 2; ++round) {
    batch<Scalar, Dim> A = X.leftCols(tile), B = A;
    kpe_accumulator<Scalar> ea(energy, default_kpe_tau, tile, steps), eb(energy, default_kpe_tau, tile, steps);
    fused = std::min(fused, time([&] { fused_fixed_steps(field, method, head, steps, A, ea, tile, none, steps); }));
    soa = std::min(soa, time([&] {
                      soa_fixed_steps(field, method, head, B, kpe, left_riemann, default_kpe_tau,
                                      kpe ? eb.early_values().data() : nullptr, kpe ? eb.late_values().data() : nullptr);
                    }));
  }
  return soa < fused;
}

}  // namespace kinflow::detail
