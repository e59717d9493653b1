#pragma once
/// @file
/// @brief The step kernel: one explicit Runge–Kutta step of a batch from a Butcher tableau,
/// with one step size for all columns or one per column. Fixed-grid and adaptive solves
/// both run their steps through it.
///
/// Given the columns' times `t` and steps `h`, the kernel evaluates the stages
///
///     k_j = v(t + c_j h, x + h Σ_{l<j} a_{jl} k_l),   j = 0 … S-1,
///
/// and forms `x_new = x + h Σ_j b_j k_j`. After each stage it calls `on_stage(j, T_j, X_j,
/// K_j)` with the stage's times (a scalar or one per column), state and velocity, which is
/// where integrals along the path (kinflow/integrators/quadrature.hpp) read their
/// integrand. The error estimate of an embedded pair, `h Σ (b_j - b̂_j) k_j`, is formed by
/// the caller from the stages left in the work buffers.

#include <Eigen/Core>
#include <array>
#include <cstddef>
#include <type_traits>

#include "kinflow/core/batch.hpp"
#include "kinflow/detail/rk_combine.hpp"
#include "kinflow/integrators/tableau.hpp"

namespace kinflow::detail {

/// Work buffers of the step kernel for a method with S stages.
template <class Scalar, int Dim, std::size_t S>
struct rk_work {
  std::array<batch<Scalar, Dim>, S> k;  ///< stage velocities k_j
  batch<Scalar, Dim> stage;             ///< the current stage state
  sample_times<Scalar> times;           ///< the current stage times (one per column)

  /// Sizes every buffer for `n` columns of dimension `d` (no allocation when unchanged).
  void resize(Eigen::Index d, Eigen::Index n) {
    for (auto& kj : k) kj.resize(d, n);
    if constexpr (S > 1) stage.resize(d, n);
    times.resize(n);
  }
};

/// How the first stage of a step is obtained.
enum class first_stage {
  evaluate,  ///< evaluate `k_0 = v(t, x)`
  given      ///< `k_0` is already in `work.k[0]` (FSAL: the previous step's last stage)
};

/// One step over the columns of `x` (see the file comment). `Times`/`Steps` are both
/// scalars (a fixed grid: every column shares the step) or both `sample_times` (one per
/// column). With `fsal`, the last stage is evaluated at the new point, so `x_new` is that
/// stage's state (the tableau's last row of `a` equals `b`). `x_new` may alias `x` only
/// when `fsal` is false. `eval(T, X, V)` evaluates the field.
template <class Eval, class Scalar, int Dim, std::size_t S, class Times, class OnStage>
void rk_step(Eval& eval, const butcher_tableau<S>& method, bool fsal, const Times& t,
             const Times& h, const batch<Scalar, Dim>& x, batch<Scalar, Dim>& x_new,
             rk_work<Scalar, Dim, S>& work, first_stage first, OnStage&& on_stage) {
  constexpr bool shared_step = std::is_arithmetic_v<Times>;
  auto& k = work.k;
  // The stage times: a scalar, or the per-column buffer.
  auto stage_time = [&](std::size_t j) -> decltype(auto) {
    const auto c = static_cast<Scalar>(method.c[j]);
    if constexpr (shared_step) {
      return t + c * h;
    } else {
      work.times = t + c * h;
      return static_cast<const sample_times<Scalar>&>(work.times);
    }
  };
  auto combine_row = [&](batch<Scalar, Dim>& out, const auto& weights, std::size_t count) {
    if constexpr (shared_step)
      combine(out, x, k, nonzero_terms<Scalar, S>(weights, count, h));
    else
      combine(out, x, k, nonzero_terms<Scalar, S>(weights, count, Scalar(1)), h);
  };

  {
    decltype(auto) t0 = stage_time(0);
    if (first == first_stage::evaluate) eval(t0, x, k[0]);
    on_stage(std::size_t{0}, t0, x, k[0]);
  }
  for (std::size_t j = 1; j < S; ++j) {
    auto& target = (fsal && j == S - 1) ? x_new : work.stage;
    combine_row(target, method.a[j], j);
    decltype(auto) tj = stage_time(j);
    eval(tj, static_cast<const batch<Scalar, Dim>&>(target), k[j]);
    on_stage(j, tj, static_cast<const batch<Scalar, Dim>&>(target), k[j]);
  }
  if (!fsal) combine_row(x_new, method.b, S);
}

}  // namespace kinflow::detail
