#pragma once
// Independent references for kinflow's tests: analytic solutions, a long-double
// Gauss–Legendre quadrature, and a least-squares slope for convergence orders.
// Nothing here calls the code under test.

#include <Eigen/Core>
#include <array>
#include <cmath>
#include <cstddef>
#include <vector>

namespace kinflow_test {

/// Least-squares slope of log(err) against log(h).
inline double convergence_slope(const std::vector<double>& h, const std::vector<double>& err) {
  const std::size_t n = h.size();
  double mx = 0, my = 0;
  for (std::size_t i = 0; i < n; ++i) {
    mx += std::log(h[i]);
    my += std::log(err[i]);
  }
  mx /= static_cast<double>(n);
  my /= static_cast<double>(n);
  double sxy = 0, sxx = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double dx = std::log(h[i]) - mx;
    sxy += dx * (std::log(err[i]) - my);
    sxx += dx * dx;
  }
  return sxy / sxx;
}

/// x' = -2 t x², exact solution x(t) = x0 / (1 + x0 t²): nonlinear and non-autonomous, so
/// wrong stage nodes c_j or wrong coefficients a_jl show up in the order of convergence.
struct decay_field {
  template <class Scalar, class X, class V>
  void operator()(Scalar t, const X& x, V& v) const {
    v = (Scalar(-2) * t) * x.array().square().matrix();
  }
};

/// ∫_a^b f by composite 8-point Gauss–Legendre in long double (`panels` panels).
template <class F>
long double gauss_legendre(F&& f, long double a, long double b, int panels = 64) {
  static constexpr std::array<long double, 4> x{0.1834346424956498049394761423601840L,
                                                0.5255324099163289858177390491892463L,
                                                0.7966664774136267395915539364758304L,
                                                0.9602898564975362316835608685694730L};
  static constexpr std::array<long double, 4> w{0.3626837833783619829651504492771657L,
                                                0.3137066458778872873379622019866013L,
                                                0.2223810344533744705443559944919796L,
                                                0.1012285362903762591525313543099622L};
  long double sum = 0;
  const long double hp = (b - a) / panels;
  for (int p = 0; p < panels; ++p) {
    const long double mid = a + (p + 0.5L) * hp, half = 0.5L * hp;
    for (std::size_t i = 0; i < 4; ++i)
      sum += w[i] * half * (f(mid - half * x[i]) + f(mid + half * x[i]));
  }
  return sum;
}

/// The exact flow-matching field of the Gaussian target N(mu, s² I) (docs/math.md §3.4, §3 with one
/// component), written out plainly:  v = mu + (t s² - (1-t)) / σ² (x - t mu),
/// σ² = (1-t)² + t² s². From x0 the trajectory is x(t) = t mu + σ(t) x0.
template <class Scalar, int Dim>
struct gaussian_target {
  Eigen::Matrix<Scalar, Dim, 1> mu;
  Scalar s;

  template <class X, class V>
  void operator()(Scalar t, const X& x, V& v) const {
    const Scalar sig2 = (1 - t) * (1 - t) + t * t * s * s;
    const Scalar g = (t * s * s - (1 - t)) / sig2;
    v = (g * (x.colwise() - t * mu)).colwise() + mu;
  }

  /// Exact state at time t from x0.
  [[nodiscard]] Eigen::Matrix<long double, Eigen::Dynamic, 1> exact_state(
      long double t, const Eigen::Matrix<long double, Eigen::Dynamic, 1>& x0) const {
    const long double sl = s;
    const long double sig = std::sqrt((1 - t) * (1 - t) + t * t * sl * sl);
    return t * mu.template cast<long double>() + sig * x0;
  }

  /// Exact kinetic path energy ½∫_a^b ‖mu + σ'(t) x0‖² dt of the trajectory from x0.
  [[nodiscard]] long double exact_energy(const Eigen::Matrix<long double, Eigen::Dynamic, 1>& x0,
                                         long double a = 0, long double b = 1) const {
    const Eigen::Matrix<long double, Eigen::Dynamic, 1> m = mu.template cast<long double>();
    const long double sl = s;
    auto integrand = [&](long double t) {
      const long double sig = std::sqrt((1 - t) * (1 - t) + t * t * sl * sl);
      const long double dsig = (t * sl * sl - (1 - t)) / sig;
      return 0.5L * (m + dsig * x0).squaredNorm();
    };
    return gauss_legendre(integrand, a, b);
  }
};

}  // namespace kinflow_test
