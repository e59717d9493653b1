#pragma once
/// @file
/// @brief The diffusion of the flow SDE: SiT's diffusion forms in kinflow's time convention,
/// and the score of the linear path from the velocity.
///
/// On the linear path `x_t = (1 − t) x₀ + t x₁`, `x₀ ~ N(0, I)`, the velocity field gives
/// the score, `∇log p_t(x) = (t·v(x, t) − x)/(1 − t)`, and for any diffusion `g(t)` the SDE
///
///     dx = [v + ½ g(t)² ∇log p_t] dt + g(t) dW,    i.e.   dx = [v + w(t) ∇log p_t] dt + √(2 w(t)) dW
///
/// has the probability-flow ODE's marginals `p_t` (docs/math.md §11). `w = ½ g²` is what
/// SiT's `compute_diffusion` returns (its sampler adds `√(2·diffusion)·dW`); the forms below
/// are SiT's for its linear path (`ICPlan`: `α_t = t`, `σ_t = 1 − t`), which already runs
/// from t = 0 (noise) to t = 1 (data), so they are written here as SiT writes them, with
/// `n` the norm (SiT's `diffusion_norm`):
///
///     constant:G              w = n·G
///     sbdm                    w = n·(1 − t)/t        (the score-based diffusion model's: σ²α̇/α − σσ̇)
///     sigma                   w = n·(1 − t)          (σ_t; equal to linear on this path)
///     linear                  w = n·(1 − t)
///     decreasing              w = n·cos⁴(πt/2) = n·¼(cos πt + 1)²
///     increasing-decreasing   w = n·sin²(πt)
///
/// (SiT writes `decreasing` as `¼(n·cos πt + 1)²`, the norm inside the square, so that its
/// norm 0 is `w = ¼`, not the ODE; here every form is scaled by the norm, equal to SiT's
/// at n = 1.) The drift needs `w·∇log p_t = c(t)·(t v − x)` with `c = w/(1 − t)`, which is
/// evaluated from its own formula (`n` for linear, `n/t` for sbdm, `n·sin⁴(π(1 − t)/2)/(1 − t)`
/// → 0 for decreasing, …) so that no `0/0` appears at t = 1 where w vanishes. `constant`
/// (and sbdm at t = 0) are infinite there: see diffusion_coefficient::score_weight.

#include <array>
#include <cmath>
#include <limits>
#include <numbers>
#include <string>
#include <string_view>

#include "kinflow/core/errors.hpp"

namespace kinflow {

/// The shape of the diffusion `w(t) = ½ g(t)²` (see the file comment).
enum class diffusion_form {
  constant,              ///< `w = n·G`
  sbdm,                  ///< `w = n·(1 − t)/t`
  sigma,                 ///< `w = n·(1 − t)`
  linear,                ///< `w = n·(1 − t)`
  decreasing,            ///< `w = n·cos⁴(πt/2)`
  increasing_decreasing  ///< `w = n·sin²(πt)`
};

/// Names of the diffusion forms, as kinflow::parse_diffusion reads them.
inline constexpr std::array<std::string_view, 6> diffusion_form_names{"constant", "sbdm", "sigma", "linear",
                                                                      "decreasing", "increasing-decreasing"};

/// The name of a form, e.g. "increasing-decreasing".
[[nodiscard]] constexpr std::string_view to_string(diffusion_form f) noexcept {
  return diffusion_form_names[static_cast<std::size_t>(f)];
}

/// The diffusion of the flow SDE: a form, its norm `n` (SiT's `diffusion_norm`) and the
/// constant form's `G`. Norm 0 is the probability-flow ODE.
struct diffusion_coefficient {
  diffusion_form form = diffusion_form::sbdm;  ///< the shape (SiT's default, SBDM)
  double norm = 1;                             ///< n ≥ 0, multiplies every form
  double constant = 1;                         ///< G ≥ 0 of `constant:G`

  /// `w(t) = ½ g(t)²`, the weight of the score in the drift; +∞ where the form is
  /// (sbdm at t = 0). 0 everywhere when the norm is 0.
  [[nodiscard]] double w(double t) const noexcept {
    if (norm == 0) return 0;
    const double tau = 1 - t;
    switch (form) {
      case diffusion_form::constant: return norm * constant;
      case diffusion_form::sbdm: return t == 0 ? infinity() : norm * tau / t;
      case diffusion_form::sigma:
      case diffusion_form::linear: return norm * tau;
      case diffusion_form::decreasing: return tau == 0 ? 0.0 : norm * pow4(std::sin(half_pi() * tau));
      case diffusion_form::increasing_decreasing: return tau == 0 || t == 0 ? 0.0 : norm * square(std::sin(pi() * tau));
    }
    return 0;
  }

