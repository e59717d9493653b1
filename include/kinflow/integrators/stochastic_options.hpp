#pragma once
/// @file
/// @brief The stochastic methods by name, their options, what their observers see and what
/// a stochastic solve returns (the solve itself: kinflow/integrators/stochastic.hpp).

#include <Eigen/Core>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "kinflow/core/batch.hpp"
#include "kinflow/core/errors.hpp"
#include "kinflow/energy/kpe.hpp"
#include "kinflow/integrators/diffusion.hpp"
#include "kinflow/integrators/fixed_grid.hpp"
#include "kinflow/integrators/result.hpp"

namespace kinflow {

/// The update of a stochastic method (kinflow/integrators/stochastic.hpp).
enum class stochastic_scheme {
  euler_maruyama,  ///< `x' = x + h b + g√h ξ`
  heun,            ///< weak order 2.0 predictor–corrector for additive noise
  renoise_euler    ///< `x' = t' x̂₁ + (1 − t')(√(1 − η²) x̂₀ + η ξ)`
};

/// A stochastic method: its update and its name.
struct stochastic_method {
  stochastic_scheme scheme;  ///< the update
  std::string_view name;     ///< e.g. "sde-euler"
};

/// Euler–Maruyama, weak order 1.
inline constexpr stochastic_method sde_euler{stochastic_scheme::euler_maruyama, "sde-euler"};
/// The stochastic Heun predictor–corrector, weak order 2 (additive noise).
inline constexpr stochastic_method sde_heun{stochastic_scheme::heun, "sde-heun"};
/// The re-noising Euler step of image pipelines, with a churn.
inline constexpr stochastic_method renoise_euler{stochastic_scheme::renoise_euler, "renoise-euler"};

/// Names of the stochastic methods.
inline constexpr std::array<std::string_view, 3> stochastic_method_names{"sde-euler", "sde-heun", "renoise-euler"};

/// True for the name of a stochastic method (kinflow::stochastic_method_names).
[[nodiscard]] constexpr bool is_stochastic_method(std::string_view name) noexcept {
  for (auto n : stochastic_method_names)
    if (n == name) return true;
  return false;
}

/// The stochastic method of a name.
/// @throws kinflow::invalid_argument naming @p param and the valid names.
[[nodiscard]] inline stochastic_method stochastic_method_by_name(std::string_view name,
                                                                 std::string_view param = "method") {
  for (const stochastic_method& m : {sde_euler, sde_heun, renoise_euler})
    if (m.name == name) return m;
  throw invalid_argument(
      detail::invalid_message(param, std::string(name), "expected one of sde-euler, sde-heun, renoise-euler"));
}

/// Where the score of a stochastic solve comes from.
enum class score_source {
  /// The conversion `∇log p_t = (t v − x)/(1 − t)` from the velocity already evaluated (no
  /// extra evaluation; exact for an exact field of the linear path; a shaped field's η·v
  /// gives the score of the shaped field). The default.
  velocity,
  /// The field's own `score(t, X, S)` (kinflow::score_field: the exact empirical field),
  /// one more pass of the field per stage, counted in the NFE; right where the conversion
  /// is not (the empirical field with `σ_min > 0`). A field without one is an error.
  field
};

/// Options of a stochastic solve: those of a fixed-grid solve (the kinetic energy and its
/// split, tiles, the last step, progress; the likelihood must stay off; `kernel` and
/// `start` do not apply) and the SDE's own.
struct stochastic_options : fixed_step_options {
  /// The diffusion `w(t) = ½ g(t)²` (sde-euler and sde-heun; renoise-euler uses `churn`).
  diffusion_coefficient diffusion{};
  /// The seed of every sample's noise stream.
  std::uint64_t noise_seed = 0;
  /// The noise stream of column i is `first_sample + i` (a shard of a larger batch passes
  /// the index of its first column), unless sample_ids is given.
  std::uint64_t first_sample = 0;
  /// One noise stream id per column (empty: `first_sample + i`): the same sample gets the
  /// same path in any batch order. Must outlive the solve.
  std::span<const std::uint64_t> sample_ids{};
  /// With a last-step rule (mean or euler): the size H of the last step, from `1 − H` to 1,
  /// the grid mapped onto `[t₀, 1 − H]` before it (SiT's `last_step_size`). Unset: the
  /// grid's own last step.
  std::optional<double> last_step_size{};
  /// renoise-euler: the share η ∈ [0, 1] of fresh noise in the re-noised `ε`
  /// (1: diffusers' stochastic sampling, 0: the Euler step).
  double churn = 1;
  /// Where the score comes from (by default the conversion from the velocity).
  score_source score = score_source::velocity;
};

/// What an observer of a stochastic solve sees after each step over `[t, t + dt]`.
template <class Scalar, int Dim>
struct stochastic_step_view {
  std::size_t step;                 ///< index n of the step `[t_n, t_{n+1}]`
  Scalar t;                         ///< `t_n`, the step's start
  Scalar dt;                        ///< `t_{n+1} − t_n`
  const batch<Scalar, Dim>& x;      ///< the state at `t_{n+1}` (already updated)
  const batch<Scalar, Dim>& v;      ///< the velocity at the step's start
  const batch<Scalar, Dim>& noise;  ///< the step's standard normals ξ (empty for a step without noise: a last-step rule, g = 0)
  const stochastic_method& method;  ///< the method
  bool rule = false;                ///< true for a step a last-step rule took
};

/// What a stochastic solve returns: the fields of solve_result (`kpe` is the kinetic energy
/// `½∫‖v‖²dt` along the stochastic path; `log_likelihood` stays empty) and the path's two
/// other energies, each split early/late at the same τ.
template <class Scalar>
struct stochastic_result : solve_result<Scalar> {
  kinetic_energy<Scalar> drift_energy;    ///< `½∫‖v + w ∇log p_t‖²dt` (the SDE's drift)
  kinetic_energy<Scalar> control_energy;  ///< `½∫‖½ g ∇log p_t‖²dt` (Girsanov's control)
  bool score_from_field = false;          ///< the field's own score was used (score_source)
};

}  // namespace kinflow
