#pragma once
/// @file
/// @brief Fixed-grid multistep integration (Adams–Bashforth, DPM-Solver++, UniPC) of a
/// batch, with the kinetic path energy, the log-likelihood and a user's integrals carried
/// at the method's order from the evaluations it makes anyway.
///
/// @code
///   auto grid = kinflow::time_grid<>::uniform(20);
///   auto r = kinflow::integrate(field, kinflow::dpmpp2m, grid, X);  // 20 evaluations
///   r.kpe.total;                                                   // per-sample ½∫‖v‖²dt
/// @endcode
///
/// The methods and their updates are in kinflow/integrators/multistep_methods.hpp. Each
/// step evaluates the field once, at its start `(x_n, t_n)`; a method keeps the last
/// evaluations of every sample (its history). The integrals along the path (the kinetic
/// energy `½‖v‖²`, the divergence of the log-likelihood, a user's `g(t, x, v)`) are
/// sampled at the same points and integrated with the polynomial through the last k of them
/// (k = the method's order, UniPC's corrected order 3; fewer while the history is short):
/// a step's integral waits for the next evaluation and takes the Adams–Moulton weights
/// (the polynomial between its points), the last step's takes the Adams–Bashforth weights
/// (beyond them). Zero extra evaluations and the method's order for smooth integrands,
/// also after a lower-order start: interpolating between points, even the first steps'
/// two-point (trapezoid) sums leave a local error O(h³), and O(h⁴) from the third point on. (UniPC samples them
/// at the predicted point, where its evaluation is; the corrected state differs from it by
/// the predictor's local error, inside that order.) Steps taken by a Runge–Kutta start
/// (multistep_start::runge_kutta) carry them stage-consistently, as kinflow::integrate
/// does for Runge–Kutta methods.

#include <Eigen/Core>
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "kinflow/core/batch.hpp"
#include "kinflow/core/concepts.hpp"
#include "kinflow/core/errors.hpp"
#include "kinflow/detail/batch_callable.hpp"
#include "kinflow/integrators/detail/solve_extras.hpp"
#include "kinflow/integrators/fixed_grid.hpp"
#include "kinflow/integrators/kernels/rk_step.hpp"
#include "kinflow/integrators/multistep_methods.hpp"
#include "kinflow/integrators/result.hpp"
#include "kinflow/integrators/tableau.hpp"
#include "kinflow/schedules/time_grid.hpp"

