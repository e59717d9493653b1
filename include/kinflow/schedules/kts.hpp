#pragma once
/// @file
/// @brief Kinetic Trajectory Shaping (KTS): the velocity gain `η(t)` of the paper's
/// training-free sampler fix.
///
/// KTS integrates `dx/dt = η(t)·v(x, t)` instead of `dx/dt = v(x, t)`: an early boost
/// ("launch", `η > 1` before `τ`) and a late soft landing (`η < 1` after `τ`).
///
///     t < τ :  η(t) = 1 + α(t),  r = t/τ
///              linear (default):  α = α0·(1 - r)
///              constant:          α = α0
///              exponential:       α = α0·(e^{k(1-r)} - 1)/(e^k - 1)
///     t ≥ τ :  η(t) = 1 - β(t),  u = (t - τ)/(1 - τ)        (u = 0 when τ = 1)
///              exponential (default): β = β0·(e^{k·u} - 1)
///              linear:                β = β0·u
///              constant:              β = β0
///
/// Defaults `α0 = β0 = 0` (KTS off: `η ≡ 1` exactly), `τ = 0.6`, `k = 3`; the paper's
/// balanced setting is `α0 = β0 = 0.01, τ = 0.6` (kts_gain::balanced()).
///
/// **KTS rescales the velocity; it is not a time reparameterisation.** The field is still
/// evaluated at the true time `t`, and the total "speed budget" is
///
///     ∫₀¹ η dt = 1 + τ·Ā - (1 - τ)·B̄,
///       Ā = α0/2 (linear), α0 (constant), α0·(1/k - 1/(e^k - 1)) (exponential)
///       B̄ = β0·((e^k - 1)/k - 1) (exponential), β0/2 (linear), β0 (constant)
///
/// which is not 1 in general, so the landing point moves. For a field that does not depend
/// on time, `x' = η(t)·v(x)` is `x' = v(x)` run for the time `∫₀¹ η dt` instead of 1; for
/// `v = -x` the end point is `x0·e^{-∫η}`. See docs/kts.md for the discussion, including how
/// applying `η` at every Runge–Kutta stage (what kinflow::shaped does) differs from the
/// reference Heun sampler, which averages `η` over the step.
///
/// Divisions by `τ` and `1 - τ` are guarded: `r` is only formed where `t < τ` (so `τ > 0`),
/// `u` only where `1 - τ > 0` (else `u = 0`), and both are clamped to [0, 1]. Hence
/// `τ = 0` (no launch phase) and `τ = 1` (no landing phase but the single point `t = 1`)
/// are exact. Times outside [0, 1] are clamped to it.
///
/// `η` is monotone in each phase and `α ≥ 0`, so its minimum over [0, 1] is `η(1)`:
/// `1 - β0·(e^k - 1)` for the exponential landing (negative when `β0 > 1/(e^k - 1)`,
/// ≈ 0.0524 for `k = 3`), `1 - β0` for the linear and constant ones (`τ = 1`: `1` and
/// `1 - β0`). Parameters that make `η` negative anywhere are rejected unless
/// kts_options::allow_negative is set.

#include <algorithm>
#include <cmath>
#include <concepts>
#include <limits>
#include <string>

#include "kinflow/core/batch.hpp"
#include "kinflow/core/errors.hpp"

