#pragma once
/// @file
/// @brief Step-size controllers of adaptive solves: the integral (I) controller, the
/// proportional–integral (PI) controller, and the concept a user's own controller meets.
///
/// An adaptive solve measures, per sample and attempted step, the scaled error norm
/// `err` (accept when `err <= 1`, see kinflow/integrators/adaptive.hpp) and asks the
/// controller for the factor by which to multiply the step that was just tried:
///
///     factor = controller.next_factor(err, accepted, order, memory)
///
/// `order` is `q̂ + 1` for an embedded estimate of order `q̂`; `memory` is the controller's
/// state for that one sample (each sample has its own, as each has its own step size), and
/// `err` is +∞ for a step whose result was not finite. The solve clamps the new step to
/// `dt_max`, to the next breakpoint and to the end, and stops a sample whose step falls below
/// `dt_min`; the tolerances, limits and breakpoints stay in kinflow::adaptive_options.
///
///  - kinflow::i_controller: `factor = clamp(safety·err^(-1/order), factor_min, factor_max)`,
///    not above 1 right after a rejection (Hairer, Nørsett & Wanner I, §II.4). The default,
///    and the reference sampler's.
///  - kinflow::pi_controller: `factor = safety·err^(-β₁/order)·err_prev^(β₂/order)`, clamped
///    the same way, with `err_prev` the error of the sample's last accepted step (Gustafsson;
///    Hairer & Wanner II, §IV.2, with Gustafsson's β₁ = 0.7, β₂ = 0.4). The memory of
///    the previous error damps the step-size oscillation the I controller shows when the
///    step is limited by stability rather than accuracy, and usually saves rejected steps.

#include <algorithm>
#include <cmath>
#include <concepts>

#include "kinflow/core/errors.hpp"

namespace kinflow {

/// A step-size controller (see the file comment): a copyable policy with a per-sample
/// `memory` type and `next_factor(err, accepted, order, memory) -> double`.
template <class C>
concept step_size_controller =
    std::copy_constructible<C> && std::default_initializable<typename C::memory> &&
    requires(const C& c, double err, bool accepted, int order, typename C::memory& m) {
      { c.next_factor(err, accepted, order, m) } -> std::convertible_to<double>;
    };

/// The integral controller: the step grows or shrinks with `err^(-1/order)`.
struct i_controller {
  double safety = 0.9;      ///< safety factor, in (0, 1]
  double factor_min = 0.2;  ///< smallest step ratio, in (0, 1)
  double factor_max = 10;   ///< largest step ratio, > 1

  /// Per-sample state: whether the last attempt was rejected.
  struct memory {
    bool rejected_last = false;  ///< the previous attempt was rejected
  };

  /// The factor for the next step (see the file comment).
  [[nodiscard]] double next_factor(double err, bool accepted, int order, memory& m) const {
    const double expo = -1.0 / order;
    double factor;
    if (accepted) {
      factor = err == 0 ? factor_max : safety * std::pow(err, expo);
      factor = std::clamp(factor, factor_min, factor_max);
      if (m.rejected_last) factor = std::min(factor, 1.0);
    } else {
      factor = std::isfinite(err) ? std::max(factor_min, safety * std::pow(err, expo)) : factor_min;
    }
    m.rejected_last = !accepted;
    return factor;
  }

  /// Checks the parameters; errors name the field and its valid range.
  void validate() const {
    detail::require(safety > 0 && safety <= 1, "safety", safety, "expected a value in (0, 1]");
    detail::require(factor_min > 0 && factor_min < 1, "factor_min", factor_min, "expected a value in (0, 1)");
    detail::require(std::isfinite(factor_max) && factor_max > 1, "factor_max", factor_max,
                    "expected a finite value > 1");
  }
};

/// The proportional–integral controller (see the file comment).
struct pi_controller {
  double beta1 = 0.7;       ///< weight of the current error, > 0
  double beta2 = 0.4;       ///< weight of the previous accepted error, in [0, beta1)
  double safety = 0.9;      ///< safety factor, in (0, 1]
  double factor_min = 0.2;  ///< smallest step ratio, in (0, 1)
  double factor_max = 10;   ///< largest step ratio, > 1

  /// Per-sample state: the previous accepted error and whether the last attempt failed.
  struct memory {
    double err_prev = 1;         ///< error norm of the last accepted step (1 before any)
    bool rejected_last = false;  ///< the previous attempt was rejected
  };

  /// The factor for the next step (see the file comment). A rejected step shrinks as the
  /// I controller would (the previous error says nothing about a failed attempt).
  [[nodiscard]] double next_factor(double err, bool accepted, int order, memory& m) const {
    double factor;
    if (accepted) {
      // A tiny error (a step that could grow a lot) is floored so the power stays finite.
      const double e = std::max(err, 1e-10);
      factor = safety * std::pow(e, -beta1 / order) * std::pow(m.err_prev, beta2 / order);
      factor = std::clamp(factor, factor_min, factor_max);
      if (m.rejected_last) factor = std::min(factor, 1.0);
      m.err_prev = e;
    } else {
      factor = std::isfinite(err) ? std::max(factor_min, safety * std::pow(err, -1.0 / order)) : factor_min;
    }
    m.rejected_last = !accepted;
    return factor;
  }

  /// Checks the parameters; errors name the field and its valid range.
  void validate() const {
    detail::require(std::isfinite(beta1) && beta1 > 0, "beta1", beta1, "expected a finite value > 0");
    detail::require(beta2 >= 0 && beta2 < beta1, "beta2", beta2, "expected a value in [0, beta1)");
    detail::require(safety > 0 && safety <= 1, "safety", safety, "expected a value in (0, 1]");
    detail::require(factor_min > 0 && factor_min < 1, "factor_min", factor_min, "expected a value in (0, 1)");
    detail::require(std::isfinite(factor_max) && factor_max > 1, "factor_max", factor_max,
                    "expected a finite value > 1");
  }
};

namespace detail {
/// Validates a controller that offers `validate()`; user controllers need not.
template <class C>
void validate_controller(const C& c) {
  if constexpr (requires { c.validate(); }) c.validate();
}
}  // namespace detail

}  // namespace kinflow
