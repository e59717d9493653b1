#pragma once
/// @file
/// @brief Time grids walked by fixed-step integrators.
///
/// A grid is a strictly monotone sequence `t_0, t_1, ..., t_N` (N >= 1 steps).
/// Increasing grids integrate forward (noise to data, t = 0 to 1); decreasing grids
/// integrate backward (data to noise, e.g. for likelihoods) with the same code.
///
/// Kinds (all validated: finite, strictly monotone, endpoints exactly as asked):
///  - time_grid::uniform    `t_i = i/N`
///  - time_grid::cosine     `t_i = ½(1 - cos(π i/N))` (small steps at both ends)
///  - time_grid::edm        the EDM/Karras ρ-grid of noise levels, mapped to flow time
///  - time_grid::shifted    `t' = s·t/(1 + (s-1)·t)` applied to a uniform grid
///  - time_grid::exponential log-uniform noise levels σ (uniform in `λ = log(t/(1-t))`)
///  - time_grid::beta       Beta(α, β) quantiles of the flow noise level `σ = 1 - t`
///  - time_grid::dynamic_shift Flux's `σ' = e^μ/(e^μ + (1/σ - 1))` on `σ = 1 - t`
///  - time_grid::from_times user-given times with required endpoints (or the constructor)
///  - energy-equidistributing grids, built from a pilot run's energy profile:
///    see kinflow/integrators/energy_grid.hpp.
///
/// For a backward solve over any of these, build the forward grid and take reversed().

#include <cmath>
#include <cstddef>
#include <numbers>
#include <string>
#include <utility>
#include <vector>

#include "kinflow/core/errors.hpp"
#include "kinflow/detail/incomplete_beta.hpp"

namespace kinflow {

/// A validated, strictly monotone sequence of times `t_0, ..., t_N`.
template <class T = double>
class time_grid {
public:
  using value_type = T;  ///< the scalar type of the times

  /// Wraps user-given times. Throws kinflow::invalid_argument unless there are at
  /// least two finite times, strictly increasing or strictly decreasing throughout.
  explicit time_grid(std::vector<T> times) : t_(std::move(times)) { validate(); }

  /// Uniform grid `t_i = t0 + (t1 - t0) i / N`, i = 0..N (the endpoints are exact).
  [[nodiscard]] static time_grid uniform(std::size_t steps, T t0 = T(0), T t1 = T(1)) {
    return mapped(steps, t0, t1, [](T s) { return s; });
  }

  /// Cosine grid `t_i = t0 + (t1 - t0) * ½(1 - cos(π i / N))`: small steps at both ends.
  [[nodiscard]] static time_grid cosine(std::size_t steps, T t0 = T(0), T t1 = T(1)) {
    return mapped(steps, t0, t1,
                  [](T s) { return T(0.5) * (T(1) - std::cos(std::numbers::pi_v<T> * s)); });
  }

  /// EDM/Karras ρ-grid (Karras et al. 2022) mapped to flow time.
  ///
  /// The noise levels `σ_i = (σ_max^{1/ρ} + (i/N)(σ_min^{1/ρ} - σ_max^{1/ρ}))^ρ`, i = 0..N,
  /// decrease from `σ_max` to `σ_min`. On the linear path `x_t = (1-t) x0 + t x1`,
  /// `x_t / t = x1 + ((1-t)/t) x0` is the data plus noise of level `σ = (1-t)/t`, so a noise
  /// level maps to the flow time `t = 1/(1 + σ)`. The grid is
  ///
  ///     t_0 = 0,   t_i = 1/(1 + σ_i)  (0 < i < N),   t_N = 1:
  ///
  /// the end points `σ_0 = σ_max` and `σ_N = σ_min` stand for pure noise (σ = ∞, t = 0)
  /// and clean data (σ = 0, t = 1), where every flow-matching sampler starts and ends, and
  /// are set to exactly 0 and 1. Large ρ concentrates steps at low noise (near t = 1).
  /// Defaults are EDM's: `ρ = 7`, `σ_min = 0.002`, `σ_max = 80`.
  /// @throws kinflow::invalid_argument unless `steps >= 1`, `rho > 0` and
  ///   `0 < sigma_min < sigma_max`, all finite.
  [[nodiscard]] static time_grid edm(std::size_t steps, T rho = T(7), T sigma_min = T(0.002),
                                     T sigma_max = T(80)) {
    detail::require(std::isfinite(rho) && rho > 0, "rho", rho, "expected a finite value > 0");
    require_sigma_range(sigma_min, sigma_max);
    const T a = std::pow(sigma_max, T(1) / rho), b = std::pow(sigma_min, T(1) / rho);
    return mapped(steps, T(0), T(1), [=](T s) {
      const T sigma = std::pow(a + s * (b - a), rho);
      return T(1) / (T(1) + sigma);
    });
  }

