#pragma once
/// @file
/// @brief Private: fixed-step explicit Runge–Kutta for per-sample fields of fixed dimension,
/// run in structure-of-arrays tiles so that the compiler vectorizes across samples.
///
/// kinflow::integrate's "fused" kernel walks the batch column by column, every stage of a
/// column in registers. That is as few memory accesses as possible, but the arithmetic of
/// one column (d = 2 lanes) is too narrow to fill a SIMD register, so it runs mostly
/// scalar. This kernel instead takes the batch in tiles of `T` samples, transposes each
/// tile into `Dim` contiguous arrays of `T` scalars (one per coordinate), and runs ALL grid
/// steps on that tile (it stays in L1) before writing it back. Each step is one loop over
/// the tile's samples that evaluates every stage of a sample in registers and calls the
/// user's per-sample field with a `point<Scalar, Dim>` gathered from the lanes; once the
/// field is inlined, the sample loop has no calls and no cross-iteration dependences, and
/// GCC and Clang vectorize it across samples (the sample index is the SIMD lane).
///
/// Arithmetic per sample is the fused kernel's, in the same order:
///     x_j   = x + Σ_{l<j} (h a_jl) k_l          (a_jl = 0 terms: see below)
///     k_j   = v(t + c_j h, x_j)
///     x_new = x + Σ_j (h b_j) k_j
///     e     = Σ_j w_j ‖k_j‖²,   w_j = ½|h| b_j   (left Riemann: e = w_0 ‖k_0‖², w_0 = ½|h|)
///     early[i] or late[i] += e                   (early when min(t_n, t_{n+1}) < τ)
/// so results agree with it to rounding: bitwise where the compiler cannot fuse a multiply
/// and an add (checked: x86-64 without FMA, d = 1 .. 3, float and double), else within a
/// few ulps, as the two kernels get a different subset of their multiply-adds contracted
/// into FMAs; and for d >= 3 ‖k‖² is summed here in coordinate order, by Eigen's
/// squaredNorm (the fused kernel) in an order of its own (an ulp or two in the energy). As in
/// the fused kernel, every term is computed, zero coefficients included (`x + 0·k == x` for
/// finite stages; the left Riemann quadrature is the stage sum with weights ½|h|, 0, ..., 0):
/// one compiled loop per field, method and energy setting, not one per coefficient pattern.
///
/// Vectorization needs the field's arithmetic to be scalar per coordinate after inlining
/// (e.g. `return {a * x(0) + b, c * x(1)}`, or a loop over `x(r)` that the compiler
/// unrolls). A field written with Eigen vector operations on a vectorizable point
/// (`(x - t * mu) * g + mu` with d = 2 or 4 in double) is computed by Eigen with SIMD packets
/// of its own, which the loop vectorizer cannot widen across samples: such a field is
/// integrated correctly, but scalar, and SLOWER than with the fused kernel (measured, RK4 +
/// energy, d = 2: 12.0 vs 5.2 ns per sample-step with AVX-512, 16.5 vs 10.0 with SSE2), as
/// the point is assembled from scalars and then read as a packet. Non-inlinable fields
/// (std::function, calls into another translation unit, transcendental functions without
/// a vector math library) also run scalar. Nothing here can tell the two kinds of field
/// apart at compile time; a caller choosing between the kernels has to be told (see
/// soa_suited). The per-step coefficients are computed once per step and tile.

#include <Eigen/Core>
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "kinflow/core/batch.hpp"
#include "kinflow/core/errors.hpp"
#include "kinflow/energy/kpe.hpp"
#include "kinflow/integrators/progress.hpp"
#include "kinflow/integrators/tableau.hpp"
#include "kinflow/schedules/time_grid.hpp"

#if defined(__GNUC__) || defined(__clang__) || defined(_MSC_VER)
#define KINFLOW_DETAIL_RESTRICT __restrict
#else
#define KINFLOW_DETAIL_RESTRICT
#endif

