#pragma once
/// @file
/// @brief The regularized incomplete beta function `I_x(a, b)` and its inverse in x, for the
/// beta time grid (the quantiles of a Beta(a, b) distribution). Private machinery.

#include <algorithm>
#include <cmath>
#include <limits>

namespace kinflow::detail {

/// `log B(a, b) = lgamma(a) + lgamma(b) - lgamma(a + b)`.
inline double log_beta_function(double a, double b) {
  return std::lgamma(a) + std::lgamma(b) - std::lgamma(a + b);
}

/// The continued fraction of `I_x(a, b)` (DLMF 8.17.22), evaluated by the modified Lentz
/// method: `I_x(a, b) = x^a (1-x)^b / (a B(a, b)) · 1/(1 + d_1/(1 + d_2/(1 + ...)))` with
/// `d_{2m+1} = -(a+m)(a+b+m) x / ((a+2m)(a+2m+1))`, `d_{2m} = m(b-m) x / ((a+2m-1)(a+2m))`.
/// It converges quickly for `x < (a+1)/(a+b+2)`; the caller uses the symmetry otherwise.
inline double incomplete_beta_fraction(double x, double a, double b) {
  constexpr double tiny = 1e-300, eps = std::numeric_limits<double>::epsilon();
  auto guard = [](double v) { return std::abs(v) < tiny ? tiny : v; };
  double c = 1, d = 1 / guard(1 - (a + b) * x / (a + 1)), f = d;
  for (int m = 1; m <= 10000; ++m) {
    const double m2 = 2.0 * m;
    const double even = m * (b - m) * x / ((a + m2 - 1) * (a + m2));
    d = 1 / guard(1 + even * d);
    c = guard(1 + even / c);
    f *= d * c;
    const double odd = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1));
    d = 1 / guard(1 + odd * d);
    c = guard(1 + odd / c);
    const double step = d * c;
    f *= step;
    if (std::abs(step - 1) <= eps) break;
  }
  return f;
}

/// The regularized incomplete beta function `I_x(a, b) = ∫₀ˣ s^{a-1}(1-s)^{b-1} ds / B(a, b)`,
/// the CDF of Beta(a, b), for `a, b > 0` and x in [0, 1].
inline double regularized_incomplete_beta(double x, double a, double b) {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const double front = std::exp(a * std::log(x) + b * std::log1p(-x) - log_beta_function(a, b));
  if (x < (a + 1) / (a + b + 2)) return front * incomplete_beta_fraction(x, a, b) / a;
  return 1 - front * incomplete_beta_fraction(1 - x, b, a) / b;
}

/// The x in [0, 1] with `I_x(a, b) = p` (the Beta(a, b) quantile of p in [0, 1]), by Newton's
/// method on the CDF kept inside a shrinking bracket, bisecting whenever Newton would leave it.
/// The start uses the tails' leading terms, `I_x ≈ x^a / (a B)` near 0 and
/// `1 - I_x ≈ (1-x)^b / (b B)` near 1, so that extreme quantiles need few iterations.
inline double inverse_regularized_incomplete_beta(double p, double a, double b) {
  if (p <= 0) return 0;
  if (p >= 1) return 1;
  const double lb = log_beta_function(a, b);
  double lo = 0, hi = 1;
  double x = p < 0.5 ? std::exp((std::log(p * a) + lb) / a) : 1 - std::exp((std::log((1 - p) * b) + lb) / b);
  if (!(x > 0 && x < 1)) x = 0.5;
  for (int it = 0; it < 400; ++it) {
    const double r = regularized_incomplete_beta(x, a, b) - p;
    if (r == 0) return x;
    (r < 0 ? lo : hi) = x;
    const double density = std::exp((a - 1) * std::log(x) + (b - 1) * std::log1p(-x) - lb);
    double next = x - r / density;
    if (!(next > lo && next < hi) || !std::isfinite(next)) next = lo + 0.5 * (hi - lo);
    if (next == x || std::abs(next - x) <= 2 * std::numeric_limits<double>::epsilon() * std::min(x, 1 - x))
      return next;
    x = next;
    if (hi - lo <= std::numeric_limits<double>::min()) break;
  }
  return x;
}

}  // namespace kinflow::detail