  /// Shifted grid: `t_i = t0 + (t1 - t0)·g(i/N)` with `g(u) = s·u / (1 + (s - 1)·u)`.
  ///
  /// `g` maps [0, 1] onto itself with slopes `g′(0) = s` and `g′(1) = 1/s`: for `s > 1`
  /// the steps shrink towards `t1` (the data end on a forward grid) by a factor `s²` from
  /// first to last; `s < 1` does the opposite; `s = 1` is the uniform grid.
  /// @throws kinflow::invalid_argument unless `s` is finite and `> 0` (and see mapped()).
  [[nodiscard]] static time_grid shifted(std::size_t steps, T s, T t0 = T(0), T t1 = T(1)) {
    detail::require(std::isfinite(s) && s > 0, "shift", s, "expected a finite value > 0");
    return mapped(steps, t0, t1, [=](T u) { return s * u / (T(1) + (s - T(1)) * u); });
  }

  /// Exponential grid: noise levels uniform in log σ (k-diffusion's get_sigmas_exponential,
  /// diffusers' `use_exponential_sigmas`), mapped to flow time like edm():
  ///
  ///     σ_i = exp(log σ_max + (i/N)(log σ_min - log σ_max)),   t_i = 1/(1 + σ_i),
  ///
  /// with `t_0 = 0` and `t_N = 1` exactly (pure noise and clean data, as in edm()). The map
  /// `t = 1/(1 + σ)` is the one of a noise-level (EDM) schedule, `σ = (1-t)/t`, so that the
  /// same σ_min and σ_max mean the same as in edm(); then `log σ = -λ_t` with
  /// `λ_t = log(t/(1-t))` (docs/integrators.md, multistep methods), and the grid is
  /// uniform in λ between its ends: the variable in which DPM-Solver's steps are exact.
  /// Defaults are EDM's noise range: `σ_min = 0.002`, `σ_max = 80` (λ from -4.38 to 6.21).
  /// @throws kinflow::invalid_argument unless `steps >= 1` and `0 < sigma_min < sigma_max`,
  ///   both finite.
  [[nodiscard]] static time_grid exponential(std::size_t steps, T sigma_min = T(0.002), T sigma_max = T(80)) {
    require_sigma_range(sigma_min, sigma_max);
    const T a = std::log(sigma_max), b = std::log(sigma_min);
    return mapped(steps, T(0), T(1), [=](T s) { return T(1) / (T(1) + std::exp(a + s * (b - a))); });
  }

