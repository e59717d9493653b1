#pragma once
/// @file
/// @brief Private: fused linear combinations `out = x + Σ c_l k_l` over whole batches.

#include <Eigen/Core>
#include <array>
#include <cstddef>
#include <type_traits>

namespace kinflow::detail {

/// The nonzero terms of one weighted sum of stages: `Σ coef[m] k[index[m]]`, m < count.
template <class Scalar, std::size_t S>
struct stage_terms {
  std::array<Scalar, S> coef{};
  std::array<std::size_t, S> index{};
  std::size_t count = 0;
};

/// Keeps the nonzero weights of `w[0..n)` scaled by `scale`.
template <class Scalar, std::size_t S, class Weights>
stage_terms<Scalar, S> nonzero_terms(const Weights& w, std::size_t n, Scalar scale) {
  stage_terms<Scalar, S> t;
  for (std::size_t l = 0; l < n; ++l)
    if (w[l] != 0) {
      t.coef[t.count] = scale * static_cast<Scalar>(w[l]);
      t.index[t.count] = l;
      ++t.count;
    }
  return t;
}

/// Marks a step already folded into the coefficients (see combine).
struct unit_step {};

/// `out = x + Σ_m coef[m] k[index[m]]·h` in a single pass (one Eigen expression per
/// count, so there are no temporaries and each coefficient is read once).
///
/// `h` is either a scalar already folded into the coefficients (pass `nonzero_terms(w, n, h)`
/// and `unit_step{}`): then the terms are added to `x` one after another, `((x + c₀k₀) + c₁k₁)…`,
/// the order a per-sample loop uses, so batched and fused kernels agree bit for bit. Or a
/// `sample_times` with one step per column (`coef` unscaled): then
/// `out.col(m) = x.col(m) + h(m)·(Σ coef k.col(m))`. `out` may alias `x` (every update is
/// coefficient-wise) but not `k`.

template <class Batch, class Scalar, std::size_t S, class Step = unit_step>
void combine(Batch& out, const Batch& x, const std::array<Batch, S>& k,
             const stage_terms<Scalar, S>& t, const Step& h = {}) {
  constexpr bool shared = std::is_same_v<Step, unit_step>;
  auto term = [&](std::size_t m) { return t.coef[m] * k[t.index[m]]; };
  // The per-column step scales the sum of the terms (one product per coefficient).
  auto scaled = [&](const auto& sum) {
    if constexpr (shared)
      return sum;
    else
      return sum * h.asDiagonal();
  };
  // Cases beyond S cannot occur; `if constexpr` keeps them out of the instantiation.
  switch (t.count) {
    case 0: if (&out != &x) out = x; return;
    case 1: out = x + scaled(term(0)); return;
    case 2:
      if constexpr (S >= 2) {
        if constexpr (shared) out = x + term(0) + term(1);
        else out = x + scaled(term(0) + term(1));
      }
      return;
    case 3:
      if constexpr (S >= 3) {
        if constexpr (shared) out = x + term(0) + term(1) + term(2);
        else out = x + scaled(term(0) + term(1) + term(2));
      }
      return;
    case 4:
      if constexpr (S >= 4) {
        if constexpr (shared) out = x + term(0) + term(1) + term(2) + term(3);
        else out = x + scaled(term(0) + term(1) + term(2) + term(3));
      }
      return;
    default:
      if constexpr (S >= 5) {
        if constexpr (shared) out = x + term(0) + term(1) + term(2) + term(3);
        else out = x + scaled(term(0) + term(1) + term(2) + term(3) + term(4));
        for (std::size_t m = shared ? 4 : 5; m < t.count; ++m) out += scaled(term(m));
      }
  }
}

}  // namespace kinflow::detail
