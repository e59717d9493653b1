#pragma once
/// @file
/// @brief How kinflow computes its large products: which library (Eigen or BLAS) does the
/// matrix products, and how the closed-form fields form squared distances.
///
/// The closed-form fields (the product-based distances for d ≥ 5) and kinflow::mlp_field
/// spend most of their time in matrix products. Eigen computes them with the vector
/// instructions the program was compiled for: SSE2 only in a portable x86-64 build.
/// Compiled with `KINFLOW_USE_BLAS` (link the CMake target `kinflow::blas`, or define the
/// macro in every translation unit and link a BLAS yourself), those products go through
/// BLAS instead; OpenBLAS picks the widest kernels of the CPU at run time, so a portable
/// binary still multiplies at full speed.
///
/// Threads: kinflow calls BLAS single-threaded, from its own worker threads (the fields'
/// `threads` option; kinflow::mlp_field runs on the calling thread), so the number of
/// threads doing products is the number the caller asked for. With OpenBLAS
/// (`KINFLOW_BLAS_OPENBLAS`, set by `kinflow::blas` when CMake found OpenBLAS) kinflow sets
/// OpenBLAS's thread count to 1 while one of its evaluations runs and restores it after
/// the last one ends; BLAS calls of the program's own on other threads meanwhile run
/// single-threaded too. With another BLAS, configure it single-threaded yourself.
///
/// Results of the two backends agree to rounding; only Eigen gives the same bits on every
/// CPU the same binary runs on (OpenBLAS chooses its kernels, and so its summation order,
/// by CPU).

namespace kinflow {

/// True when kinflow was compiled with `KINFLOW_USE_BLAS`.
#if defined(KINFLOW_USE_BLAS)
inline constexpr bool blas_available = true;
#else
inline constexpr bool blas_available = false;
#endif

/// How a closed-form field (kinflow::empirical_field, kinflow::gaussian_mixture_field) forms
/// the squared distances `‖x - t y‖²` between samples and points.
enum class distance_method {
  /// `direct` for d ≤ 4 and for divergences, `expanded` otherwise.
  automatic,
  /// `Σ_k (x_k - t y_k)²`: accurate to rounding at every t, O(d) vector work per pair.
  direct,
  /// `‖x‖² - 2t x·y + t²‖y‖²`, the cross terms from one matrix product per tile (GEMM
  /// speed). The expansion loses digits when the distance is small next to ‖x‖ and ‖t y‖
  /// (always the case as t → 1). Per sample, a bound of that rounding in the logits is
  /// computed; where it exceeds `ε^(2/3) + 8 sqrt(d) ε |L|` (ε^(2/3) = 3.7e-11 in double,
  /// 2.4e-5 in float; the second term is the rounding any logit of size |L| has anyway),
  /// every pair that can carry weight is recomputed directly. So the logits are accurate to
  /// that at every t, up to t = 1.
  expanded,
};

/// Which library computes a field's large matrix products.
enum class matrix_products {
  /// BLAS when kinflow is compiled with `KINFLOW_USE_BLAS`, Eigen otherwise.
  automatic,
  /// Always Eigen (bit-identical results on every CPU the binary runs on).
  eigen,
  /// Always BLAS; invalid (kinflow::invalid_argument) without `KINFLOW_USE_BLAS`.
  blas,
};

}  // namespace kinflow
