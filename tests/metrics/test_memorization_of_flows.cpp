// Memorization of samples produced by integrating closed-form fields, against an exact
// oracle: for points that do not copy a 2-D point set (locally a Poisson process), the
// squared ratio (d1/d2)² of the two nearest distances is Uniform(0, 1), so the fraction
// flagged as copies (d1/d2 < 1/3) is 1/9. The exact empirical field copies (F_mem -> 1);
// the smoothed field with a wide kernel samples a fresh density (F_mem ≈ 1/9, "near 0"
// against the empirical field's); direct draws from that density agree with the flow's.

#include "kinflow/data/random.hpp"
#include "kinflow/fields/empirical.hpp"
#include "kinflow/fields/gaussian_mixture.hpp"
#include "kinflow/integrators/adaptive.hpp"
#include "kinflow/integrators/explicit_rk.hpp"
#include "kinflow/metrics/memorization.hpp"
#include "kinflow_catch.hpp"

namespace {
using batch2 = kinflow::batch<double, 2>;

batch2 uniform_square(Eigen::Index n, std::uint64_t seed) {
  kinflow::random_stream rng(seed);
  batch2 Y(2, n);
  for (Eigen::Index i = 0; i < n; ++i) Y.col(i) << rng.uniform(), rng.uniform();
  return Y;
}
}  // namespace

TEST_CASE("F_mem: copies from the empirical field, fresh samples from the smoothed one", "[memorization]") {
#if defined(__SANITIZE_ADDRESS__)
  const Eigen::Index N = 200, B = 500;
#else
  const Eigen::Index N = 400, B = 1500;
#endif
  const batch2 Y = uniform_square(N, 11);
  const batch2 x0 = kinflow::standard_normal<double, 2>(2, B, 12);
  const auto grid = kinflow::time_grid<>::uniform(40);

  // Exact empirical field, integrated to t = 1 (adaptive steps follow it into the
  // collapse onto the nearest training point).
  batch2 X = x0;
  kinflow::integrate_adaptive(kinflow::empirical_field<double, 2>(Y), kinflow::dopri5, 0.0, 1.0, X);
  const auto copies = kinflow::memorization(X, Y);
  CHECK(copies.fraction > 0.95);

  // Smoothed field, kernel std 0.1 (about twice the mean spacing of the points, 0.05):
  // the flow transports N(0, I) to the smoothed density.
  const double s = 0.1;
  batch2 Z = x0;
  kinflow::integrate(kinflow::smoothed_empirical(Y, s), kinflow::rk4, grid, Z);
  const auto fresh = kinflow::memorization(Z, Y);

  // Direct draws from the same density: a random training point plus s·N(0, I).
  kinflow::random_stream rng(13);
  batch2 D(2, B);
  for (Eigen::Index i = 0; i < B; ++i) {
    const auto j = static_cast<Eigen::Index>(rng.index(static_cast<std::uint64_t>(N)));
    D.col(i) << Y(0, j) + s * rng.normal(), Y(1, j) + s * rng.normal();
  }
  const auto direct = kinflow::memorization(D, Y);

  // Both near the Poisson value 1/9 (within a few binomial standard errors; the edge of
  // the square, where neighbours lie on one side only, lowers the fraction a little).
  const double se = std::sqrt((1.0 / 9) * (8.0 / 9) / static_cast<double>(B));
  CHECK(fresh.fraction < 1.0 / 9 + 4 * se);
  CHECK(fresh.fraction > 1.0 / 9 - 8 * se);
  CHECK(direct.fraction < 1.0 / 9 + 4 * se);
  CHECK(std::abs(fresh.fraction - direct.fraction) < 6 * se);
  CHECK(fresh.ci_high < copies.ci_low);
}
