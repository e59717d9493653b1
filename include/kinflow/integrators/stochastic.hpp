#pragma once
/// @file
/// @brief Stochastic samplers for flow models on a fixed grid: Euler–Maruyama (`sde-euler`),
/// a weak second-order stochastic Heun (`sde-heun`) and the re-noising Euler step of image
/// pipelines (`renoise-euler`), with per-sample noise that reproduces and the energies of
/// the stochastic path.
///
/// @code
///   kinflow::stochastic_options o;
///   o.diffusion = kinflow::parse_diffusion("sigma", 0.5);   // w(t) = 0.5·(1 − t)
///   o.last_step = kinflow::last_step_rule::denoise;         // "mean": x₁ = x + (1 − t)·v
///   o.noise_seed = 7;
///   auto r = kinflow::integrate(field, kinflow::sde_euler, kinflow::time_grid<>::uniform(100), X, o);
///   r.kpe.total; r.drift_energy.total; r.control_energy.total;   // per sample
/// @endcode
///
/// The SDE (kinflow/integrators/diffusion.hpp, docs/math.md §11) is
/// `dx = b dt + g dW`, `b = v + w ∇log p_t`, `g = √(2w)`, with the score from the velocity,
/// `∇log p_t = (t v − x)/(1 − t)`, or the field's own `score(t, X, S)` when asked
/// (score_source::field). Step n over `[t, t']`, `h = t' − t`, `ξ` the step's noise:
///
/// - **sde-euler**: `x' = x + h·b(x, t) + g(t)√h·ξ` (one evaluation);
/// - **sde-heun**: the predictor x̃ = x + h·b(x, t) + g(t)√h·ξ, then
///   x' = x + ½h·(b(x, t) + b(x̃, t')) + ½(g(t) + g(t'))√h·ξ (two evaluations): Kloeden and Platen's explicit weak order 2.0
///   scheme for additive noise (noise that does not depend on x, as here). SiT's "Heun"
///   instead adds the noise first and then takes a deterministic Heun step, which is
///   weak order 1;
/// - **renoise-euler**: `x̂₁ = x + (1 − t)v`, `x̂₀ = x − t·v`,
///   `x' = t'·x̂₁ + (1 − t')·(√(1 − η²)·x̂₀ + η·ξ)` with the churn η ∈ [0, 1]. η = 1 is
///   diffusers' `FlowMatchEulerDiscreteScheduler(stochastic_sampling=True)`, which in its
///   σ = 1 − t convention writes `x0 = sample − σ·model_output`,
///   `prev_sample = (1 − σ_next)·x0 + σ_next·noise`; η = 0 is the Euler step. It uses no
///   diffusion form: η² = κh is Euler–Maruyama for `g² = κ(1 − t)²`, while a fixed η > 0
///   does not converge to an SDE as h → 0 (docs/math.md §11.4).
///
/// **KTS** composes: a shaped field is the field, so `η·v` enters the score (norm 0 gives
/// back the KTS ODE; docs/math.md §11.1 says why).
///
/// A diffusion infinite at a step's start (sbdm at t = 0) gives that step no diffusion
/// (`g = 0` on it; the marginals are kept for any g, also one that is 0 on a step).
///
/// **Last step** (options.last_step): `method` ("none": the scheme's own step),
/// `denoise` ("mean": the denoiser jump `x₁ = x + (1 − t)·v`, no noise), `euler` (the
/// drift without noise, `x + h·b`; SiT's "Mean"). A diffusion with `w(1) ≠ 0` (constant)
/// needs a rule when the grid ends at t = 1. With options.last_step_size = H the grid is
/// mapped affinely onto `[t₀, 1 − H]` and the rule takes one more step, from `1 − H` to 1
/// (SiT's `last_step_size`).
///
/// **Noise** (kinflow/detail/counter_rng.hpp): the normals of column i at step n are a
/// function of `(noise_seed, id_i, n)` alone, `id_i = first_sample + i` or
/// `sample_ids[i]`: the same path whatever the thread count, tile size or batch order
/// (with ids) or shard (with `first_sample`). kinflow::sde_noise gives them.
///
/// **Energies** (per sample, split early/late like the kinetic energy, zero extra
/// evaluations), along the stochastic path: `kpe` the kinetic energy `½∫‖v‖²dt`,
/// `drift_energy` `½∫‖b‖²dt`, `control_energy` `½∫‖½ g ∇log p_t‖²dt`, the energy of the
/// control that keeps the noisy flow `dx = v dt + g dW` on the marginals; its mean is the
/// Kullback–Leibler divergence between the two path measures (Girsanov). Left-point sums
/// for one-evaluation steps, the trapezoid for sde-heun. The log-likelihood is not defined
/// for a stochastic solve: asking for it throws.