// The sample loop vectorizes only when nothing in it is a call. The function holding it is
// therefore "flattened" (GCC, Clang: every call inside is inlined, recursively, whatever the
// inliner's growth budgets: in a translation unit with many instantiations those budgets
// otherwise run out and even Eigen's coeffRef stays a call: measured 20-35x slower), and the
// kernel's own helpers are forced inline. The user's field is inlined there too when its
// definition is visible. Unoptimized builds (no __OPTIMIZE__: -O0, e.g. Debug) vectorize
// nothing, and there the recursive inlining only made every per-sample field cost seconds
// of compile time (Clang 14 -O0 with ASan: 3.9 s per field and method, 0.9 s without).
#if (defined(__GNUC__) || defined(__clang__)) && defined(__OPTIMIZE__)
#define KINFLOW_DETAIL_SOA_INLINE __attribute__((always_inline))
#define KINFLOW_DETAIL_SOA_FLATTEN __attribute__((flatten))
#else
#define KINFLOW_DETAIL_SOA_INLINE
#define KINFLOW_DETAIL_SOA_FLATTEN
#endif

namespace kinflow::detail {

/// Default tile of soa_fixed_steps: the largest multiple of 16 samples (at most 1024) whose
/// state takes at most 8 KiB (at least 1 sample): 512 for d = 2 in double. The tile's state
/// and its energies then stay in L1 over all steps. Measured (bench_integrators, d = 2,
/// double, RK4 and Euler with the energy, AVX-512 and SSE2 builds): tiles of 256 to 2048
/// samples run equally fast within the noise, 128 is ~10% slower and 16 about 2x (SSE2:
/// 1.3x) slower (the
/// field's per-step coefficients, e.g. a division for g(t), and the vector loop's prologue
/// and epilogue are paid per tile and step).
template <class Scalar, int Dim>
inline constexpr Eigen::Index soa_default_tile = [] {
  constexpr std::size_t bytes = 8192, per_sample = sizeof(Scalar) * static_cast<std::size_t>(Dim);
  constexpr std::size_t fit = bytes / per_sample;
  if constexpr (fit >= 16) return static_cast<Eigen::Index>(std::min<std::size_t>(1024, fit / 16 * 16));
  return static_cast<Eigen::Index>(fit >= 1 ? fit : 1);
}();

/// Whether soa_fixed_steps is the better kernel for a dimension (else the fused column
/// kernel is): for d <= 16 all coordinates of a sample are unrolled into one loop body the
/// compiler vectorizes across samples. Measured (GCC 12, RK4, linear fields written per
/// coordinate): 5-10x faster than the fused kernel for d = 2 .. 16 with AVX-512 (1.6-2.4x
/// with SSE2); at d = 32 GCC no longer unrolls the field's own loop over the coordinates
/// and vectorizes that instead, and this kernel is ~4x slower than the fused one with
/// AVX-512 (as fast with SSE2; Euler 1.6x slower).
/// This is about the dimension only: a field written with Eigen vector operations on the
/// point runs slower here than in the fused kernel whatever d (see the file comment).
template <int Dim>
inline constexpr bool soa_suited = Dim != Eigen::Dynamic && Dim >= 1 && Dim <= 16;

/// The method's coefficients converted to the state's scalar once per solve (the tableau
/// holds long doubles), so that a step's coefficients cost S² + 3S multiplications.
template <class Scalar, std::size_t S>
struct soa_method {
  std::array<std::array<Scalar, S>, S> a{};
  std::array<Scalar, S> b{}, c{};
  std::array<Scalar, S> wb{};  ///< energy weights per ½|h|: b_j (left Riemann: 1, 0, ..., 0)
  explicit soa_method(const butcher_tableau<S>& m, bool left) {
    for (std::size_t j = 0; j < S; ++j) {
      for (std::size_t l = 0; l < S; ++l) a[j][l] = static_cast<Scalar>(m.a[j][l]);
      b[j] = static_cast<Scalar>(m.b[j]);
      c[j] = static_cast<Scalar>(m.c[j]);
      wb[j] = static_cast<Scalar>(kpe_stage_weight(m.b, j, left));
    }
  }
};

/// The per-step coefficients, in the state's scalar, computed as the fused kernel does.
template <class Scalar, std::size_t S>
struct soa_step_coefficients {
  std::array<std::array<Scalar, S>, S> ha{};  ///< h a_jl
  std::array<Scalar, S> hb{};                 ///< h b_j
  std::array<Scalar, S> ct{};                 ///< t + c_j h
  std::array<Scalar, S> w{};                  ///< energy weights ½|h| b_j (left Riemann: ½|h|, 0, ...)

