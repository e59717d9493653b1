#pragma once
/// @file
/// @brief The fixed-grid solve core: options, what observers see, and the machinery every
/// fixed-grid method family shares (Runge–Kutta, kinflow/integrators/explicit_rk.hpp;
/// multistep, kinflow/integrators/multistep.hpp).
///
/// A fixed-grid solve walks the steps `[t_n, t_{n+1}]` of a kinflow::time_grid. The core
/// owns everything that is not the method: the integrals carried beside the state (the
/// kinetic path energy, the log-likelihood, a user's own: kinflow/integrators/quadrature.hpp),
/// the walk over column tiles (a tile over all steps before the next, so that its buffers
/// stay in cache), progress, the last-step rule, the counters and the statuses. A method
/// family supplies only its step loop. The core reaches the field through a batched
/// reference (kinflow/detail/batch_callable.hpp), so that it is compiled once per scalar
/// type, dimension and method, not once per field.

#include <Eigen/Core>
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "kinflow/core/batch.hpp"
#include "kinflow/core/batch_columns.hpp"
#include "kinflow/core/concepts.hpp"
#include "kinflow/core/errors.hpp"
#include "kinflow/core/field_evaluator.hpp"
#include "kinflow/detail/batch_callable.hpp"
#include "kinflow/integrators/detail/solve_core.hpp"
#include "kinflow/integrators/detail/solve_extras.hpp"
#include "kinflow/energy/kpe.hpp"
#include "kinflow/integrators/likelihood.hpp"
#include "kinflow/integrators/progress.hpp"
#include "kinflow/integrators/quadrature.hpp"
#include "kinflow/integrators/result.hpp"
#include "kinflow/integrators/tableau.hpp"
#include "kinflow/schedules/time_grid.hpp"