namespace kinflow {

/// Shape of one KTS phase: of the launch boost `α(t)` before `τ` or of the landing
/// brake `β(t)` after it (see the file comment for the formulas).
enum class kts_form {
  linear,      ///< launch `α0·(1 - t/τ)`; landing `β0·u`
  constant,    ///< launch `α0`; landing `β0`
  exponential  ///< launch `α0·(e^{k(1-t/τ)} - 1)/(e^k - 1)`; landing `β0·(e^{k·u} - 1)`
};

/// Name of a form, e.g. "exponential".
[[nodiscard]] constexpr const char* to_string(kts_form f) noexcept {
  switch (f) {
    case kts_form::linear: return "linear";
    case kts_form::constant: return "constant";
    case kts_form::exponential: return "exponential";
  }
  return "unknown";
}

/// Parameters of a KTS gain. Aggregate, so that designated initialisers read well:
/// `kinflow::kts_gain g({.alpha0 = 0.01, .beta0 = 0.01});`
struct kts_options {
  double alpha0 = 0;   ///< launch strength, >= 0 (0: no launch boost)
  double beta0 = 0;    ///< landing strength, >= 0 (0: no soft landing)
  double tau = 0.6;    ///< switch time between launch and landing, in [0, 1]
  double k = 3;        ///< steepness of the exponential forms, > 0
  kts_form early_form = kts_form::linear;      ///< shape of the launch boost `α`
  kts_form late_form = kts_form::exponential;  ///< shape of the landing brake `β`
  /// Accept parameters for which `η` turns negative somewhere on [0, 1] (the flow then
  /// runs backwards near the data end). Off by default: such settings are rejected.
  bool allow_negative = false;
};

namespace detail {

/// `ψ(z) = e^z - 1 - z` for `z >= 0`, without cancellation for small `z`.
template <class T>
T expm1_minus_id(T z) {
  if (z < T(0.5)) {
    // z²/2! + z³/3! + ...; at z < 1/2 the 18th term is below 1e-19 of the first.
    T term = z * z / T(2), sum = term;
    for (int n = 3; n < 22; ++n) {
      term *= z / T(n);
      sum += term;
      if (term <= sum * std::numeric_limits<T>::epsilon()) break;
    }
    return sum;
  }
  return std::expm1(z) - z;
}

/// `∫₀^r (e^{k(1-s)} - 1)/(e^k - 1) ds` for `r ∈ [0, 1]`, `k > 0`: the exponential launch
/// shape's integral. Two forms, each free of overflow and cancellation where it is used.
template <class T>
T exponential_launch_integral(T r, T k) {
  if (k < T(1)) return (expm1_minus_id(k) - expm1_minus_id(k * (T(1) - r))) / (k * std::expm1(k));
  return std::expm1(-k * r) / (k * std::expm1(-k)) - r / std::expm1(k);
}

}  // namespace detail

/// The KTS gain `η(t)` (see the file comment): a small, validated value type.
///
/// @code
///   kinflow::kts_gain gain({.alpha0 = 0.01, .beta0 = 0.01});   // the paper's balanced setting
///   double eta = gain(0.3);                                    // η(0.3)
///   double budget = gain.integral();                           // ∫₀¹ η dt
///   auto r = kinflow::integrate(kinflow::shaped(field, gain), kinflow::euler, grid, X);
/// @endcode
class kts_gain {
public:
  /// The identity gain `η ≡ 1` (KTS off).
  kts_gain() = default;

  /// A gain with the given parameters.
  /// @throws kinflow::invalid_argument unless `alpha0, beta0` are finite and `>= 0`,
  ///   `tau ∈ [0, 1]`, `k` is finite and `> 0`, and `η >= 0` on [0, 1] (or
  ///   `allow_negative` is set). The message names the parameter, its value and the
  ///   valid range.
  kts_gain(const kts_options& options) : o_(options) { validate(); }  // NOLINT: implicit on purpose

  /// The paper's balanced setting: `α0 = β0 = 0.01`, `τ = 0.6`, `k = 3`, linear launch,
  /// exponential landing.
  [[nodiscard]] static kts_gain balanced() { return kts_gain(kts_options{.alpha0 = 0.01, .beta0 = 0.01}); }

  /// `η(t)`, computed in the type of `t`. Exactly 1 when `alpha0 = beta0 = 0`.
  template <std::floating_point T>
  [[nodiscard]] T operator()(T t) const {
    t = std::clamp(t, T(0), T(1));
    const auto tau = static_cast<T>(o_.tau);
    if (t < tau) return T(1) + launch(t / tau);
    return T(1) - landing(landing_position(t));
  }