  /// The noise amplitude `g(t) = √(2 w(t))`.
  [[nodiscard]] double g(double t) const noexcept { return std::sqrt(2 * w(t)); }

  /// `c(t) = w(t)/(1 − t)`, the factor of `t·v − x` in the drift (`w·∇log p_t = c·(t v − x)`),
  /// from its own formula: finite at t = 1 for the forms that vanish there (linear: n,
  /// sbdm: n, decreasing and increasing-decreasing: 0), +∞ for constant at t = 1 and for
  /// sbdm at t = 0.
  [[nodiscard]] double score_weight(double t) const noexcept {
    if (norm == 0) return 0;
    const double tau = 1 - t;
    switch (form) {
      case diffusion_form::constant: return constant == 0 ? 0.0 : (tau == 0 ? infinity() : norm * constant / tau);
      case diffusion_form::sbdm: return t == 0 ? infinity() : norm / t;
      case diffusion_form::sigma:
      case diffusion_form::linear: return norm;
      case diffusion_form::decreasing: return tau == 0 ? 0.0 : norm * pow4(std::sin(half_pi() * tau)) / tau;
      case diffusion_form::increasing_decreasing:
        return tau == 0 || t == 0 ? 0.0 : norm * square(std::sin(pi() * tau)) / tau;
    }
    return 0;
  }

  /// True when `w(1) = 0`: the score's singularity at t = 1 is then harmless (the drift's
  /// score term `c(t)·(t v − x)` stays finite) and no last-step rule is needed.
  [[nodiscard]] bool vanishes_at_end() const noexcept { return w(1) == 0; }

  /// The text kinflow::parse_diffusion reads back: "sbdm", "constant:0.5".
  [[nodiscard]] std::string text() const {
    std::string s(to_string(form));
    if (form == diffusion_form::constant) s += ":" + detail::to_text(constant);
    return s;
  }

  /// Checks the norm and G: finite and ≥ 0.
  /// @throws kinflow::invalid_argument naming `diffusion_norm` or `diffusion` (for G).
  void validate() const {
    detail::require(std::isfinite(norm) && norm >= 0, "diffusion_norm", norm,
                    "expected a finite norm >= 0 (0 is the probability-flow ODE)");
    detail::require(std::isfinite(constant) && constant >= 0, "diffusion", "constant:" + detail::to_text(constant),
                    "expected constant:G with a finite G >= 0");
  }

private:
  static constexpr double infinity() noexcept { return std::numeric_limits<double>::infinity(); }
  static constexpr double pi() noexcept { return std::numbers::pi; }
  static constexpr double half_pi() noexcept { return std::numbers::pi / 2; }
  static constexpr double square(double x) noexcept { return x * x; }
  static constexpr double pow4(double x) noexcept { return square(square(x)); }
};

/// Reads a diffusion: a form's name (kinflow::diffusion_form_names), `constant` taking an
/// optional `:G` (default 1), e.g. "sbdm", "constant:0.5", with the norm @p norm.
/// @throws kinflow::invalid_argument naming @p param for an unknown form or a bad G, or
///         `diffusion_norm` for a bad norm.
[[nodiscard]] inline diffusion_coefficient parse_diffusion(std::string_view spec, double norm = 1,
                                                           std::string_view param = "diffusion") {
  const auto colon = spec.find(':');
  const std::string_view name = spec.substr(0, colon);
  diffusion_coefficient d;
  d.norm = norm;
  bool found = false;
  for (std::size_t i = 0; i < diffusion_form_names.size(); ++i)
    if (diffusion_form_names[i] == name) {
      d.form = static_cast<diffusion_form>(i);
      found = true;
    }
  const std::string expected =
      "expected one of constant[:G], sbdm, sigma, linear, decreasing, increasing-decreasing (e.g. constant:0.5)";
  detail::require(found, param, std::string(spec), expected);
  if (colon != std::string_view::npos) {
    detail::require(d.form == diffusion_form::constant, param, std::string(spec),
                    "only constant takes a parameter (constant:G); " + expected);
    const std::string value(spec.substr(colon + 1));
    std::size_t used = 0;
    double g = -1;
    try {
      g = std::stod(value, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    detail::require(used == value.size() && !value.empty() && std::isfinite(g) && g >= 0, param, std::string(spec),
                    "expected constant:G with a finite G >= 0");
    d.constant = g;
  }
  d.validate();
  return d;
}

}  // namespace kinflow