namespace kinflow {

/// How a per-sample field of fixed dimension is integrated on a grid by a Runge–Kutta
/// method (see fixed_step_options::kernel). Which one is faster depends on how the field is
/// written, which no type can tell; both give the same results up to rounding (bitwise
/// without FMA contraction).
enum class per_sample_kernel {
  /// The default: the faster of the two for this field, found by timing both on a copy of
  /// the batch's first tile over the grid's first steps (batches of at least 16 tiles,
  /// e.g. 8192 samples in d = 2, double; smaller ones run interleaved). The probe calls the
  /// field on those copies (evaluations not counted in the NFE) and is discarded; every
  /// sample goes through the one kernel chosen. Choose a kernel explicitly for results
  /// repeatable bit for bit across runs (the choice may differ between runs when the two
  /// are about as fast, and the kernels differ in rounding).
  automatic,
  /// Column by column, every stage of a sample in registers, reading the batch in place
  /// (kinflow/integrators/kernels/fused_columns.hpp). Right for every field, and the only
  /// fast one for fields written with Eigen vector operations on the point
  /// (`mu + g * (x - t * mu)`).
  interleaved,
  /// Tiles of samples transposed to one array per coordinate, all steps on a tile before
  /// the next, so that the compiler vectorizes the inlined field across samples
  /// (kinflow/integrators/kernels/soa_tiles.hpp). For fields written coordinate by
  /// coordinate (`return {a * x(0) + b, c * x(1)}`, no calls the compiler cannot inline):
  /// measured 4-7x faster than interleaved with AVX-512, within 1.25x of a hand-written
  /// structure-of-arrays loop (bench_integrators). A field written with Eigen vector
  /// operations runs 5-10x SLOWER this way. d ≤ 16 only (larger d runs interleaved).
  structure_of_arrays
};

/// How the last step of a fixed grid is taken (fixed_step_options::last_step).
///
/// Fields that are singular at t = 1 (the exact empirical field: `v = (m − x)/(1 − t)`)
/// make a method's stages at or near t = 1 meaningless; samplers for such fields land the
/// last step with one evaluation at its start (EDM's Heun sampler and ComfyUI's skip the
/// corrector there). On the linear path the denoiser jump from `t_{N−1}`,
/// `x₁ = x̂₁(x, t_{N−1}) = x + (1 − t_{N−1})·v(x, t_{N−1})`, IS the Euler step to t = 1:
/// with the exact empirical field it lands on the posterior mean `m(x, t_{N−1})`. The
/// two names differ for stochastic samplers (the Euler step there takes the drift only).
enum class last_step_rule {
  method,  ///< the method's own step (the default)
  euler,   ///< the last step is an Euler step (one evaluation at its start)
  denoise  ///< the denoiser jump `x̂₁(x, t_{N−1})`; the grid must end at t = 1
};

/// How a multistep solve (kinflow/integrators/multistep.hpp) gets the history its first
/// steps lack (fixed_step_options::multistep_start).
enum class multistep_start {
  /// As the published algorithms: the first steps run at the order their history allows
  /// (first order, then second, ...). N evaluations for N steps; the start's lower-order
  /// steps bound a third-order method's global error at O(h²).
  lower_order,
  /// The first `order − 1` steps are Runge–Kutta steps of the method's order (Heun for
  /// order 2, Kutta's third-order method for order 3), which keeps the method's global
  /// order; they cost `order − 1` more evaluations each.
  runge_kutta
};

/// Options of fixed-grid integration.
struct fixed_step_options {
  kpe_options kpe{};  ///< kinetic path energy accumulation
  /// Without an observer, the batch is integrated in tiles of this many
  /// columns, each tile over all steps before the next, so that the state and stage
  /// buffers stay in cache. Every column's arithmetic is the same whatever the tiling
  /// (Hutchinson's probes excepted: they are drawn per call, in column order);
  /// only the field sees smaller batches. 0 (default) picks tiles whose buffers take
  /// about 128 KiB but at least 4096 columns (so expensive fields still get large calls);
  /// a value >= B (or any observer) walks the whole batch step by step. (Per-sample fields
  /// of fixed dimension are moreover integrated column by column in one fused pass per
  /// step, all stages in registers, by Runge–Kutta methods.)
  Eigen::Index tile_columns = 0;
  /// Per-sample fields of fixed dimension (without observer, integrals, likelihood or KPE
  /// profile), Runge–Kutta methods: which kernel walks the samples. Both give the same
  /// results up to rounding (bitwise without FMA contraction).
  per_sample_kernel kernel = per_sample_kernel::automatic;
  /// How the last step of the grid is taken (see last_step_rule).
  last_step_rule last_step = last_step_rule::method;
  /// Multistep methods: how the first steps are taken (see multistep_start).
  multistep_start start = multistep_start::lower_order;
  /// The log-likelihood of every sample (kinflow/integrators/likelihood.hpp), off by default.
  likelihood_options likelihood{};
  /// Called with the share of the work done, after every step of every tile
  /// (kinflow/integrators/progress.hpp); a callback that throws stops the solve.
  progress_callback progress{};
};

/// What an observer of a Runge–Kutta fixed-grid solve sees after each step over `[t, t + dt]`.
template <class Scalar, int Dim, std::size_t S>
struct fixed_step_view {
  std::size_t step;                          ///< index n of the step `[t_n, t_{n+1}]`
  Scalar t;                                  ///< `t_n`, the step's start
  Scalar dt;                                 ///< `t_{n+1} - t_n` (negative when backward)
  const batch<Scalar, Dim>& x;               ///< the state at `t_{n+1}` (already updated)
  const std::array<batch<Scalar, Dim>, S>& k;  ///< stage velocities `k_j` of this step
  const butcher_tableau<S>& method;          ///< the method (for its weights `b` and nodes `c`)
  /// True for a step a last-step rule took with Euler: then `k[0]` is its one stage
  /// velocity, at `t`, and the other entries of `k` are not part of it.
  bool euler = false;
};

namespace detail {

/// The solve core (kinflow/integrators/detail/solve_core.hpp) of a fixed-grid front door:
/// from the grid's first to its last time over its steps, with the options' energy and
/// likelihood, once the fixed-grid options are checked.
template <class Field, class Scalar, int Dim, class Integrals>
class fixed_grid_core : public solve_core<Field, Scalar, Dim, Integrals> {
public:
  template <class GridScalar>
  fixed_grid_core(Field& field, const time_grid<GridScalar>& grid, const batch<Scalar, Dim>& X,
                  const fixed_step_options& options, const Integrals& integrals)
      : solve_core<Field, Scalar, Dim, Integrals>(field, static_cast<double>(grid[0]),
                                                  static_cast<double>(grid[grid.steps()]), grid.steps(), X,
                                                  options.kpe, options.likelihood, integrals) {
    require(options.tile_columns >= 0, "tile_columns", options.tile_columns,
            "expected >= 0 (0 selects the automatic tile)");
    if (options.last_step == last_step_rule::denoise)
      require(grid[grid.steps()] > grid[0] && grid[grid.steps()] == GridScalar(1), "last_step", "denoise",
              "expected a grid that ends at t = 1 (the denoiser jump lands there); this one ends at t = " +
                  to_text(static_cast<double>(grid[grid.steps()])));
  }
};

/// Compile-time checks of the trailing arguments of a fixed-grid front door (kinflow::integrate):
/// at most one kinflow::along(...) bundle of valid integrands and one observer of `View`,
/// no step-size controller.
template <class Scalar, int Dim, class View, class... Extras>
constexpr void check_fixed_grid_extras() {
  static_assert(count_kind<extra_kind::controller, Extras...> == 0,
                "kinflow::integrate: a step-size controller applies to integrate_adaptive; a "
                "fixed-grid solve walks its time grid");
  static_assert(count_kind<extra_kind::integrals, Extras...> <= 1,
                "kinflow::integrate: more than one kinflow::along(...) given; put every "
                "integrand into one");
  static_assert(count_kind<extra_kind::observer, Extras...> <= 1,
                "kinflow::integrate: more than one observer given (or an argument that is "
                "neither kinflow::along(...) nor an observer)");
  using integrals_type = std::remove_cvref_t<decltype(extra_or<extra_kind::integrals>(
      std::declval<const path_integrals<>&>(), std::declval<Extras>()...))>;
  using observer_type = decltype(extra_or<extra_kind::observer>(std::declval<no_observer&>(), std::declval<Extras>()...));
  static_assert(observer_of<observer_type, View>,
                "kinflow::integrate: a trailing argument is neither kinflow::along(...) nor an "
                "observer callable with the method's step view (kinflow::fixed_step_view for "
                "Runge-Kutta methods, kinflow::multistep_step_view for multistep ones)");
  static_assert(integrands_of<integrals_type, Scalar, Dim>,
                "kinflow::integrate: an integrand of kinflow::along is neither g(t, x, v) -> "
                "Scalar nor g(T, X, V, G); see kinflow/integrators/quadrature.hpp");
}

/// The default tile of a fixed-grid solve with `buffers` d x tile buffers: about 128 KiB,
/// but never fewer than 4096 columns per call (expensive batched fields, GEMM-based and
/// threaded, lose more to small calls than they gain from cache: measured,
/// bench_integrators and bench_odeint).
template <class Scalar>
[[nodiscard]] Eigen::Index default_tile_columns(Eigen::Index tile_columns, std::size_t buffers, Eigen::Index d) {
  if (tile_columns > 0) return tile_columns;
  const auto bytes_per_column = static_cast<Eigen::Index>(buffers * sizeof(Scalar)) * std::max<Eigen::Index>(d, 1);
  return std::max<Eigen::Index>(4096, (Eigen::Index(128) << 10) / bytes_per_column);
}

/// Runs `run(Xb, first)` over the batch: on `X` itself when `whole` (an observer sees the
/// batch) or `cols >= B`, else on copies of column tiles of `cols`, written back after.
template <class Scalar, int Dim, class Run>
void walk_tiles(batch<Scalar, Dim>& X, Eigen::Index cols, bool whole, Run&& run) {
  const Eigen::Index B = X.cols();
  if (whole || cols >= B) {
    run(X, Eigen::Index{0});
    return;
  }
  batch<Scalar, Dim> tile;
  for (Eigen::Index first = 0; first < B; first += cols) {
    const Eigen::Index width = std::min(cols, B - first);
    tile = X.middleCols(first, width);
    const batch_columns::scope columns(first);  // the field's columns are this tile's
    run(tile, first);
    X.middleCols(first, width) = tile;
  }
}

/// Commits one step's stage sums over the columns `[first, first + n)`: the energy's to
/// the accumulator (split early/late, profile), the likelihood's and the user's to their
/// values.
template <class Scalar, class Channels>
void commit_step(kpe_accumulator<Scalar>& kpe, Channels& channels, std::size_t step, Scalar t, Scalar t_next,
                 Eigen::Index first, Eigen::Index n) {
  if (kpe.enabled()) {
    kpe.increments().head(n) = std::get<0>(channels).step.sums();
    kpe.commit(step, t, t_next, first, n);
  }
  bool energy = true;  // the first channel, committed above
  for_each_in(channels, [&](auto& c) {
    if (std::exchange(energy, false)) return;
    if (c.enabled) c.value.segment(first, n) += c.step.sums();
  });
}

/// Reports the progress of a tiled walk: step `step` (0-based) of `N` done on the tile of
/// `n` columns from `first`, out of `B` columns.
inline void report_tile_progress(const progress_callback& progress, Eigen::Index first, Eigen::Index n,
                                 std::size_t step, std::size_t N, Eigen::Index B) {
  report_progress(progress,
                  static_cast<double>(first) * static_cast<double>(N) +
                      static_cast<double>(n) * static_cast<double>(step + 1),
                  static_cast<double>(B) * static_cast<double>(N));
}

/// One Euler step of the columns `Xb` (from column `first` of the batch) over
/// `[t, t_next]`, step `step` of the grid, with the integrals' left-point weights: what a
/// last-step rule takes. `V` receives the velocity.
template <class Scalar, int Dim, class Channels>
void euler_step(const batched_velocity_ref<Scalar, Dim>& eval, Scalar t, Scalar t_next, std::size_t step,
                batch<Scalar, Dim>& Xb, batch<Scalar, Dim>& V, Eigen::Index first, kpe_accumulator<Scalar>& kpe,
                Channels& channels, std::int64_t& extra_nfe) {
  const Eigen::Index n = Xb.cols();
  const Scalar h = t_next - t, habs = std::abs(h);
  V.resize(Xb.rows(), n);
  eval(t, Xb, V);
  for_each_in(channels, [&](auto& c) {
    if (!c.enabled) return;
    c.step.start(n, false);
    c.evaluate(t, Xb, V);
    if (first == 0) extra_nfe += c.cost;
    c.accumulate(1.0L, 0.0L, h, habs);
  });
  commit_step(kpe, channels, step, t, t_next, first, n);
  Xb += h * V;
}

}  // namespace detail
}  // namespace kinflow
