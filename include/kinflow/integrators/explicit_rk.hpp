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
#include "kinflow/detail/rk_combine.hpp"
#include "kinflow/integrators/solve_extras.hpp"
#include "kinflow/energy/kpe.hpp"
#include "kinflow/integrators/likelihood.hpp"
#include "kinflow/integrators/progress.hpp"
#include "kinflow/integrators/quadrature.hpp"
#include "kinflow/integrators/result.hpp"
#include "kinflow/integrators/rk_step.hpp"
#include "kinflow/integrators/soa_rk.hpp"
#include "kinflow/integrators/tableau.hpp"
#include "kinflow/schedules/time_grid.hpp"

namespace kinflow {

/// How a per-sample field of fixed dimension is integrated on a grid (see
/// fixed_step_options::kernel). Which one is faster depends on how the field is written,
/// which kinflow cannot see; both give the same results up to rounding (bitwise without FMA
/// contraction).
enum class per_sample_kernel {
  /// Column by column, every stage of a sample in registers, reading the batch in place
  /// (the default). Right for every field, and the only fast one for fields written with
  /// Eigen vector operations on the point (`mu + g * (x - t * mu)`).
  interleaved,
  /// Tiles of samples transposed to one array per coordinate, all steps on a tile before
  /// the next, so that the compiler vectorizes the inlined field across samples
  /// (kinflow/integrators/soa_rk.hpp). For fields written coordinate by coordinate
  /// (`return {a * x(0) + b, c * x(1)}`, no calls the compiler cannot inline): measured
  /// 4-7x faster than interleaved with AVX-512, within 1.25x of a hand-written
  /// structure-of-arrays loop (bench_integrators). A field written with Eigen vector
  /// operations runs 5-10x SLOWER this way. d ≤ 16 only (larger d runs interleaved).
  structure_of_arrays
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
  /// step, all stages in registers.)
  Eigen::Index tile_columns = 0;
  /// Per-sample fields of fixed dimension (without observer, integrals, likelihood or KPE
  /// profile): which kernel walks the samples. Both give the same results up to rounding
  /// (bitwise without FMA contraction).
  per_sample_kernel kernel = per_sample_kernel::interleaved;
  /// The log-likelihood of every sample (kinflow/integrators/likelihood.hpp), off by default.
  likelihood_options likelihood{};
  /// Called with the share of the work done, after every step of every tile
  /// (kinflow/integrators/progress.hpp); a callback that throws stops the solve.
  progress_callback progress{};
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

namespace detail {

/// The general fixed-grid path: all N steps of the grid through the step kernel, on the
/// whole batch when observed or when `cols >= B`, else on tiles of `cols` columns, each
/// over all steps before the next. The channels' stage sums go to the energy accumulator
/// and the integrals; `extra_nfe` gets what the integrands cost each sample. `eval`
/// evaluates the field whatever its type, so this is compiled once for all fields.
template <class Scalar, int Dim, std::size_t S, class GridScalar, class Channels, class Observer>
void fixed_grid_steps(const batched_velocity_ref<Scalar, Dim>& eval, const butcher_tableau<S>& method,
                      const time_grid<GridScalar>& grid, batch<Scalar, Dim>& X,
                      const fixed_step_options& options, Eigen::Index cols, kpe_accumulator<Scalar>& kpe,
                      Channels& channels, Observer& observer, std::int64_t& extra_nfe) {
  using batch_type = batch<Scalar, Dim>;
  const Eigen::Index d = X.rows(), B = X.cols();
  const std::size_t N = grid.steps();
  rk_work<Scalar, Dim, S> work;
  const std::array<long double, S> no_error{};

  // All N steps on the columns [first, first + Xb.cols()) held in Xb.
  auto run_steps = [&](batch_type& Xb, Eigen::Index first, auto&& after_step) {
    const Eigen::Index n = Xb.cols();
    work.resize(d, n);
    for (std::size_t step = 0; step < N; ++step) {
      const auto t = static_cast<Scalar>(grid[step]);
      const auto t_next = static_cast<Scalar>(grid[step + 1]);
      const Scalar h = t_next - t, habs = std::abs(h);
      for_each_in(channels, [&](auto& c) {
        if (c.enabled) c.step.start(n, false);
      });
      rk_step(eval, method, false, t, h, Xb, Xb, work, first_stage::evaluate,
              [&](std::size_t j, Scalar tj, const batch_type& Xj, const batch_type& Kj) {
                for_each_in(channels, [&](auto& c) {
                  if (!c.enabled || !c.needs(method.b, no_error, j, false)) return;
                  c.evaluate(tj, Xj, Kj);
                  if (first == 0) extra_nfe += c.cost;
                  c.accumulate(c.weight(method.b, j), 0.0L, h, habs);
                });
              });
      if (kpe.enabled()) {
        kpe.increments().head(n) = std::get<0>(channels).step.sums();
        kpe.commit(step, t, t_next, first, n);
      }
      // The likelihood and the user's integrals.
      std::apply([&](auto&, auto&... rest) {
        ((rest.enabled ? void(rest.value.segment(first, n) += rest.step.sums()) : void()), ...);
      }, channels);
      after_step(step, t, h);
      report_progress(options.progress,
                      static_cast<double>(first) * static_cast<double>(N) +
                          static_cast<double>(n) * static_cast<double>(step + 1),
                      static_cast<double>(B) * static_cast<double>(N));
    }
  };

  if constexpr (is_active_observer<Observer>) {
    run_steps(X, 0, [&](std::size_t n, Scalar t, Scalar h) {
      observer(fixed_step_view<Scalar, Dim, S>{n, t, h, X, work.k, method});
    });
  } else {
    auto nothing = [](std::size_t, Scalar, Scalar) {};
    if (cols >= B) {
      run_steps(X, 0, nothing);
    } else {
      batch_type tile;
      for (Eigen::Index first = 0; first < B; first += cols) {
        const Eigen::Index width = std::min(cols, B - first);
        tile = X.middleCols(first, width);
        run_steps(tile, first, nothing);
        X.middleCols(first, width) = tile;
      }
    }
  }
}

}  // namespace detail

/// Integrates `dx/dt = v(t, x)` over the grid with an explicit Runge–Kutta method,
/// stepping the batch `X` (d x B, one column per sample) in place.
///
/// Each step costs `S` field evaluations for the whole batch (NFE per sample = S·N).
/// The kinetic path energy is accumulated from the stages (see kinflow/energy/kpe.hpp).
/// After `options`, either or both of these may follow, in any order:
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
  static_assert(detail::count_kind<detail::extra_kind::controller, Extras...> == 0,
                "kinflow::integrate: a step-size controller applies to integrate_adaptive; a "
                "fixed-grid solve walks its time grid");
  static_assert(detail::count_kind<detail::extra_kind::integrals, Extras...> <= 1,
                "kinflow::integrate: more than one kinflow::along(...) given; put every "
                "integrand into one");
  static_assert(detail::count_kind<detail::extra_kind::observer, Extras...> <= 1,
                "kinflow::integrate: more than one observer given (or an argument that is "
                "neither kinflow::along(...) nor an observer)");
  const path_integrals<> no_integrals{};
  no_observer none;
  const auto& integrals = detail::extra_or<detail::extra_kind::integrals>(no_integrals, extras...);
  auto& observer = detail::extra_or<detail::extra_kind::observer>(none, extras...);
  using Observer = decltype(observer);
  static_assert(detail::observer_of<Observer, fixed_step_view<Scalar, Dim, S>>,
                "kinflow::integrate: a trailing argument is neither kinflow::along(...) nor an "
                "observer callable with a kinflow::fixed_step_view");
  static_assert(detail::integrands_of<std::remove_cvref_t<decltype(integrals)>, Scalar, Dim>,
                "kinflow::integrate: an integrand of kinflow::along is neither g(t, x, v) -> "
                "Scalar nor g(T, X, V, G); see kinflow/integrators/quadrature.hpp");
  constexpr bool user_integrals = std::tuple_size_v<decltype(integrals.integrands)> > 0;
  using field_type = std::remove_reference_t<Field>;
  const Eigen::Index d = X.rows(), B = X.cols();
  const std::size_t N = grid.steps();

