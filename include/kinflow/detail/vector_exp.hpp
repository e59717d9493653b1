#pragma once
/// @file
/// @brief Private machinery: the exponential of an array of logits, vectorised, with the
/// floor below which the closed-form fields treat a weight as negligible.

#include <cstddef>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

namespace kinflow::detail {

/// Smallest exponent argument kinflow passes to exp(). exp of anything lower is treated
/// as exp(floor): about 1e-304 in double and 2e-35 in float, still normal numbers, so no
/// subnormal arithmetic (slow on some CPUs) happens downstream. Terms that small are
/// below the rounding of the sum, whose largest term is exactly exp(0) = 1.
template <class Scalar>
constexpr Scalar exp_floor() noexcept {
  if constexpr (std::numeric_limits<Scalar>::max_exponent <= 128)
    return Scalar(-80);
  else
    return Scalar(-700);
}

/// `v_i ← exp(v_i)` for `n` values in `[exp_floor, -exp_floor]` (callers clamp first).
///
/// Written as plain arithmetic so that compilers vectorise the loop (SSE2 included, where
/// Eigen's exp is several times slower): `exp(a) = 2^k · exp(r)` with `k = round(a/ln 2)`
/// taken from the low bits of `a/ln 2 + 1.5·2^52` (1.5·2^23 in float), `r = a - k ln 2`
/// in two steps (Cody–Waite), `|r| ≤ ln2/2`, `exp(r)` by its Taylor polynomial of degree 13
/// (7 in float; truncation below 1e-17 resp. 5e-9) evaluated in Estrin's scheme for
/// instruction-level parallelism, and `2^k` applied by adding `k` to the exponent bits.
/// Relative error: a few units of the last place. Other scalar types use std::exp.
template <class Scalar>
void exp_in_place(Scalar* v, std::ptrdiff_t n) noexcept {
  if constexpr (std::is_same_v<Scalar, double> && std::numeric_limits<double>::is_iec559) {
    constexpr double log2e = 1.4426950408889634074, magic = 6755399441055744.0;
    constexpr double ln2_hi = 0.693145751953125, ln2_lo = 1.42860682030941723212e-6;
    constexpr double c2 = 1.0 / 2, c3 = 1.0 / 6, c4 = 1.0 / 24, c5 = 1.0 / 120, c6 = 1.0 / 720,
                     c7 = 1.0 / 5040, c8 = 1.0 / 40320, c9 = 1.0 / 362880, c10 = 1.0 / 3628800,
                     c11 = 1.0 / 39916800, c12 = 1.0 / 479001600, c13 = 1.0 / 6227020800;
    for (std::ptrdiff_t i = 0; i < n; ++i) {
      const double a = v[i];
      const double k = a * log2e + magic;
      const double kn = k - magic;
      const double r = (a - kn * ln2_hi) - kn * ln2_lo;
      const double r2 = r * r, r4 = r2 * r2, r8 = r4 * r4;
      const double q0 = (1.0 + r) + (c2 + c3 * r) * r2, q1 = (c4 + c5 * r) + (c6 + c7 * r) * r2;
      const double q2 = (c8 + c9 * r) + (c10 + c11 * r) * r2, q3 = c12 + c13 * r;
      const double p = (q0 + q1 * r4) + (q2 + q3 * r4) * r8;
      // The low 12 bits of k's representation hold round(a/ln2) modulo 2^12 (two's
      // complement); shifted into the exponent field they scale p by 2^k exactly.
      v[i] = std::bit_cast<double>(std::bit_cast<std::uint64_t>(p) +
                                   (std::bit_cast<std::uint64_t>(k) << 52));
    }
  } else if constexpr (std::is_same_v<Scalar, float> && std::numeric_limits<float>::is_iec559) {
    constexpr float log2e = 1.44269504088896341f, magic = 12582912.0f;
    constexpr float ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f;
    constexpr float c2 = 1.0f / 2, c3 = 1.0f / 6, c4 = 1.0f / 24, c5 = 1.0f / 120, c6 = 1.0f / 720,
                    c7 = 1.0f / 5040;
    for (std::ptrdiff_t i = 0; i < n; ++i) {
      const float a = v[i];
      const float k = a * log2e + magic;
      const float kn = k - magic;
      const float r = (a - kn * ln2_hi) - kn * ln2_lo;
      const float r2 = r * r;
      const float p = ((1.0f + r) + (c2 + c3 * r) * r2) +
                      ((c4 + c5 * r) + (c6 + c7 * r) * r2) * (r2 * r2);
      v[i] = std::bit_cast<float>(std::bit_cast<std::uint32_t>(p) +
                                  (std::bit_cast<std::uint32_t>(k) << 23));
    }
  } else {
    for (std::ptrdiff_t i = 0; i < n; ++i) v[i] = std::exp(v[i]);
  }
}

}  // namespace kinflow::detail
