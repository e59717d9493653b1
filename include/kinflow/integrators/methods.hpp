#pragma once
/// @file
/// @brief The built-in methods by name, for programs that take the method as text (a
/// command line, a Python string): `visit_method("rk4", fixed, adaptive)`.
///
/// Fixed-grid methods are the Runge–Kutta tableaus (kinflow::butcher_tableau) and the
/// multistep methods (kinflow::multistep_method); kinflow::integrate takes either.

#include <array>
#include <string>
#include <string_view>
#include <utility>

#include "kinflow/core/errors.hpp"
#include "kinflow/integrators/multistep_methods.hpp"
#include "kinflow/integrators/tableau.hpp"

namespace kinflow {

/// Names of the fixed-grid Runge–Kutta methods, in order of stages.
inline constexpr std::array<std::string_view, 6> fixed_step_method_names{"euler", "midpoint", "heun", "ralston",
                                                                         "rk3", "rk4"};
/// Names of the multistep methods (fixed grids, one evaluation per step).
inline constexpr std::array<std::string_view, 6> multistep_method_names{"ab2",     "ab3",           "dpmpp2m",
                                                                        "dpmpp3m", "dpmpp3m_exact", "unipc"};
/// Names of the embedded (adaptive) methods.
inline constexpr std::array<std::string_view, 3> adaptive_method_names{"dopri5", "tsit5", "bs32"};

/// True for the name of a multistep method (kinflow::multistep_method_names).
[[nodiscard]] constexpr bool is_multistep_method(std::string_view name) noexcept {
  for (auto n : multistep_method_names)
    if (n == name) return true;
  return false;
}

/// True for the name of a fixed-grid method: Runge–Kutta (kinflow::fixed_step_method_names)
/// or multistep (kinflow::multistep_method_names).
[[nodiscard]] constexpr bool is_fixed_step_method(std::string_view name) noexcept {
  for (auto n : fixed_step_method_names)
    if (n == name) return true;
  return is_multistep_method(name);
}

/// True for the name of an embedded method (kinflow::adaptive_method_names).
[[nodiscard]] constexpr bool is_adaptive_method(std::string_view name) noexcept {
  for (auto n : adaptive_method_names)
    if (n == name) return true;
  return false;
}

/// Calls `fixed(method)` with the butcher_tableau or the multistep_method of a fixed-grid
/// method, or `adaptive(tableau)` with the embedded_tableau of an adaptive one, and
/// returns what it returns (all must return the same type). An unknown name throws
/// kinflow::invalid_argument naming @p param and the valid names.
template <class Fixed, class Adaptive>
decltype(auto) visit_method(std::string_view name, Fixed&& fixed, Adaptive&& adaptive,
                            std::string_view param = "method") {
  if (name == "euler") return std::forward<Fixed>(fixed)(euler);
  if (name == "midpoint") return std::forward<Fixed>(fixed)(midpoint);
  if (name == "heun") return std::forward<Fixed>(fixed)(heun);
  if (name == "ralston") return std::forward<Fixed>(fixed)(ralston);
  if (name == "rk3") return std::forward<Fixed>(fixed)(rk3);
  if (name == "rk4") return std::forward<Fixed>(fixed)(rk4);
  if (name == "ab2") return std::forward<Fixed>(fixed)(ab2);
  if (name == "ab3") return std::forward<Fixed>(fixed)(ab3);
  if (name == "dpmpp2m") return std::forward<Fixed>(fixed)(dpmpp2m);
  if (name == "dpmpp3m") return std::forward<Fixed>(fixed)(dpmpp3m);
  if (name == "dpmpp3m_exact") return std::forward<Fixed>(fixed)(dpmpp3m_exact);
  if (name == "unipc") return std::forward<Fixed>(fixed)(unipc);
  if (name == "dopri5") return std::forward<Adaptive>(adaptive)(dopri5);
  if (name == "tsit5") return std::forward<Adaptive>(adaptive)(tsit5);
  if (name == "bs32") return std::forward<Adaptive>(adaptive)(bs32);
  throw invalid_argument(detail::invalid_message(
      param, std::string(name),
      "expected one of euler, midpoint, heun, ralston, rk3, rk4 (Runge-Kutta, fixed grid), ab2, ab3, dpmpp2m, "
      "dpmpp3m, dpmpp3m_exact, unipc (multistep, fixed grid), dopri5, tsit5, bs32 (adaptive)"));
}

}  // namespace kinflow