  detail::require(options.tile_columns >= 0, "tile_columns", options.tile_columns,
                  "expected >= 0 (0 selects the automatic tile)");
  field_evaluator<field_type, Scalar, Dim> eval(field, d);
  const double tau = detail::resolve_kpe_tau(options.kpe, field);
  detail::kpe_accumulator<Scalar> kpe(options.kpe, tau, B, N);
  auto channels = detail::make_channels<Scalar, detail::divergence_integrand<Scalar, Dim>>(
      options.kpe, tau, integrals);
  detail::for_each_in(channels, [&](auto& c) { c.value.setZero(B); });
  auto& likelihood = std::get<1>(channels);
  const bool forward = grid[N] > grid[0];
  std::optional<divergence_evaluator<field_type, Scalar, Dim>> divergence;
  per_sample<Scalar> log_n0;
  if (options.likelihood.enabled) {
    detail::require_likelihood_span(static_cast<double>(grid[0]), static_cast<double>(grid[N]));
    detail::enable_likelihood(likelihood, divergence, field, d, options.likelihood);
    if (forward) log_n0 = detail::standard_normal_log_density(X);
  }
  std::int64_t extra_nfe = 0;  // evaluations the integrands cost each sample (the same for all)

  // Per-sample fields of fixed dimension: one fused pass per step, every stage of a
  // column in registers (what a hand-written loop does), energy accumulated alongside.
  constexpr bool fused = Dim != Eigen::Dynamic && !batched_velocity_field<field_type, Scalar, Dim> &&
                         !detail::is_active_observer<Observer> && !user_integrals;
  Eigen::Index cols = options.tile_columns;
  if (cols == 0) {
    // Buffers of about 128 KiB keep a cheap field's stages in cache, but never fewer than
    // 4096 columns per call: expensive batched fields (GEMM-based, threaded) lose more to
    // small calls than they gain from cache (measured: bench_integrators, bench_odeint).
    const auto bytes_per_column =
        static_cast<Eigen::Index>((S + 2) * sizeof(Scalar)) * std::max<Eigen::Index>(d, 1);
    cols = std::max<Eigen::Index>(4096, (Eigen::Index(128) << 10) / bytes_per_column);
  }
  // The general path: the step kernel on the whole batch (observed) or on column tiles,
  // compiled once for every field of these types.
  auto batched = [&] {
    detail::fixed_grid_steps(detail::stage_velocity(eval, divergence), method, grid, X, options, cols,
                             kpe, channels, observer, extra_nfe);
  };
  // Structure-of-arrays tiles, when chosen (the kernel has no per-step profile).
  constexpr bool soa_possible = fused && detail::soa_suited<Dim>;
  const bool soa = soa_possible && !likelihood.enabled && options.kpe.profile == kpe_profile::none &&
                   options.kernel == per_sample_kernel::structure_of_arrays;
  if (soa) {
    if constexpr (soa_possible) {
      const bool kpe_on = kpe.enabled();
      detail::soa_fixed_steps(field, method, grid, X, kpe_on,
                              options.kpe.quadrature == kpe_quadrature::left_riemann, tau,
                              kpe_on ? kpe.early_values().data() : nullptr,
                              kpe_on ? kpe.late_values().data() : nullptr, &options.progress);
    }
  } else if constexpr (fused) {
    if (likelihood.enabled) {
      batched();
    } else {
    using point_type = point<Scalar, Dim>;
    const bool kpe_on = kpe.enabled();
    const bool left = options.kpe.quadrature == kpe_quadrature::left_riemann;
    std::array<std::array<Scalar, S>, S> ha{};
    std::array<Scalar, S> hb{}, ct{}, w{};
    for (Eigen::Index first = 0; first < B; first += cols) {
      const Eigen::Index last = std::min(B, first + cols);
      for (std::size_t n = 0; n < N; ++n) {
        const auto t = static_cast<Scalar>(grid[n]);
        const auto t_next = static_cast<Scalar>(grid[n + 1]);
        const Scalar h = t_next - t;
        for (std::size_t j = 0; j < S; ++j) {
          for (std::size_t l = 0; l < S; ++l) ha[j][l] = h * static_cast<Scalar>(method.a[j][l]);
          hb[j] = h * static_cast<Scalar>(method.b[j]);
          ct[j] = t + static_cast<Scalar>(method.c[j]) * h;
          w[j] = Scalar(0.5) * std::abs(h) *
                 (left ? (j == 0 ? Scalar(1) : Scalar(0)) : static_cast<Scalar>(method.b[j]));
        }
        auto& inc = kpe.increments();
        const bool direct = kpe_on && !kpe.wants_increments();
        Scalar* const phase = kpe_on ? kpe.phase(t, t_next).data() : nullptr;
        // The energy mode is a template parameter so the column loop has no branches.
        auto columns = [&]<int Mode>(std::integral_constant<int, Mode>) {  // 0 off, 1 direct, 2 increments
          for (Eigen::Index i = first; i < last; ++i) {
            const point_type x = X.col(i);
            std::array<point_type, S> kk;
            for (std::size_t j = 0; j < S; ++j) {
              point_type xs = x;
              for (std::size_t l = 0; l < j; ++l) xs += ha[j][l] * kk[l];
              decltype(auto) v = field(ct[j], static_cast<const point_type&>(xs));
              if constexpr (std::remove_cvref_t<decltype(v)>::RowsAtCompileTime == Eigen::Dynamic)
                if (v.size() != d)
                  detail::require_dimension("velocity returned by the per-sample field", v.size(), d);
              kk[j] = v;
            }
            point_type xn = x;
            for (std::size_t j = 0; j < S; ++j) xn += hb[j] * kk[j];
            X.col(i) = xn;
            if constexpr (Mode != 0) {
              Scalar e = 0;
              for (std::size_t j = 0; j < S; ++j) e += w[j] * kk[j].squaredNorm();
              if constexpr (Mode == 1)
                phase[i] += e;
              else
                inc(i - first) = e;
            }
          }
        };
        if (!kpe_on)
          columns(std::integral_constant<int, 0>{});
        else if (direct)
          columns(std::integral_constant<int, 1>{});
        else
          columns(std::integral_constant<int, 2>{});
        if (kpe_on && !direct) kpe.commit(n, t, t_next, first, last - first);
        detail::report_progress(options.progress,
                                static_cast<double>(first) * static_cast<double>(N) +
                                    static_cast<double>(last - first) * static_cast<double>(n + 1),
                                static_cast<double>(B) * static_cast<double>(N));
      }
    }
    }
  } else {
    batched();
  }

  solve_result<Scalar> result;
  result.status.assign(static_cast<std::size_t>(B), solve_status::success);
  result.nfe.setConstant(B, static_cast<std::int64_t>(S * N) + extra_nfe);
  result.accepted.setConstant(B, static_cast<std::int64_t>(N));
  result.rejected.setZero(B);
  if (kpe.enabled()) result.kpe = std::move(kpe.result());
  detail::for_each_user_channel(channels, [&](auto& user) { result.integrals.push_back(std::move(user.value)); });
  if (likelihood.enabled) detail::finish_likelihood(likelihood, forward, log_n0, X, result);
  for (Eigen::Index i = 0; i < B; ++i) {
    bool finite = X.col(i).allFinite();
    if (kpe.enabled()) finite = finite && std::isfinite(result.kpe.total(i));
    if (likelihood.enabled) finite = finite && std::isfinite(result.log_likelihood(i));
    if (!finite) result.status[static_cast<std::size_t>(i)] = solve_status::non_finite;
  }
  return result;
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
