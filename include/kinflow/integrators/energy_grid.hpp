#pragma once
/// @file
/// @brief Energy-equidistributing time grids: N steps placed so that each carries an equal
/// share of `∫ e(t)^γ dt`, where `e(t)` is the kinetic energy density of a pilot run.
///
/// The kinetic path energy is far from uniform in time (for memorising fields it piles up
/// late). A grid that gives every step the same share of it spends the field evaluations
/// where the velocity changes the most. From a pilot grid `s_0 .. s_M` and the energy
/// increments `ΔE_m` of its steps (e.g. kpe_profile::batch_mean of a pilot solve):
///
///  1. density   `e_m = ΔE_m / |s_{m+1} - s_m|`, constant on each pilot step;
///  2. smoothing `ẽ_m = Σ_n K_mn ΔE_n / Σ_n K_mn |s_{n+1} - s_n|`, a Gaussian kernel
///     `K_mn = exp(-½((c_m - c_n)/bandwidth)²)` over the step centres `c` (a length-weighted
///     local mean; skipped when `bandwidth = 0`). It removes sampling noise of a pilot with
///     few samples; near the two ends the mean is one-sided, which biases `ẽ` by about
///     `0.8·bandwidth·e'` there;
///  3. floor     `ẽ_m ← max(ẽ_m, floor·ē)`, `ē` the time average of `ẽ`, so that no step can
///     become huge where the pilot saw no energy (a profile that is zero everywhere gives
///     the uniform grid);
///  4. weight    `w = ẽ^γ` (γ = 1: equal energy per step; γ = 0: the uniform grid;
///     in between, e.g. γ = ½: a compromise);
///  5. quantiles: `W(t) = ∫ w` is piecewise linear over the pilot grid; the new grid is
///     `t_i = W⁻¹(i·W(s_M)/N)`, with `t_0 = s_0` and `t_N = s_M` exactly.
///
/// Since `w > 0`, `W` is strictly increasing and so is the grid. The step shares are exact
/// for the piecewise-constant `ẽ^γ`; against a smooth density they are off by
/// O(pilot step²).
///
/// The builder knows nothing of energy: energy_equidistributing_grid() equidistributes the
/// per-step increments of any non-negative signal, and pilot_acceleration_grid()
/// (kinflow/integrators/pilot_grid.hpp) feeds it `∫ ‖dv/dt‖ dt` over each pilot step.
///
/// pilot_energy_grid() runs the pilot itself (a few samples, a fine uniform grid, any
/// fixed-step method) and returns the grid; its cost is `stages × pilot_steps` field
/// evaluations per pilot sample, on top of the final solve's `stages × N`.

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <type_traits>
#include <vector>

#include "kinflow/core/batch.hpp"
#include "kinflow/core/concepts.hpp"
#include "kinflow/core/errors.hpp"
#include "kinflow/energy/kpe.hpp"
#include "kinflow/integrators/explicit_rk.hpp"
#include "kinflow/integrators/multistep.hpp"
#include "kinflow/integrators/result.hpp"
#include "kinflow/integrators/tableau.hpp"
#include "kinflow/schedules/time_grid.hpp"

namespace kinflow {

/// Options of an energy-equidistributing grid (see the file comment).
struct energy_grid_options {
  double gamma = 1.0;        ///< exponent γ of the density, finite and >= 0
  double bandwidth = 0.01;   ///< Gaussian smoothing width in time units, >= 0 (0: none)
  double floor = 1e-3;       ///< density floor relative to its time average, in (0, 1]

