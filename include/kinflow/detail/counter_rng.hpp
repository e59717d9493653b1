#pragma once
/// @file
/// @brief Private: counter-based Gaussian noise. Philox4x32-10 (Salmon et al., "Parallel
/// random numbers: as easy as 1, 2, 3", SC 2011) maps a counter and a key to 128 random
/// bits with no state, so any sample's noise at any step is computed on its own: the same
/// numbers whatever the threads, tiles, batch order or processes that compute them.
///
/// Layout of the stochastic solvers' noise (kinflow/integrators/stochastic.hpp): the
/// normals of components `2j` and `2j + 1` of sample `i` at step `n` come from one block,
///
///     key     = (seed mod 2³², seed div 2³²)
///     counter = (j, n, i mod 2³², i div 2³²)
///     (a, b, c, e) = philox4x32_10(counter, key)
///     u₁ = ((a·2³² + b) >> 11 + 1)·2⁻⁵³ ∈ (0, 1],   u₂ = ((c·2³² + e) >> 11)·2⁻⁵³ ∈ [0, 1)
///     z_{2j} = √(−2 ln u₁)·cos(2π u₂),  z_{2j+1} = √(−2 ln u₁)·sin(2π u₂)   (Box–Muller)
///
/// The bits are exact everywhere; the normals use `log`, `cos`, `sin` and `sqrt`, so they
/// are identical wherever the math library is.

#include <Eigen/Core>
#include <array>
#include <cmath>
#include <cstdint>
#include <numbers>

namespace kinflow::detail {

/// Philox4x32 with 10 rounds: the 128-bit block of `counter` under `key`.
[[nodiscard]] constexpr std::array<std::uint32_t, 4> philox4x32_10(std::array<std::uint32_t, 4> ctr,
                                                                   std::array<std::uint32_t, 2> key) noexcept {
  constexpr std::uint32_t m0 = 0xD2511F53u, m1 = 0xCD9E8D57u;  // multipliers
  constexpr std::uint32_t w0 = 0x9E3779B9u, w1 = 0xBB67AE85u;  // key increments (golden ratio, √3 − 1)
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      key[0] += w0;
      key[1] += w1;
    }
    const std::uint64_t p0 = static_cast<std::uint64_t>(m0) * ctr[0];
    const std::uint64_t p1 = static_cast<std::uint64_t>(m1) * ctr[2];
    const auto hi0 = static_cast<std::uint32_t>(p0 >> 32), lo0 = static_cast<std::uint32_t>(p0);
    const auto hi1 = static_cast<std::uint32_t>(p1 >> 32), lo1 = static_cast<std::uint32_t>(p1);
    ctr = {hi1 ^ ctr[1] ^ key[0], lo1, hi0 ^ ctr[3] ^ key[1], lo0};
  }
  return ctr;
}

/// Writes the standard normals of sample @p sample at step @p step into `out[0 .. d)` (the
/// layout of the file comment), rounded to Scalar.
template <class Scalar>
void counter_normals(std::uint64_t seed, std::uint64_t sample, std::uint32_t step, Scalar* out, Eigen::Index d) {
  const std::array<std::uint32_t, 2> key{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)};
  const auto lo = static_cast<std::uint32_t>(sample), hi = static_cast<std::uint32_t>(sample >> 32);
  for (Eigen::Index k = 0; k < d; k += 2) {
    const auto r = philox4x32_10({static_cast<std::uint32_t>(k / 2), step, lo, hi}, key);
    const std::uint64_t a = (static_cast<std::uint64_t>(r[0]) << 32) | r[1];
    const std::uint64_t b = (static_cast<std::uint64_t>(r[2]) << 32) | r[3];
    const double u1 = static_cast<double>((a >> 11) + 1) * 0x1.0p-53;
    const double u2 = static_cast<double>(b >> 11) * 0x1.0p-53;
    const double radius = std::sqrt(-2.0 * std::log(u1));
    const double angle = 2.0 * std::numbers::pi * u2;
    out[k] = static_cast<Scalar>(radius * std::cos(angle));
    if (k + 1 < d) out[k + 1] = static_cast<Scalar>(radius * std::sin(angle));
  }
}

}  // namespace kinflow::detail