  /// Beta grid (Lee et al. 2024, "Beta Sampling is All You Need"; diffusers' `_convert_to_beta`
  /// with `use_beta_sigmas`): the flow noise levels are the Beta(α, β) quantiles
  ///
  ///     σ_i = F⁻¹(1 - i/N; α, β),   t_i = 1 - σ_i = F⁻¹(i/N; β, α),
  ///
  /// `F(x; α, β) = I_x(α, β)` the Beta CDF (the regularized incomplete beta function). Its
  /// values already run over [0, 1] like the flow noise level, so it maps by `σ = 1 - t`
  /// (diffusers applies it to its flow sigmas with σ_min = 0, σ_max = 1); the second form
  /// follows from `1 - X ~ Beta(β, α)` for `X ~ Beta(α, β)`. α = β = 1 is the uniform grid;
  /// α, β < 1 put small steps at both ends, α < β more of them near the data (t = 1).
  /// Defaults are diffusers': α = β = 0.6.
  /// @throws kinflow::invalid_argument unless `steps >= 1`, `alpha` and `beta` are finite
  ///   and in (0, 10⁴], and the N quantiles are distinct in T.
  [[nodiscard]] static time_grid beta(std::size_t steps, T alpha = T(0.6), T beta = T(0.6)) {
    detail::require(std::isfinite(alpha) && alpha > 0 && alpha <= T(1e4), "alpha", alpha,
                    "expected a finite value in (0, 1e4]");
    detail::require(std::isfinite(beta) && beta > 0 && beta <= T(1e4), "beta", beta,
                    "expected a finite value in (0, 1e4]");
    return distinct(steps, "alpha, beta", [=](T s) {
      return static_cast<T>(detail::inverse_regularized_incomplete_beta(static_cast<double>(s),
                                                                       static_cast<double>(beta),
                                                                       static_cast<double>(alpha)));
    });
  }

  /// Dynamic-shift grid (Flux's `time_shift(μ, 1, σ)`, diffusers' `use_dynamic_shifting`):
  /// the flow noise levels `σ = 1 - u` of a uniform grid (u = i/N) become
  ///
  ///     σ' = e^μ / (e^μ + (1/σ - 1)),   t' = 1 - σ' = u / (u + e^μ (1 - u)).
  ///
  /// That is SD3's shift `σ' = Sσ/(1 + (S-1)σ)` with `S = e^μ`, applied to σ; on t it is
  /// shifted() with `s = e^{-μ}` (the shift of shifted() acts on t, not σ): μ > 0 gives small
  /// steps near the noise (t = 0), as Flux uses it (μ from 0.5 to 1.15 with the image size).
  /// @throws kinflow::invalid_argument unless `steps >= 1`, `mu` is finite with |μ| <= 30,
  ///   and the times are distinct in T.
  [[nodiscard]] static time_grid dynamic_shift(std::size_t steps, T mu) {
    detail::require(std::isfinite(mu) && std::abs(mu) <= T(30), "mu", mu, "expected a finite value in [-30, 30]");
    const T e = std::exp(mu);
    return distinct(steps, "mu", [=](T u) { return u / (u + e * (T(1) - u)); });
  }

  /// User-given times that must run from exactly `t0` to exactly `t1`.
  /// @throws kinflow::invalid_argument unless there are at least two finite times, the
  ///   first is `t0`, the last is `t1`, and they are strictly increasing (`t1 > t0`) or
  ///   strictly decreasing (`t1 < t0`). The message names the offending entry.
  [[nodiscard]] static time_grid from_times(std::vector<T> times, T t0 = T(0), T t1 = T(1)) {
    detail::require(std::isfinite(t0), "t0", t0, "expected a finite time");
    detail::require(std::isfinite(t1) && t1 != t0, "t1", t1, "expected a finite time != t0");
    detail::require(!times.empty(), "time grid size", times.size(), "expected at least 2 times (1 step)");
    detail::require(times.front() == t0, "times[0]", times.front(),
                    "expected the first time to equal t0 = " + detail::to_text(t0));
    detail::require(times.back() == t1, "times[" + std::to_string(times.size() - 1) + "]",
                    times.back(), "expected the last time to equal t1 = " + detail::to_text(t1));
    return time_grid(std::move(times));
  }