  /// `η(t)` for an integer time (0 or 1), computed in double.
  template <std::integral I>
  [[nodiscard]] double operator()(I t) const {
    return (*this)(static_cast<double>(t));
  }

  /// `H(t) = ∫₀ᵗ η(s) ds` in closed form (t clamped to [0, 1]). With `r = min(t, τ)/τ` and
  /// `u` the landing position of `t` (0 before `τ`):
  ///
  ///     H(t) = t + τ·A(r) - (1 - τ)·B(u)
  ///     A(r) = α0·(r - r²/2)                                   linear
  ///            α0·r                                            constant
  ///            α0·∫₀^r (e^{k(1-s)} - 1)/(e^k - 1) ds           exponential
  ///          = α0·[(e^k - e^{k(1-r)})/k - r]/(e^k - 1)
  ///     B(u) = β0·(e^{k·u} - 1 - k·u)/k                         exponential
  ///            β0·u²/2                                         linear
  ///            β0·u                                            constant
  ///
  /// evaluated without cancellation for small `k` and without overflow for large `k`.
  template <std::floating_point T>
  [[nodiscard]] T cumulative(T t) const {
    t = std::clamp(t, T(0), T(1));
    const auto tau = static_cast<T>(o_.tau);
    T h = t;
    if (tau > T(0)) h += tau * launch_integral(std::min(t, tau) / tau);
    if (t > tau && tau < T(1)) h -= (T(1) - tau) * landing_integral(landing_position(t));
    return h;
  }

  /// `∫₀¹ η dt = 1 + τ·Ā - (1 - τ)·B̄` with `Ā = A(1)`, `B̄ = B(1)` of cumulative():
  ///
  ///     Ā = α0/2 (linear),  α0 (constant),  α0·(1/k - 1/(e^k - 1)) (exponential)
  ///     B̄ = β0·((e^k - 1)/k - 1) (exponential),  β0/2 (linear),  β0 (constant)
  ///
  /// This is the time a time-independent field is effectively run for; it differs from 1
  /// whenever KTS is on (≈ 0.98155 for the balanced setting), which is why KTS moves
  /// the landing point.
  template <std::floating_point T = double>
  [[nodiscard]] T integral() const {
    return cumulative(T(1));
  }

  /// `min η` over [0, 1], exactly: `η(1)` (see the file comment).
  [[nodiscard]] double min_gain() const { return (*this)(1.0); }

  /// True when `η ≡ 1` (`alpha0 = beta0 = 0`): shaping changes nothing.
  [[nodiscard]] bool is_identity() const noexcept { return o_.alpha0 == 0 && o_.beta0 == 0; }

  /// The parameters.
  [[nodiscard]] const kts_options& options() const noexcept { return o_; }
  [[nodiscard]] double alpha0() const noexcept { return o_.alpha0; }  ///< launch strength
  [[nodiscard]] double beta0() const noexcept { return o_.beta0; }    ///< landing strength
  [[nodiscard]] double tau() const noexcept { return o_.tau; }        ///< switch time
  [[nodiscard]] double k() const noexcept { return o_.k; }            ///< steepness
  [[nodiscard]] kts_form early_form() const noexcept { return o_.early_form; }  ///< launch shape
  [[nodiscard]] kts_form late_form() const noexcept { return o_.late_form; }    ///< landing shape

private:
  // Position within the landing phase, u ∈ [0, 1]; 0 when the phase is the point t = 1.
  template <class T>
  T landing_position(T t) const {
    const T tau = static_cast<T>(o_.tau), span = T(1) - tau;
    if (!(span > T(0))) return T(0);
    return std::clamp((t - tau) / span, T(0), T(1));
  }

