#pragma once
/// @file
/// @brief Explicit Runge–Kutta methods as Butcher tableaus (data), run by one kernel.
///
/// A method with S stages advances `x' = v(t, x)` over a step `h` from `(t, x)`:
///     k_j = v(t + c_j h, x + h Σ_{l<j} a_{jl} k_l),   x_new = x + h Σ_j b_j k_j.
/// Embedded pairs carry a second weight row `b̂` whose solution `x + h Σ b̂_j k_j` is of
/// lower order; `x_new - x̂_new = h Σ (b_j - b̂_j) k_j` is the local error estimate.

#include <array>
#include <cstddef>
#include <string_view>

namespace kinflow {

/// An explicit Runge–Kutta method with S stages: coefficients `a` (strictly lower
/// triangular), weights `b`, nodes `c`, and its classical order.
template <std::size_t S>
struct butcher_tableau {
  static constexpr std::size_t stages = S;  ///< number of stages (field evaluations per step)
  std::array<std::array<long double, S>, S> a{};  ///< a[j][l], l < j
  std::array<long double, S> b{};                 ///< weights of the propagated solution
  std::array<long double, S> c{};                 ///< nodes: stage j is evaluated at t + c_j h
  int order = 0;                                  ///< classical order of the propagated solution
  std::string_view name;                          ///< short name, e.g. "rk4"
};

/// An embedded explicit Runge–Kutta pair for adaptive stepping: the propagated weights
/// `b` (order `order`) and the embedded weights `b_hat` (order `embedded_order`).
/// `fsal` marks first-same-as-last methods: the last stage is evaluated at the new
/// point and reused as the first stage of the next step.
template <std::size_t S>
struct embedded_tableau : butcher_tableau<S> {
  std::array<long double, S> b_hat{};  ///< weights of the embedded (error-estimating) solution
  int embedded_order = 0;              ///< order of the embedded solution
  bool fsal = false;                   ///< first stage of a step = last stage of the previous
};

/// Forward Euler, order 1: `x_new = x + h v(t, x)`.
inline constexpr butcher_tableau<1> euler{{{{0}}}, {1}, {0}, 1, "euler"};

/// Explicit midpoint rule, order 2.
inline constexpr butcher_tableau<2> midpoint{{{{0, 0}, {0.5L, 0}}}, {0, 1}, {0, 0.5L}, 2, "midpoint"};

/// Heun's method (explicit trapezoid), order 2.
inline constexpr butcher_tableau<2> heun{{{{0, 0}, {1, 0}}}, {0.5L, 0.5L}, {0, 1}, 2, "heun"};

/// Ralston's second-order method (minimum error bound among 2-stage order-2 methods).
inline constexpr butcher_tableau<2> ralston{
    {{{0, 0}, {2.0L / 3, 0}}}, {0.25L, 0.75L}, {0, 2.0L / 3}, 2, "ralston"};

/// The classical fourth-order Runge–Kutta method.
inline constexpr butcher_tableau<4> rk4{
    {{{0, 0, 0, 0}, {0.5L, 0, 0, 0}, {0, 0.5L, 0, 0}, {0, 0, 1, 0}}},
    {1.0L / 6, 1.0L / 3, 1.0L / 3, 1.0L / 6},
    {0, 0.5L, 0.5L, 1},
    4,
    "rk4"};

/// Dormand–Prince 5(4) (Dormand & Prince 1980): 7 stages, FSAL, 5th-order propagation,
/// 4th-order embedded estimate. The default adaptive method.
inline constexpr embedded_tableau<7> dopri5{
    {{{{0, 0, 0, 0, 0, 0, 0},
       {1.0L / 5, 0, 0, 0, 0, 0, 0},
       {3.0L / 40, 9.0L / 40, 0, 0, 0, 0, 0},
       {44.0L / 45, -56.0L / 15, 32.0L / 9, 0, 0, 0, 0},
       {19372.0L / 6561, -25360.0L / 2187, 64448.0L / 6561, -212.0L / 729, 0, 0, 0},
       {9017.0L / 3168, -355.0L / 33, 46732.0L / 5247, 49.0L / 176, -5103.0L / 18656, 0, 0},
       {35.0L / 384, 0, 500.0L / 1113, 125.0L / 192, -2187.0L / 6784, 11.0L / 84, 0}}},
     {35.0L / 384, 0, 500.0L / 1113, 125.0L / 192, -2187.0L / 6784, 11.0L / 84, 0},
     {0, 1.0L / 5, 3.0L / 10, 4.0L / 5, 8.0L / 9, 1, 1},
     5,
     "dopri5"},
    {5179.0L / 57600, 0, 7571.0L / 16695, 393.0L / 640, -92097.0L / 339200, 187.0L / 2100,
     1.0L / 40},
    4,
    true};

/// Bogacki–Shampine 3(2): 4 stages, FSAL, 3rd-order propagation, 2nd-order estimate.
/// Cheaper than Dormand–Prince at loose tolerances.
inline constexpr embedded_tableau<4> bs32{
    {{{{0, 0, 0, 0}, {0.5L, 0, 0, 0}, {0, 0.75L, 0, 0}, {2.0L / 9, 1.0L / 3, 4.0L / 9, 0}}},
     {2.0L / 9, 1.0L / 3, 4.0L / 9, 0},
     {0, 0.5L, 0.75L, 1},
     3,
     "bs32"},
    {7.0L / 24, 0.25L, 1.0L / 3, 0.125L},
    2,
    true};

}  // namespace kinflow