  /// Grid `t_i = t0 + (t1 - t0) * g(i / N)` for a map `g` of [0, 1] onto itself with
  /// `g(0) = 0`, `g(1) = 1`; the endpoints are set exactly. The result is validated.
  template <class Map>
  [[nodiscard]] static time_grid mapped(std::size_t steps, T t0, T t1, Map&& g) {
    detail::require(steps >= 1, "steps", steps, "expected at least 1");
    detail::require(std::isfinite(t0), "t0", t0, "expected a finite time");
    detail::require(std::isfinite(t1), "t1", t1, "expected a finite time");
    detail::require(t0 != t1, "t1", t1, "expected t1 != t0");
    std::vector<T> t(steps + 1);
    const T n = static_cast<T>(steps);
    t.front() = t0;
    for (std::size_t i = 1; i < steps; ++i) t[i] = t0 + (t1 - t0) * g(static_cast<T>(i) / n);
    t.back() = t1;
    return time_grid(std::move(t));
  }

  /// The grid `t_i = g(i/N)` on [0, 1] (ends exact) for a map whose interior values may
  /// collapse in T for extreme parameters: throws naming @p params instead of a bare
  /// times[i] complaint.
  template <class Map>
  [[nodiscard]] static time_grid distinct(std::size_t steps, const char* params, Map&& g) {
    detail::require(steps >= 1, "steps", steps, "expected at least 1");
    std::vector<T> t(steps + 1, T(0));
    t.back() = T(1);
    for (std::size_t i = 1; i <= steps; ++i) {
      if (i < steps) t[i] = g(static_cast<T>(i) / static_cast<T>(steps));
      if (!(t[i] > t[i - 1]))
        detail::require(false, "steps", steps,
                        std::string("expected fewer steps or milder ") + params + ": times " +
                            std::to_string(i - 1) + " and " + std::to_string(i) +
                            " of the grid coincide in this precision");
    }
    return time_grid(std::move(t));
  }

  /// Number of steps N (one fewer than the number of times).
  [[nodiscard]] std::size_t steps() const noexcept { return t_.size() - 1; }
  /// The times `t_0 ... t_N`.
  [[nodiscard]] const std::vector<T>& times() const noexcept { return t_; }
  /// `t_i`.
  [[nodiscard]] T operator[](std::size_t i) const { return t_[i]; }
  /// First time `t_0`.
  [[nodiscard]] T front() const { return t_.front(); }
  /// Last time `t_N`.
  [[nodiscard]] T back() const { return t_.back(); }
  /// +1 for an increasing (forward) grid, -1 for a decreasing (backward) one.
  [[nodiscard]] int direction() const { return t_[1] > t_[0] ? 1 : -1; }
  /// The same times in reverse order (integrates the other way).
  [[nodiscard]] time_grid reversed() const { return time_grid(std::vector<T>(t_.rbegin(), t_.rend())); }

private:
  static void require_sigma_range(T sigma_min, T sigma_max) {
    detail::require(std::isfinite(sigma_min) && sigma_min > 0, "sigma_min", sigma_min,
                    "expected a finite value > 0");
    detail::require(std::isfinite(sigma_max) && sigma_max > sigma_min, "sigma_max", sigma_max,
                    "expected a finite value > sigma_min = " + detail::to_text(sigma_min));
  }

  void validate() const {
    detail::require(t_.size() >= 2, "time grid size", t_.size(),
                    "expected at least 2 times (1 step)");
    for (std::size_t i = 0; i < t_.size(); ++i)
      if (!std::isfinite(t_[i]))
        detail::require(false, "times[" + std::to_string(i) + "]", t_[i], "expected a finite time");
    const bool up = t_[1] > t_[0];
    for (std::size_t i = 1; i < t_.size(); ++i) {
      const bool ok = up ? t_[i] > t_[i - 1] : t_[i] < t_[i - 1];
      if (!ok)
        detail::require(false, "times[" + std::to_string(i) + "]", t_[i],
                        std::string("expected strictly ") + (up ? "increasing" : "decreasing") +
                            " times (times[" + std::to_string(i - 1) +
                            "] = " + detail::to_text(t_[i - 1]) + ")");
    }
  }

  std::vector<T> t_;
};

}  // namespace kinflow