  soa_step_coefficients(const soa_method<Scalar, S>& m, Scalar t, Scalar h) {
    const Scalar half_abs_h = Scalar(0.5) * std::abs(h);
    for (std::size_t j = 0; j < S; ++j) {
      for (std::size_t l = 0; l < j; ++l) ha[j][l] = h * m.a[j][l];
      hb[j] = h * m.b[j];
      ct[j] = t + m.c[j] * h;
      w[j] = half_abs_h * m.wb[j];
    }
  }
};

/// Calls `f(std::integral_constant<std::size_t, I>{})` for I = 0 .. N-1 (unrolled).
template <std::size_t N, class F>
KINFLOW_DETAIL_SOA_INLINE inline void soa_unroll(F&& f) {
  [&]<std::size_t... I>(std::index_sequence<I...>) KINFLOW_DETAIL_SOA_INLINE {
    (f(std::integral_constant<std::size_t, I>{}), ...);
  }(std::make_index_sequence<N>{});
}

/// Calls `f(r)` for every coordinate r < Dim: unrolled at compile time up to 32 coordinates
/// (so that the sample loop around it is innermost and vectorizable), a loop beyond.
template <int Dim, class F>
KINFLOW_DETAIL_SOA_INLINE inline void soa_lanes(F&& f) {
  if constexpr (Dim <= 32) {
    soa_unroll<static_cast<std::size_t>(Dim)>([&](auto r) KINFLOW_DETAIL_SOA_INLINE { f(static_cast<int>(r)); });
  } else {
    for (int r = 0; r < Dim; ++r) f(r);
  }
}

/// One step over the `w` samples of a tile: lanes `x[r][0 .. w)`, energies `e[0 .. w)`
/// (with `Energy`).
template <bool Energy, std::size_t S, class Scalar, int Dim, Eigen::Index T, class Field>
KINFLOW_DETAIL_SOA_FLATTEN void soa_tile_step(Field& field, const soa_step_coefficients<Scalar, S>& c,
                          Scalar (&x)[Dim][T], Eigen::Index w, Scalar* KINFLOW_DETAIL_RESTRICT e) {
  using point_type = point<Scalar, Dim>;
  for (Eigen::Index i = 0; i < w; ++i) {
    Scalar k[S][Dim];
    soa_unroll<S>([&](auto J) KINFLOW_DETAIL_SOA_INLINE {
      constexpr std::size_t j = J;
      point_type xs;
      soa_lanes<Dim>([&](int r) KINFLOW_DETAIL_SOA_INLINE {
        Scalar s = x[r][i];
        soa_unroll<j>([&](auto L) KINFLOW_DETAIL_SOA_INLINE {
          constexpr std::size_t l = L;
          s += c.ha[j][l] * k[l][r];
        });
        xs.coeffRef(r) = s;
      });
      decltype(auto) v = field(c.ct[j], static_cast<const point_type&>(xs));
      using v_type = std::remove_cvref_t<decltype(v)>;
      if constexpr (v_type::RowsAtCompileTime == Eigen::Dynamic)
        if (v.size() != Dim)
          require_dimension("velocity returned by the per-sample field", v.size(), Dim);
      if constexpr (std::is_same_v<v_type, typename v_type::PlainObject>) {  // a vector: read it
        soa_lanes<Dim>([&](int r) KINFLOW_DETAIL_SOA_INLINE { k[j][r] = v.coeff(r); });
      } else {  // an expression: evaluate it once
        point_type vv;
        vv = v;
        soa_lanes<Dim>([&](int r) KINFLOW_DETAIL_SOA_INLINE { k[j][r] = vv.coeff(r); });
      }
    });
    soa_lanes<Dim>([&](int r) KINFLOW_DETAIL_SOA_INLINE {
      Scalar s = x[r][i];
      soa_unroll<S>([&](auto J) KINFLOW_DETAIL_SOA_INLINE { s += c.hb[J] * k[J][r]; });
      x[r][i] = s;
    });
    if constexpr (Energy) {
      auto norm2 = [&](std::size_t j) KINFLOW_DETAIL_SOA_INLINE {
        Scalar q = k[j][0] * k[j][0];
        soa_lanes<Dim - 1>([&](int r) KINFLOW_DETAIL_SOA_INLINE { q += k[j][r + 1] * k[j][r + 1]; });
        return q;
      };
      Scalar en = c.w[0] * norm2(0);
      soa_unroll<S - 1>([&](auto J) KINFLOW_DETAIL_SOA_INLINE { en += c.w[J + 1] * norm2(J + 1); });
      e[i] += en;
    }
  }
}

/// All steps of the grid on the batch, tile by tile (tile of T samples), with or without
/// the energy (from the first stage only when `left_riemann`).
template <Eigen::Index T, bool Energy, class Field, class Scalar, int Dim, std::size_t S, class GridScalar>
void soa_run(Field& field, const butcher_tableau<S>& method, const time_grid<GridScalar>& grid,
             batch<Scalar, Dim>& X, bool left_riemann, double tau, Scalar* early, Scalar* late,
             const progress_callback* progress) {
  const Eigen::Index B = X.cols();
  const std::size_t N = grid.steps();
  const soa_method<Scalar, S> m(method, left_riemann);
  alignas(64) Scalar x[Dim][T];
  Scalar* const data = X.data();
  for (Eigen::Index first = 0; first < B; first += T) {
    const Eigen::Index w = std::min<Eigen::Index>(T, B - first);
    const Scalar* src = data + first * Dim;
    for (Eigen::Index i = 0; i < w; ++i)
      for (int r = 0; r < Dim; ++r) x[r][i] = src[i * Dim + r];
    for (std::size_t n = 0; n < N; ++n) {
      const auto t = static_cast<Scalar>(grid[n]);
      const auto t_next = static_cast<Scalar>(grid[n + 1]);
      const soa_step_coefficients<Scalar, S> c(m, t, t_next - t);
      Scalar* e = nullptr;
      if constexpr (Energy)
        e = (kpe_step_is_early(t, t_next, tau) ? early : late) + first;
      soa_tile_step<Energy>(field, c, x, w, e);
    }
    Scalar* dst = data + first * Dim;
    for (Eigen::Index i = 0; i < w; ++i)
      for (int r = 0; r < Dim; ++r) dst[i * Dim + r] = x[r][i];
    if (progress) report_progress(*progress, static_cast<double>(first + w), static_cast<double>(B));
  }
}

/// Integrates `dx/dt = field(t, x)` over `grid` with the explicit method, stepping the batch
/// `X` (Dim x B, Dim fixed) in place, in tiles of `T` samples. With `energy`, adds each
/// sample's kinetic path energy of the early steps (min(t_n, t_{n+1}) < tau) to `early[i]`
/// and of the others to `late[i]` (B entries each; ignored, and may be null, without
/// `energy`), with the stage weights or, with `left_riemann`, from the first stage only.
///
/// `field` is a per-sample field `v(Scalar t, const point<Scalar, Dim>&)` returning an Eigen
/// vector of dimension Dim (a dynamic-size result is checked: kinflow::dimension_mismatch).
/// No heap allocation (the tile, Dim·T scalars, is on the stack). The state is written
/// back only after all steps of a tile: a field must not read the batch `X` itself.
/// `progress`, when not null, is called after every tile (kinflow/integrators/progress.hpp).
template <Eigen::Index T, class Field, class Scalar, int Dim, std::size_t S, class GridScalar>
void soa_fixed_steps_tiled(Field&& field, const butcher_tableau<S>& method,
                           const time_grid<GridScalar>& grid, batch<Scalar, Dim>& X, bool energy,
                           bool left_riemann, double tau, Scalar* early, Scalar* late,
                           const progress_callback* progress = nullptr) {
  static_assert(Dim != Eigen::Dynamic, "soa_fixed_steps needs a dimension fixed at compile time");
  static_assert(T >= 1, "the tile needs at least one sample");
  if (energy)
    soa_run<T, true>(field, method, grid, X, left_riemann, tau, early, late, progress);
  else
    soa_run<T, false>(field, method, grid, X, left_riemann, tau, early, late, progress);
}

/// soa_fixed_steps_tiled with the default tile, soa_default_tile<Scalar, Dim>.
template <class Field, class Scalar, int Dim, std::size_t S, class GridScalar>
void soa_fixed_steps(Field&& field, const butcher_tableau<S>& method, const time_grid<GridScalar>& grid,
                     batch<Scalar, Dim>& X, bool energy, bool left_riemann, double tau,
                     Scalar* early, Scalar* late, const progress_callback* progress = nullptr) {
  soa_fixed_steps_tiled<soa_default_tile<Scalar, Dim>>(std::forward<Field>(field), method, grid, X,
                                                       energy, left_riemann, tau, early, late, progress);
}

}  // namespace kinflow::detail
