#pragma once
/// @file
/// @brief Private: fused linear combinations `out = x + Σ c_l k_l` over whole batches.

#include <Eigen/Core>
#include <array>
#include <cstddef>

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

/// `out = x + Σ_m coef[m] k[index[m]]` in a single pass (one Eigen expression per count,
/// so there are no temporaries and each coefficient is read once). `out` may alias `x`.
template <class Batch, class Scalar, std::size_t S>
void combine(Batch& out, const Batch& x, const std::array<Batch, S>& k,
             const stage_terms<Scalar, S>& t) {
  const auto& c = t.coef;
  const auto& i = t.index;
  switch (t.count) {
    case 0: if (&out != &x) out = x; break;
    case 1: out = x + c[0] * k[i[0]]; break;
    case 2: out = x + c[0] * k[i[0]] + c[1] * k[i[1]]; break;
    case 3: out = x + c[0] * k[i[0]] + c[1] * k[i[1]] + c[2] * k[i[2]]; break;
    case 4: out = x + c[0] * k[i[0]] + c[1] * k[i[1]] + c[2] * k[i[2]] + c[3] * k[i[3]]; break;
    default: {
      out = x + c[0] * k[i[0]] + c[1] * k[i[1]] + c[2] * k[i[2]] + c[3] * k[i[3]];
      for (std::size_t m = 4; m < t.count; ++m) out += c[m] * k[i[m]];
    }
  }
}

}  // namespace kinflow::detail
