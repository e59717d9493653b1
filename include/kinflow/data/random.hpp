#pragma once
/// @file
/// @brief Seeded random numbers that are the same with every compiler and standard library.
///
/// `std::normal_distribution` and `std::uniform_real_distribution` are specified only by
/// the distribution they produce, not by the numbers, so their output differs between
/// standard libraries. kinflow therefore draws raw 64-bit words from `std::mt19937_64`
/// (whose output sequence the C++ standard fixes exactly) and turns them into numbers with
/// its own transforms, written out below:
///
///     uniform()       = (w >> 11) · 2⁻⁵³                       in [0, 1), 53 random bits
///     uniform_open()  = ((w >> 12) + 0.5) · 2⁻⁵²               in (0, 1), never 0 or 1
///     index(n)        = w mod n, rejecting w ≥ 2⁶⁴ - (2⁶⁴ mod n) (no modulo bias)
///     normal()        = Marsaglia's polar method: draw u, v = 2·uniform() - 1 until
///                       0 < s = u² + v² < 1, return u·√(-2 ln s / s) and keep
///                       v·√(-2 ln s / s) for the next call
///
/// The integer and uniform transforms are exact; the normal one uses only `+ - * /`,
/// `std::sqrt` (correctly rounded by IEEE 754) and `std::log`, so it is bit-identical
/// wherever `std::log` is (every mainstream libm is within one ulp, and glibc, musl and the
/// LLVM libm agree on the values used here in practice).

#include "kinflow/core/batch.hpp"
#include "kinflow/core/errors.hpp"

#include <Eigen/Core>
#include <cmath>
#include <cstdint>
#include <random>

namespace kinflow {

/// A seeded stream of uniform, integer and standard-normal numbers over `std::mt19937_64`,
/// reproducible across compilers (see the file comment for the exact transforms).
class random_stream {
public:
  /// Starts the stream of `std::mt19937_64` seeded with @p seed.
  explicit random_stream(std::uint64_t seed) : engine_(seed) {}

  /// The next raw 64-bit word of the engine.
  [[nodiscard]] std::uint64_t bits() { return engine_(); }

  /// Uniform on [0, 1): `(w >> 11) · 2⁻⁵³`.
  [[nodiscard]] double uniform() {
    return static_cast<double>(engine_() >> 11) * 0x1.0p-53;
  }

  /// Uniform on [a, b): `a + (b - a) · uniform()`.
  [[nodiscard]] double uniform(double a, double b) { return a + (b - a) * uniform(); }

  /// Uniform on the open interval (0, 1): `((w >> 12) + 0.5) · 2⁻⁵²`.
  [[nodiscard]] double uniform_open() {
    return (static_cast<double>(engine_() >> 12) + 0.5) * 0x1.0p-52;
  }

  /// Uniform integer in {0, …, n-1} by rejection (no modulo bias). Requires n ≥ 1.
  [[nodiscard]] std::uint64_t index(std::uint64_t n) {
    detail::require(n >= 1, "n", n, "expected n >= 1 for a uniform index in {0, ..., n-1}");
    // 2^64 mod n, computed without 128-bit arithmetic: (2^64 - n) mod n.
    const std::uint64_t threshold = (0 - n) % n;
    for (;;) {
      const std::uint64_t w = engine_();
      // Accept the w below the largest multiple of n (w ≥ threshold leaves exactly
      // 2^64 - threshold values, a multiple of n).
      if (w >= threshold) return w % n;
    }
  }

  /// Standard normal N(0, 1) by Marsaglia's polar method (pairs; the second value of a pair
  /// is returned by the next call).
  [[nodiscard]] double normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    double u = 0, v = 0, s = 0;
    do {
      u = 2.0 * uniform() - 1.0;
      v = 2.0 * uniform() - 1.0;
      s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    const double f = std::sqrt(-2.0 * std::log(s) / s);
    spare_ = v * f;
    has_spare_ = true;
    return u * f;
  }

  /// Normal N(mean, std²): `mean + std · normal()`.
  [[nodiscard]] double normal(double mean, double std) { return mean + std * normal(); }

private:
  std::mt19937_64 engine_;
  double spare_ = 0;
  bool has_spare_ = false;
};

/// A `d × count` batch of independent standard-normal entries (the noise x0 of
/// docs/math.md §1.1), drawn column by column from `random_stream(seed)`, so the first
/// columns do not depend on @p count: `standard_normal(d, 10, s)` is the first 10 columns
/// of `standard_normal(d, 1000, s)`. Entries are drawn in double and rounded to Scalar.
///
/// @throws kinflow::invalid_argument if d < 1 (or d differs from a fixed Dim) or count < 0.
template <class Scalar = double, int Dim = Eigen::Dynamic>
[[nodiscard]] batch<Scalar, Dim> standard_normal(Eigen::Index d, Eigen::Index count,
                                                 std::uint64_t seed) {
  detail::require(d >= 1, "d", d, "expected a dimension d >= 1");
  if constexpr (Dim != Eigen::Dynamic) {
    detail::require_dimension("standard_normal: d", d, Dim);
  }
  detail::require(count >= 0, "count", count, "expected a number of samples >= 0");
  batch<Scalar, Dim> x(d, count);
  random_stream rng(seed);
  for (Eigen::Index j = 0; j < count; ++j)
    for (Eigen::Index i = 0; i < d; ++i) x(i, j) = static_cast<Scalar>(rng.normal());
  return x;
}

}  // namespace kinflow