  // α at r = t/τ ∈ [0, 1).
  template <class T>
  T launch(T r) const {
    if (o_.alpha0 == 0) return T(0);
    const auto a = static_cast<T>(o_.alpha0), k = static_cast<T>(o_.k);
    switch (o_.early_form) {
      case kts_form::linear: return a * (T(1) - r);
      case kts_form::constant: return a;
      case kts_form::exponential:
        // (e^{k(1-r)} - 1)/(e^k - 1) = e^{-kr}·(e^{-k(1-r)} - 1)/(e^{-k} - 1): no overflow.
        return a * std::exp(-k * r) * std::expm1(-k * (T(1) - r)) / std::expm1(-k);
    }
    return T(0);
  }

  // β at u ∈ [0, 1].
  template <class T>
  T landing(T u) const {
    if (o_.beta0 == 0) return T(0);
    const auto b = static_cast<T>(o_.beta0), k = static_cast<T>(o_.k);
    switch (o_.late_form) {
      case kts_form::exponential: return b * std::expm1(k * u);
      case kts_form::linear: return b * u;
      case kts_form::constant: return b;
    }
    return T(0);
  }

  // A(r) = ∫₀^r α(τ s) ds.
  template <class T>
  T launch_integral(T r) const {
    if (o_.alpha0 == 0) return T(0);
    const auto a = static_cast<T>(o_.alpha0), k = static_cast<T>(o_.k);
    switch (o_.early_form) {
      case kts_form::linear: return a * (r - r * r / T(2));
      case kts_form::constant: return a * r;
      case kts_form::exponential: return a * detail::exponential_launch_integral(r, k);
    }
    return T(0);
  }

  // B(u) = ∫₀^u β(s) ds.
  template <class T>
  T landing_integral(T u) const {
    if (o_.beta0 == 0) return T(0);
    const auto b = static_cast<T>(o_.beta0), k = static_cast<T>(o_.k);
    switch (o_.late_form) {
      case kts_form::exponential: return b * detail::expm1_minus_id(k * u) / k;
      case kts_form::linear: return b * u * u / T(2);
      case kts_form::constant: return b * u;
    }
    return T(0);
  }

  static bool valid_form(kts_form f) {
    return f == kts_form::linear || f == kts_form::constant || f == kts_form::exponential;
  }

  void validate() const {
    using detail::require;
    require(std::isfinite(o_.alpha0) && o_.alpha0 >= 0, "alpha0", o_.alpha0, "expected a finite value >= 0");
    require(std::isfinite(o_.beta0) && o_.beta0 >= 0, "beta0", o_.beta0, "expected a finite value >= 0");
    require(o_.tau >= 0 && o_.tau <= 1, "tau", o_.tau, "expected a value in [0, 1]");
    require(std::isfinite(o_.k) && o_.k > 0, "k", o_.k, "expected a finite value > 0");
    require(valid_form(o_.early_form), "early_form", static_cast<int>(o_.early_form),
            "expected kts_form::linear, constant or exponential");
    require(valid_form(o_.late_form), "late_form", static_cast<int>(o_.late_form),
            "expected kts_form::linear, constant or exponential");
    if (o_.allow_negative) return;
    const double eta_min = min_gain();
    if (eta_min >= 0) return;
    std::string bound;
    if (o_.late_form == kts_form::exponential)
      bound = "beta0 <= 1/(e^k - 1) = " + detail::to_text(1 / std::expm1(o_.k)) +
              " for the exponential landing with k = " + detail::to_text(o_.k);
    else
      bound = std::string("beta0 <= 1 for the ") + to_string(o_.late_form) + " landing";
    require(false, "beta0", o_.beta0,
            "expected " + bound + ": it makes eta(1) = " + detail::to_text(eta_min) +
                " < 0 (set kts_options::allow_negative to accept a negative gain)");
  }

  kts_options o_{};
};

}  // namespace kinflow
