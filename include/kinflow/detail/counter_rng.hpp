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
///     p₁ = ((a·2³² + b) >> 11 + ½)·2⁻⁵³,  p₂ = ((c·2³² + e) >> 11 + ½)·2⁻⁵³   (in (0, 1))
///     z_{2j} = Φ⁻¹(p₁),  z_{2j+1} = Φ⁻¹(p₂)
///
/// with Φ⁻¹ the standard normal quantile by Wichura's algorithm AS 241 (PPND16, relative
/// error about 1e-16): a rational function of `p − ½` for `|p − ½| ≤ 0.425` (85 % of the
/// draws: only `+ − × ÷`, no library call), of `√(−ln min(p, 1 − p))` beyond. It costs a
/// fraction of Box–Muller's logarithm, sine and cosine per pair, and its bits depend on the
/// math library only through `log` in the tails.

#include <Eigen/Core>
#include <array>
#include <cmath>
#include <cstdint>

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

/// Φ⁻¹(p) of AS 241 for `|p − ½| ≤ 0.425`, from `q = p − ½`: a rational function only
/// (vectorizes; outside that range its value is meaningless).
[[nodiscard]] inline double normal_quantile_central(double q) noexcept {
  const double r = 0.180625 - q * q;
  return q *
         (((((((2509.0809287301226727 * r + 33430.575583588128105) * r + 67265.770927008700853) * r +
              45921.953931549871457) * r + 13731.693765509461125) * r + 1971.5909503065514427) * r +
           133.14166789178437745) * r + 3.3871328727963666080) /
         (((((((5226.4952788528545610 * r + 28729.085735721942674) * r + 39307.895800092710610) * r +
              21213.794301586595867) * r + 5394.1960214247511077) * r + 687.18700749205790830) * r +
           42.313330701600911252) * r + 1.0);
}

/// Φ⁻¹(p) of AS 241 for `|p − ½| > 0.425`.
[[nodiscard]] inline double normal_quantile_tail(double p) noexcept {
  const double q = p - 0.5;
  double r = std::sqrt(-std::log(q < 0 ? p : 1 - p));
  double z = 0;
  if (r <= 5) {
    r -= 1.6;
    z = (((((((7.74545014278341407640e-4 * r + 2.27238449892691845833e-2) * r + 2.41780725177450611770e-1) * r +
             1.27045825245236838258) * r + 3.64784832476320460504) * r + 5.76949722146069140550) * r +
          4.63033784615654529590) * r + 1.42343711074968357734) /
        (((((((1.05075007164441684324e-9 * r + 5.47593808499534494600e-4) * r + 1.51986665636164571966e-2) * r +
             1.48103976427480074590e-1) * r + 6.89767334985100004550e-1) * r + 1.67638483018380384940) * r +
          2.05319162663775882187) * r + 1.0);
  } else {
    r -= 5;
    z = (((((((2.01033439929228813265e-7 * r + 2.71155556874348757815e-5) * r + 1.24266094738807843860e-3) * r +
             2.65321895265761230930e-2) * r + 2.96560571828504891230e-1) * r + 1.78482653991729133580) * r +
          5.46378491116411436990) * r + 6.65790464350110377720) /
        (((((((2.04426310338993978564e-15 * r + 1.42151175831644588870e-7) * r + 1.84631831751005468180e-5) * r +
             7.86869131145613259100e-4) * r + 1.48753612908506148525e-2) * r + 1.36929880922735805310e-1) * r +
          5.99832206555887937690e-1) * r + 1.0);
  }
  return q < 0 ? -z : z;
}

/// The standard normal quantile Φ⁻¹(p), 0 < p < 1, by Wichura's AS 241 (PPND16).
[[nodiscard]] inline double normal_quantile(double p) noexcept {
  return std::abs(p - 0.5) <= 0.425 ? normal_quantile_central(p - 0.5) : normal_quantile_tail(p);
}

/// Writes the standard normals of `n` samples at step @p step into the column-major d x n
/// array @p out: column m is stream `id(m)` (the layout of the file comment), rounded to
/// Scalar. @p p is scratch. The quantiles are taken in two passes, the rational function
/// on every entry (a loop the compiler vectorizes), then the tails, so that every entry
/// gets the same arithmetic wherever it sits in the array.
template <class Scalar, class Id>
void counter_normals(std::uint64_t seed, Id&& id, std::uint32_t step, Scalar* out, Eigen::Index d, Eigen::Index n,
                     Eigen::ArrayXd& p) {
  const std::array<std::uint32_t, 2> key{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)};
  const Eigen::Index size = d * n;
  p.resize(size);
  for (Eigen::Index m = 0; m < n; ++m) {
    const std::uint64_t sample = id(m);
    const auto lo = static_cast<std::uint32_t>(sample), hi = static_cast<std::uint32_t>(sample >> 32);
    double* pm = p.data() + m * d;
    for (Eigen::Index k = 0; k < d; k += 2) {
      const auto r = philox4x32_10({static_cast<std::uint32_t>(k / 2), step, lo, hi}, key);
      const std::uint64_t a = (static_cast<std::uint64_t>(r[0]) << 32) | r[1];
      pm[k] = (static_cast<double>(a >> 11) + 0.5) * 0x1.0p-53;
      if (k + 1 < d) {
        const std::uint64_t b = (static_cast<std::uint64_t>(r[2]) << 32) | r[3];
        pm[k + 1] = (static_cast<double>(b >> 11) + 0.5) * 0x1.0p-53;
      }
    }
  }
  const double* pp = p.data();
  for (Eigen::Index i = 0; i < size; ++i) out[i] = static_cast<Scalar>(normal_quantile_central(pp[i] - 0.5));
  for (Eigen::Index i = 0; i < size; ++i)
    if (std::abs(pp[i] - 0.5) > 0.425) out[i] = static_cast<Scalar>(normal_quantile_tail(pp[i]));
}

}  // namespace kinflow::detail
