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

/// Kutta's third-order method (1901): `k_1 = v(t, x)`, `k_2 = v(t + h/2, x + h k_1/2)`,
/// `k_3 = v(t + h, x − h k_1 + 2h k_2)`, `x_new = x + h (k_1 + 4 k_2 + k_3)/6`.
inline constexpr butcher_tableau<3> rk3{
    {{{0, 0, 0}, {0.5L, 0, 0}, {-1, 2, 0}}}, {1.0L / 6, 2.0L / 3, 1.0L / 6}, {0, 0.5L, 1}, 3, "rk3"};

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

/// Tsitouras 5(4) (Ch. Tsitouras, "Runge–Kutta pairs of order 5(4) satisfying only the first
/// column simplifying assumption", Comput. Math. Appl. 62 (2011) 770–775): 7 stages, FSAL,
/// 5th-order propagation, 4th-order embedded estimate; smaller error constants than
/// Dormand–Prince for the same cost per step.
///
/// The coefficients have no closed form. The paper prints them as 16-digit decimals (the
/// error weights `b - b̂` to 15 decimals), which satisfy the order conditions only to ~1e-15.
/// The digits below are the same solution of the order conditions at high precision (as
/// tabulated with 85 digits in DiffEqDevTools' BigFloat Tsit5 tableau, reproduced by diffrax
/// and rklib), rounded to 36 significant digits: every one rounds to the paper's printed
/// value, and in 100-digit arithmetic the row sums and all order conditions of `b` (order 5)
/// and `b̂` (order 4) hold to 1e-82. `a[j][0] = c[j] - Σ_{l>0} a[j][l]`. `b̂` is written as
/// `b - e` with `e` the paper's error weights (so `b̂_7 = +1/66`).
inline constexpr embedded_tableau<7> tsit5{
    {{{{0, 0, 0, 0, 0, 0, 0},
       {0.161L, 0, 0, 0, 0, 0, 0},
       {-0.00848065549235698854442687425023077468L, 0.335480655492356988544426874250230775L, 0, 0,
        0, 0, 0},
       {2.89715305710549343213043259419293876L, -6.35944848997507484314815991238382563L,
        4.36229543286958141101772731819088686L, 0, 0, 0, 0},
       {5.32586482843925660442887792084051132L, -11.748883564062827877747170339785773L,
        7.49553934288983620830460478456435816L, -0.0924950663617552492565020793320719161L, 0, 0, 0},
       {5.86145544294642002865925148698264789L, -12.9209693178471092917061186817833594L,
        8.15936789857615864318040079453925349L, -0.0715849732814009972245305425258297387L,
        -0.0282690503940683829090030572127122415L, 0, 0},
       {0.0964607668180652295181673131651287633L, 0.01L, 0.47988965041449957477524953229059652L,
        1.37900857410374189319227482185687277L, -3.29006951543608067990104758571136385L,
        2.3247105240997739824153559183987658L, 0}}},
     {0.0964607668180652295181673131651287633L, 0.01L, 0.47988965041449957477524953229059652L,
      1.37900857410374189319227482185687277L, -3.29006951543608067990104758571136385L,
      2.3247105240997739824153559183987658L, 0},
     {0, 0.161L, 0.327L, 0.9L, 0.980025540904509685729810286287024595L, 1, 1},
     5,
     "tsit5"},
    {0.0964607668180652295181673131651287633L - 0.00178001105222577144337855060753953478L,
     0.01L - 0.00081643445965674690322363606335468624L,
     0.47988965041449957477524953229059652L - -0.00788087801026199601031472767252630424L,
     1.37900857410374189319227482185687277L - 0.144711007173262907537165147972635117L,
     -3.29006951543608067990104758571136385L - -0.582357165452555225019937610652042179L,
     2.3247105240997739824153559183987658L - 0.458082105929186946661636518832554297L,
     1.0L / 66},
    4,
    true};

}  // namespace kinflow