  // Used by pilot_energy_grid() only.
  std::size_t pilot_steps = 256;  ///< steps of the pilot's uniform grid, >= 1
  double t0 = 0;                  ///< start of the pilot grid (and of the result)
  double t1 = 1;                  ///< end of the pilot grid (and of the result)
  kpe_quadrature quadrature = kpe_quadrature::stage;  ///< how the pilot measures energy
};

namespace detail {

inline void validate(const energy_grid_options& o) {
  require(std::isfinite(o.gamma) && o.gamma >= 0, "gamma", o.gamma, "expected a finite value >= 0");
  require(std::isfinite(o.bandwidth) && o.bandwidth >= 0, "bandwidth", o.bandwidth,
          "expected a finite value >= 0 (0 disables smoothing)");
  require(o.floor > 0 && o.floor <= 1, "floor", o.floor, "expected a value in (0, 1]");
}

/// Checks what every pilot run needs and returns its uniform grid.
template <class Scalar, int Dim>
time_grid<double> pilot_grid_for(const energy_grid_options& o, std::size_t steps, const batch<Scalar, Dim>& samples,
                                 std::size_t min_pilot_steps = 1) {
  validate(o);
  require(steps >= 1, "steps", steps, "expected at least 1");
  require(o.pilot_steps >= min_pilot_steps, "pilot_steps", o.pilot_steps,
          "expected at least " + std::to_string(min_pilot_steps));
  require(samples.cols() >= 1, "pilot samples", samples.cols(), "expected at least one sample (column)");
  return time_grid<double>::uniform(o.pilot_steps, o.t0, o.t1);
}

/// The per-step mean of a `B x M` per-sample profile over the samples whose solve succeeded
/// and whose row is finite.
/// @throws kinflow::invalid_argument when no sample qualifies.
template <class Profile>
Eigen::VectorXd mean_of_finite_samples(const Profile& per_sample, const std::vector<solve_status>& status) {
  Eigen::VectorXd mean = Eigen::VectorXd::Zero(per_sample.cols());
  Eigen::Index used = 0;
  for (Eigen::Index i = 0; i < per_sample.rows(); ++i) {
    if (status[static_cast<std::size_t>(i)] != solve_status::success || !per_sample.row(i).allFinite()) continue;
    mean += per_sample.row(i).transpose().template cast<double>();
    ++used;
  }
  require(used > 0, "pilot samples", per_sample.rows(), "expected at least one pilot sample whose solve stays finite");
  return mean / static_cast<double>(used);
}

}  // namespace detail

/// The grid of `steps` steps over the pilot grid's span on which every step carries an
/// equal share of `∫ ẽ(t)^γ dt` (see the file comment), from the pilot's per-step energy
/// increments `profile` (one entry per pilot step, e.g. the `N x 1` kpe_profile::batch_mean
/// of a fixed-step solve on `pilot`). Works for backward pilot grids too.
///
/// @throws kinflow::invalid_argument unless `steps >= 1`, `profile` has one finite,
///   non-negative entry per pilot step, and the options are valid.
template <class T, class Derived>
[[nodiscard]] time_grid<T> energy_equidistributing_grid(const time_grid<T>& pilot,
                                                        const Eigen::MatrixBase<Derived>& profile,
                                                        std::size_t steps,
                                                        const energy_grid_options& options = {}) {
  detail::validate(options);
  detail::require(steps >= 1, "steps", steps, "expected at least 1");
  const std::size_t M = pilot.steps();
  detail::require(profile.size() == static_cast<Eigen::Index>(M), "profile size", profile.size(),
                  "expected one energy increment per pilot step (" + std::to_string(M) + ")");
  const auto& s = pilot.times();
  std::vector<double> len(M), centre(M), dens(M), energy(M);
  double span = 0;
  for (std::size_t m = 0; m < M; ++m) {
    const double de = static_cast<double>(profile(static_cast<Eigen::Index>(m)));
    detail::require(std::isfinite(de) && de >= 0, "profile[" + std::to_string(m) + "]", de,
                    "expected a finite increment (energy, or the signal equidistributed) >= 0");
    len[m] = std::abs(static_cast<double>(s[m + 1]) - static_cast<double>(s[m]));
    centre[m] = 0.5 * (static_cast<double>(s[m]) + static_cast<double>(s[m + 1]));
    energy[m] = de;
    dens[m] = de / len[m];
    span += len[m];
  }

  // 2. Smoothing: kernel-weighted mean with the kernel cut at 8 widths (e^-32 ≈ 1e-14).
  if (options.bandwidth > 0) {
    const double bw = options.bandwidth, reach = 8 * bw;
    std::vector<double> smooth(M);
    for (std::size_t m = 0; m < M; ++m) {
      double num = 0, den = 0;
      auto add = [&](std::size_t n) {
        const double z = (centre[m] - centre[n]) / bw;
        const double w = std::exp(-0.5 * z * z);
        num += w * energy[n];
        den += w * len[n];
      };
      add(m);
      for (std::size_t n = m; n-- > 0 && std::abs(centre[m] - centre[n]) <= reach;) add(n);
      for (std::size_t n = m + 1; n < M && std::abs(centre[m] - centre[n]) <= reach; ++n) add(n);
      smooth[m] = num / den;
    }
    dens.swap(smooth);
  }

  // 3.-4. Floor and power.
  double mean = 0;
  for (std::size_t m = 0; m < M; ++m) mean += dens[m] * len[m];
  mean /= span;
  std::vector<double> cum(M + 1, 0.0), weight(M);
  for (std::size_t m = 0; m < M; ++m) {
    const double e = mean > 0 ? std::max(dens[m], options.floor * mean) : 1.0;
    weight[m] = options.gamma == 0 ? 1.0 : std::pow(e, options.gamma);
    cum[m + 1] = cum[m] + weight[m] * len[m];
  }

  // 5. Quantiles of the piecewise-linear cumulative weight.
  std::vector<T> t(steps + 1);
  t.front() = pilot.front();
  t.back() = pilot.back();
  const double total = cum[M];
  std::size_t m = 0;
  for (std::size_t i = 1; i < steps; ++i) {
    const double target = total * static_cast<double>(i) / static_cast<double>(steps);
    while (m + 1 < M && cum[m + 1] <= target) ++m;
    const double frac = std::clamp((target - cum[m]) / (weight[m] * len[m]), 0.0, 1.0);
    const double a = static_cast<double>(s[m]), b = static_cast<double>(s[m + 1]);
    t[i] = static_cast<T>(a + frac * (b - a));
  }
  return time_grid<T>(std::move(t));
}

/// Runs a pilot solve and returns the energy-equidistributing grid of `steps` steps.
///
/// The pilot integrates a copy of `pilot_samples` (a few columns are enough, e.g. 16–64
/// draws of the initial noise) with `method` on a uniform grid of `options.pilot_steps`
/// steps from `options.t0` to `options.t1`, recording each step's energy per sample with
/// `options.quadrature`. The per-step mean over the samples that finished with finite
/// state and energy is the profile handed to energy_equidistributing_grid(). Pass the
/// field you will sample with: for a shaped field (KTS) that is the energy of `η·v`.
///
/// @throws kinflow::invalid_argument for invalid options, an empty pilot batch, or when no
///   pilot sample stays finite; kinflow::dimension_mismatch when the field's output does
///   not match the samples.
template <class Field, class Method, class Scalar, int Dim>
  requires velocity_field<std::remove_reference_t<Field>, Scalar, Dim>
[[nodiscard]] time_grid<double> pilot_energy_grid(Field&& field, const Method& method,
                                                  const batch<Scalar, Dim>& pilot_samples,
                                                  std::size_t steps,
                                                  const energy_grid_options& options = {}) {
  const auto pilot = detail::pilot_grid_for(options, steps, pilot_samples);
  batch<Scalar, Dim> X = pilot_samples;
  fixed_step_options fo;
  fo.kpe.enabled = true;
  fo.kpe.quadrature = options.quadrature;
  fo.kpe.profile = kpe_profile::per_sample;
  const auto r = integrate(field, method, pilot, X, fo);
  const Eigen::VectorXd profile = detail::mean_of_finite_samples(r.kpe.profile, r.status);
  return energy_equidistributing_grid(pilot, profile, steps, options);
}

}  // namespace kinflow