namespace kinflow {

/// What an observer of a multistep solve sees after each step over `[t, t + dt]`.
template <class Scalar, int Dim>
struct multistep_step_view {
  std::size_t step;              ///< index n of the step `[t_n, t_{n+1}]`
  Scalar t;                      ///< `t_n`, the step's start
  Scalar dt;                     ///< `t_{n+1} - t_n`
  const batch<Scalar, Dim>& x;   ///< the state at `t_{n+1}` (already updated)
  const batch<Scalar, Dim>& v;   ///< the velocity evaluated at the step's start (UniPC: at the predicted point)
  const multistep_method& method;  ///< the method
  int order;                     ///< the order this step ran at (lower at a start or a landing)
};

namespace detail {

/// Checks a grid for a multistep method: the data-prediction methods need times in
/// [0, 1] and cannot start at t = 1 (σ = 0 there: the update divides by it).
template <class GridScalar>
void validate_multistep_grid(const multistep_method& m, const time_grid<GridScalar>& grid) {
  if (m.family == multistep_family::adams_bashforth) return;
  for (std::size_t i = 0; i <= grid.steps(); ++i) {
    const auto t = static_cast<double>(grid[i]);
    require(t >= 0 && t <= 1, "grid[" + std::to_string(i) + "]", t,
            "expected a time in [0, 1]: " + std::string(m.name) + " steps in λ = log(t/(1 − t))");
  }
  require(grid[0] != GridScalar(1), "grid[0]", 1.0,
          "expected a start before t = 1: " + std::string(m.name) +
              " divides by σ = 1 − t of the step's start (use ab2, ab3 or a Runge–Kutta method "
              "to integrate backward from t = 1)");
}

/// The multistep step loop of the fixed-grid core (see the file comment), compiled once per
/// scalar type and dimension whatever the field and the observer.
template <class Scalar, int Dim, class GridScalar, class Sums>
void multistep_grid_steps(const batched_velocity_ref<Scalar, Dim>& eval, const multistep_method& method,
                          const time_grid<GridScalar>& grid, bool euler_last, batch<Scalar, Dim>& X,
                          const fixed_step_options& options, Eigen::Index cols, Sums& core,
                          function_ref<void(const multistep_step_view<Scalar, Dim>&)> observer) {
  using batch_type = batch<Scalar, Dim>;
  const Eigen::Index d = X.rows(), B = X.cols();
  const std::size_t N = grid.steps();
  const bool data_prediction = method.family != multistep_family::adams_bashforth;
  const bool corrector = method.family == multistep_family::unipc;
  const std::size_t start_steps =
      options.start == multistep_start::runge_kutta ? static_cast<std::size_t>(method.order - 1) : 0;
  // The integrals' order: the method's, and UniPC's corrected one.
  const int quadrature_order = method.order + (corrector ? 1 : 0);
  auto& channels = core.channels;
  const std::size_t channels_carried = channel_count(channels);

  walk_tiles(X, cols, bool(observer), [&](batch_type& Xb, Eigen::Index first) {
    const Eigen::Index n = Xb.cols();
    batch_type V(d, n), previous;  // previous: UniPC's corrected x_{n−1}
    std::array<batch_type, 3> q;   // stored quantity (v or m) at the history points, newest first
    for (auto& qj : q) qj.resize(d, n);
    std::array<long double, 3> times{};
    std::vector<std::array<per_sample<Scalar>, 3>> g(channels_carried);  // integrand values, newest first
    int history = 0, last_order = 1;
    bool predicted = false;  // the last step was a multistep (predictor) step
    bool deferred = false;   // the last step's integrals wait for this step's evaluation
    // Sets every channel's step sum to the integral over [a, b] of the polynomial through
    // its last k values.
    auto integrate_history = [&](int k, long double a, long double b) {
      const auto w = adams_weights(k, times, a, b);
      const auto hq = static_cast<Scalar>(b - a), hq_abs = std::abs(hq);
      std::size_t ci = 0;
      for_each_in(channels, [&](auto& c) {
        auto& gc = g[ci++];
        if (!c.enabled) return;
        c.step.start(n, false);
        for (int j = 0; j < k; ++j) c.step.add(w[j], 0.0L, c.absolute ? hq_abs : hq, gc[j]);
      });
    };
    rk_work<Scalar, Dim, 2> heun_work;
    rk_work<Scalar, Dim, 3> rk3_work;

    for (std::size_t step = 0; step < N; ++step) {
      const auto t = static_cast<Scalar>(grid[step]);
      const auto t_next = static_cast<Scalar>(grid[step + 1]);
      const Scalar h = t_next - t, habs = std::abs(h);
      eval(t, Xb, V);
      // Shift the histories and store this evaluation's values.
      std::rotate(q.rbegin(), q.rbegin() + 1, q.rend());
      std::rotate(times.rbegin(), times.rbegin() + 1, times.rend());
      times[0] = static_cast<long double>(grid[step]);
      history = std::min(history + 1, 3);
      {
        std::size_t ci = 0;
        for_each_in(channels, [&](auto& c) {
          auto& gc = g[ci++];
          if (!c.enabled) return;
          std::rotate(gc.rbegin(), gc.rbegin() + 1, gc.rend());
          c.evaluate(t, Xb, V);
          gc[0] = c.G;
          if (first == 0) core.extra_nfe += c.cost;
        });
      }
      if (data_prediction)
        q[0] = Xb + V * (Scalar(1) - t);  // m = x + (1 − t) v, at the point evaluated
      else
        q[0] = V;
      if (corrector && predicted) {  // UniC: correct x_n with the evaluation at it
        const multistep_update c = unipc_corrector(last_order, times);
        Xb = static_cast<Scalar>(c.a) * previous + static_cast<Scalar>(c.c[0]) * q[0] +
             static_cast<Scalar>(c.c[1]) * q[1];
        if (history > 2 && c.c[2] != 0) Xb += static_cast<Scalar>(c.c[2]) * q[2];
      }
      if (corrector) previous = Xb;

      // The integrals over the previous step, deferred until this evaluation: the
      // Adams–Moulton weights of the interpolant through this point and the ones before.
      if (deferred) {
        const long double a = times[1], b = times[0];
        integrate_history(std::min(history, quadrature_order), a, b);
        commit_step(core.kpe, channels, step - 1, static_cast<Scalar>(grid[step - 1]), t, first, n);
        deferred = false;
      }

      int order = 1;
      if (euler_last && step + 1 == N) {
        Xb += h * V;
        for_each_in(channels, [&](auto& c) {
          if (!c.enabled) return;
          c.step.start(n, false);
          c.step.add(1.0L, 0.0L, c.absolute ? habs : h, c.G);
        });
        commit_step(core.kpe, channels, step, t, t_next, first, n);
      } else if (step < start_steps) {
        // A Runge–Kutta start step, its first stage the evaluation above; the integrals
        // are carried over its stages, as in a Runge–Kutta solve.
        for_each_in(channels, [&](auto& c) {
          if (c.enabled) c.step.start(n, false);
        });
        auto start_step = [&](const auto& tableau, auto& work) {
          work.resize(d, n);
          work.k[0] = V;
          rk_step(eval, tableau, false, t, h, Xb, Xb, work, first_stage::given,
                  [&](std::size_t j, Scalar tj, const batch_type& Xj, const batch_type& Kj) {
                    for_each_in(channels, [&](auto& c) {
                      if (!c.enabled) return;
                      if (j > 0) {
                        c.evaluate(tj, Xj, Kj);
                        if (first == 0) core.extra_nfe += c.cost;
                      }
                      c.accumulate(c.weight(tableau.b, j), 0.0L, h, habs);
                    });
                  });
        };
        if (method.order == 2)
          start_step(heun, heun_work);
        else
          start_step(rk3, rk3_work);
        order = method.order;
        commit_step(core.kpe, channels, step, t, t_next, first, n);
      } else {
        const multistep_update u = multistep_step(method, std::min(history, method.order), times,
                                                  static_cast<long double>(grid[step + 1]));
        order = u.order;
        if (u.a != 1) Xb *= static_cast<Scalar>(u.a);
        for (int j = 0; j < order; ++j) Xb += static_cast<Scalar>(u.c[j]) * q[j];
        deferred = true;
      }
      last_order = order;
      predicted = !(euler_last && step + 1 == N) && step >= start_steps;
      if (observer) observer(multistep_step_view<Scalar, Dim>{step, t, h, X, V, method, order});
      report_tile_progress(options.progress, first, n, step, N, B);
    }
    // The last step's integrals, beyond the last evaluation: Adams–Bashforth weights.
    if (deferred) {
      integrate_history(std::min(history, quadrature_order), times[0], static_cast<long double>(grid[N]));
      commit_step(core.kpe, channels, N - 1, static_cast<Scalar>(grid[N - 1]), static_cast<Scalar>(grid[N]), first,
                  n);
    }
  });
}

}  // namespace detail

/// Integrates `dx/dt = v(t, x)` over the grid with a multistep method (kinflow::ab2, ab3,
/// dpmpp2m, dpmpp3m, unipc; kinflow/integrators/multistep_methods.hpp), stepping the batch
/// `X` (d x B) in place. One field evaluation per step (NFE per sample = N, plus
/// `order − 1` per start step with multistep_start::runge_kutta). The options, the trailing
/// integrals (`kinflow::along`) and observer (called with a multistep_step_view), the
/// result, the statuses and the errors are those of the Runge–Kutta kinflow::integrate;
/// `options.kernel` does not apply (the field is called on column tiles).
///
/// @throws kinflow::invalid_argument for invalid options, or a grid outside [0, 1] or
///         starting at t = 1 for the data-prediction methods (DPM-Solver++, UniPC).
template <class Field, class Scalar, int Dim, class GridScalar, class... Extras>
  requires velocity_field<std::remove_reference_t<Field>, Scalar, Dim>
solve_result<Scalar> integrate(Field&& field, const multistep_method& method, const time_grid<GridScalar>& grid,
                               batch<Scalar, Dim>& X, const fixed_step_options& options = {},
                               Extras&&... extras) {
  detail::check_fixed_grid_extras<Scalar, Dim, multistep_step_view<Scalar, Dim>, Extras...>();
  const path_integrals<> no_integrals{};
  no_observer none;
  const auto& integrals = detail::extra_or<detail::extra_kind::integrals>(no_integrals, extras...);
  auto& observer = detail::extra_or<detail::extra_kind::observer>(none, extras...);
  detail::require(method.order >= 2 && method.order <= 3 && (method.order == 2 || method.family != multistep_family::unipc),
                  "method.order", method.order, "expected 2 or 3 (UniPC: 2)");
  detail::validate_multistep_grid(method, grid);
  detail::fixed_grid_core<std::remove_reference_t<Field>, Scalar, Dim, std::remove_cvref_t<decltype(integrals)>> core(
      field, grid, X, options, integrals);
  const std::size_t N = grid.steps();
  const bool euler_last = options.last_step != last_step_rule::method;
  const Eigen::Index cols = detail::default_tile_columns<Scalar>(options.tile_columns, 6, X.rows());
  detail::multistep_grid_steps(core.velocity(), method, grid, euler_last, X, options, cols, core.sums(),
                               detail::observer_ref<multistep_step_view<Scalar, Dim>>(observer));
  std::int64_t nfe = static_cast<std::int64_t>(N);
  if (options.start == multistep_start::runge_kutta) {
    const auto start_steps = std::min<std::int64_t>(method.order - 1, static_cast<std::int64_t>(N) - (euler_last ? 1 : 0));
    nfe += std::max<std::int64_t>(start_steps, 0) * (method.order - 1);
  }
  return core.finish(X, nfe, N);
}

}  // namespace kinflow