#include <Eigen/Core>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "kinflow/core/batch.hpp"
#include "kinflow/core/concepts.hpp"
#include "kinflow/core/errors.hpp"
#include "kinflow/detail/batch_callable.hpp"
#include "kinflow/detail/counter_rng.hpp"
#include "kinflow/integrators/detail/solve_extras.hpp"
#include "kinflow/integrators/detail/stochastic_steps.hpp"
#include "kinflow/integrators/diffusion.hpp"
#include "kinflow/integrators/fixed_grid.hpp"
#include "kinflow/integrators/result.hpp"
#include "kinflow/integrators/stochastic_options.hpp"
#include "kinflow/schedules/time_grid.hpp"

namespace kinflow {

/// The standard normals of noise stream @p id at step @p step (d of them): what a
/// stochastic solve with `noise_seed = seed` adds to the sample whose stream is `id`.
template <class Scalar = double>
[[nodiscard]] point<Scalar> sde_noise(std::uint64_t seed, std::uint64_t id, std::uint32_t step, Eigen::Index d) {
  point<Scalar> z(d);
  Eigen::ArrayXd scratch;
  detail::counter_normals(seed, [id](Eigen::Index) { return id; }, step, z.data(), d, 1, scratch);
  return z;
}

/// Optional extra of a field: its own score, `f.score(t, X, S)` writing `∇log p_t` of every
/// column into `S` (the closed-form empirical field has it). A stochastic solve uses it
/// instead of the conversion from the velocity when asked (score_source::field).
template <class F, class Scalar, int Dim>
concept score_field = requires(F& f, Scalar t, const batch<Scalar, Dim>& X, batch<Scalar, Dim>& S) {
  f.score(t, X, S);
};

namespace detail {

/// A field's score behind the batched reference's interface (its per-column-time form,
/// which the stochastic solves never call, evaluates column by column).
template <class Field, class Scalar, int Dim>
struct score_evaluator {
  Field& field;
  batch<Scalar, Dim> x, s;
  std::int64_t columns = 0;  ///< columns evaluated, over all calls
  void operator()(Scalar t, const batch<Scalar, Dim>& X, batch<Scalar, Dim>& S) {
    columns += X.cols();
    field.score(t, X, S);
    require_dimension("rows of the score written by the field", S.rows(), X.rows());
    require_dimension("columns of the score written by the field", S.cols(), X.cols());
  }
  void operator()(const sample_times<Scalar>& T, const batch<Scalar, Dim>& X, batch<Scalar, Dim>& S) {
    for (Eigen::Index i = 0; i < X.cols(); ++i) {
      x = X.col(i);
      (*this)(T(i), x, s);
      S.col(i) = s;
    }
  }
};

/// Checks a stochastic solve's options and grid, and returns the grid it walks (mapped
/// onto `[t₀, 1 − H]` plus the last step when a last-step size H is given).
template <class GridScalar>
time_grid<GridScalar> stochastic_grid(const stochastic_method& method, const time_grid<GridScalar>& grid,
                                      const stochastic_options& o) {
  const std::string name(method.name);
  require(!o.likelihood.enabled, "likelihood", "on",
          "expected off: the log-likelihood is not defined for a stochastic solve (" + name +
              "); use an ODE solver for it");
  o.diffusion.validate();
  require(std::isfinite(o.churn) && o.churn >= 0 && o.churn <= 1, "churn", o.churn, "expected a churn in [0, 1]");
  require(o.tile_columns >= 0, "tile_columns", o.tile_columns, "expected >= 0 (0 selects the automatic tile)");
  const std::size_t N = grid.steps();
  const double t0 = static_cast<double>(grid[0]), t1 = static_cast<double>(grid[N]);
  require(t1 > t0, "grid", "from " + to_text(t0) + " to " + to_text(t1),
          "expected a forward grid (t increasing): a stochastic solve runs from noise to data");
  require(t0 >= 0 && t1 <= 1, "grid", "from " + to_text(t0) + " to " + to_text(t1),
          "expected times in [0, 1]: the score of the linear path divides by 1 - t");
  const bool rule = o.last_step != last_step_rule::method;
  if (o.last_step == last_step_rule::denoise)
    require(t1 == 1, "last_step", "mean",
            "expected a grid that ends at t = 1 (the denoiser jump lands there); this one ends at t = " + to_text(t1));
  if (!rule && t1 == 1 && method.scheme != stochastic_scheme::renoise_euler)
    require(o.diffusion.vanishes_at_end(), "last_step", "none",
            "expected mean or euler with diffusion " + o.diffusion.text() +
                ": it does not vanish at t = 1, where the score is singular (or a form that vanishes there: "
                "sbdm, sigma, linear, decreasing, increasing-decreasing)");
  if (!o.last_step_size) return grid;
  const double H = *o.last_step_size;
  require(std::isfinite(H) && H > 0 && H < 1, "last_step_size", H, "expected a size in (0, 1)");
  require(rule, "last_step_size", H, "expected no last-step size with last_step = none (it sizes the mean and euler rules)");
  require(t1 == 1, "last_step_size", H, "expected a grid that ends at t = 1; this one ends at t = " + to_text(t1));
  require(1 - H > t0, "last_step_size", H, "expected a size below 1 - t0 = " + to_text(1 - t0));
  std::vector<GridScalar> t(N + 2);
  const double scale = (1 - H - t0) / (t1 - t0);
  for (std::size_t i = 0; i <= N; ++i) t[i] = static_cast<GridScalar>(t0 + (static_cast<double>(grid[i]) - t0) * scale);
  t[N] = static_cast<GridScalar>(1 - H);
  t[N + 1] = GridScalar(1);
  return time_grid<GridScalar>(std::move(t));
}

}  // namespace detail

/// Integrates the flow SDE over the grid with a stochastic method (kinflow::sde_euler,
/// sde_heun, renoise_euler), stepping the batch `X` (d x B) in place from its noise `x(t₀)`
/// (see the file comment for the updates, the last step, the noise and the energies).
/// Evaluations per sample: N for sde-euler and renoise-euler, 2N for sde-heun (2N − 1
/// with a last-step rule), one more step with a last-step size; with score_source::field,
/// plus the field's score passes. The trailing arguments are
/// kinflow::integrate's: integrals along the path (`kinflow::along`, carried like the
/// kinetic energy) and an observer of stochastic_step_view.
///
/// @throws kinflow::invalid_argument for the likelihood (not defined here), a negative or
///         non-finite diffusion norm, a churn outside [0, 1], a last-step size outside
///         (0, 1), a grid outside [0, 1] or backward, `last_step = none` with a diffusion
///         that does not vanish at t = 1, `sample_ids` of the wrong length, or
///         score_source::field for a field without a score.
template <class Field, class Scalar, int Dim, class GridScalar, class... Extras>
  requires velocity_field<std::remove_reference_t<Field>, Scalar, Dim>
stochastic_result<Scalar> integrate(Field&& field, const stochastic_method& method, const time_grid<GridScalar>& grid,
                                   batch<Scalar, Dim>& X, const stochastic_options& options = {}, Extras&&... extras) {
  using field_type = std::remove_reference_t<Field>;
  detail::check_fixed_grid_extras<Scalar, Dim, stochastic_step_view<Scalar, Dim>, Extras...>();
  const path_integrals<> no_integrals{};
  no_observer none;
  const auto& integrals = detail::extra_or<detail::extra_kind::integrals>(no_integrals, extras...);
  auto& observer = detail::extra_or<detail::extra_kind::observer>(none, extras...);
  const time_grid<GridScalar> steps = detail::stochastic_grid(method, grid, options);
  detail::require(options.sample_ids.empty() || static_cast<Eigen::Index>(options.sample_ids.size()) == X.cols(),
                  "sample_ids", options.sample_ids.size(),
                  "expected one noise stream id per column (" + std::to_string(X.cols()) + ") or none");
  detail::fixed_grid_core<field_type, Scalar, Dim, std::remove_cvref_t<decltype(integrals)>> core(field, steps, X,
                                                                                                 options, integrals);
  std::optional<detail::score_evaluator<field_type, Scalar, Dim>> score;
  std::optional<detail::batched_velocity_ref<Scalar, Dim>> score_ref;
  if (options.score == score_source::field) {
    if constexpr (score_field<field_type, Scalar, Dim>) {
      if (method.scheme != stochastic_scheme::renoise_euler) {
        score.emplace(detail::score_evaluator<field_type, Scalar, Dim>{field, {}, {}});
        score_ref.emplace(*score);
      }
    } else {
      throw invalid_argument(detail::invalid_message(
          "score", "field", "expected velocity: this field has no score(t, X, S) of its own"));
    }
  }
  detail::path_energy_sums<Scalar> energies(options.kpe.enabled, core.tau(), X.cols());
  const Eigen::Index cols = detail::default_tile_columns<Scalar>(options.tile_columns, 9, X.rows());
  detail::stochastic_grid_steps(core.velocity(), score_ref ? &*score_ref : nullptr, method, steps, X, options, cols,
                                core.sums(), energies, detail::observer_ref<stochastic_step_view<Scalar, Dim>>(observer));
  const std::size_t N = steps.steps();
  const bool rule = options.last_step != last_step_rule::method;
  const auto n = static_cast<std::int64_t>(N);
  std::int64_t nfe = method.scheme == stochastic_scheme::heun ? (rule ? 2 * n - 1 : 2 * n) : n;
  if (score && X.cols() > 0) nfe += score->columns / X.cols();  // the field's score passes
  stochastic_result<Scalar> result;
  static_cast<solve_result<Scalar>&>(result) = core.finish(X, nfe, N);
  result.score_from_field = score_ref.has_value();
  energies.finish(result);
  return result;
}

}  // namespace kinflow
