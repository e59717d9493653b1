#pragma once
/// @file
/// @brief Private machinery of the closed-form posterior engine: the full matrix of
/// normalised posterior weights, for callers who ask for it (small problems).

#include <algorithm>
#include <cmath>
#include <cstddef>

#include <Eigen/Core>

#include "kinflow/core/batch.hpp"
#include "kinflow/detail/field_parallel.hpp"
#include "kinflow/detail/vector_exp.hpp"
#include "kinflow/detail/posterior_kernels.hpp"
#include "kinflow/detail/posterior_plan.hpp"

namespace kinflow::detail {

/// Writes the normalised posterior weights `w_ij` of every sample into the `n x b` matrix
/// W, with direct distances. Scratch: one transposed point block per worker.
template <class Scalar, int Dim, class Params, class WMatrix>
void posterior_weight_matrix(const posterior_points<Scalar, Dim>& pts, const batch<Scalar, Dim>& X,
                             const Params& params, std::size_t budget, unsigned threads,
                             WMatrix& W) {
  const field_index d = pts.y.rows(), n = pts.y.cols(), b = X.cols();
  if (b == 0) return;
  posterior_plan plan = make_posterior_plan<Scalar>(d, n, b, budget, threads,
                                                    distance_method::direct, false);
  field_scratch<Scalar> mem(static_cast<std::size_t>(plan.workers) * plan.worker_scalars);
  const field_index mb = plan.rows_block, cb = plan.cols_block;
  const auto tasks = static_cast<std::size_t>((b + cb - 1) / cb);
  const field_index ld = field_pad<Scalar>(mb);
  field_parallel_for(plan.workers, tasks, [&](unsigned w, std::size_t task) {
    Scalar* yt = mem.data() + static_cast<std::size_t>(w) * plan.worker_scalars;
    Scalar* aux = yt + ld * (d + 1);
    const field_index j0 = static_cast<field_index>(task) * cb;
    const field_index nc = std::min(cb, b - j0);
    for (field_index i0 = 0; i0 < n; i0 += mb) {
      const field_index m = std::min(mb, n - i0);
      transpose_points<Scalar, Dim>(pts.y, i0, m, ld, yt);
      for (field_index j = j0; j < j0 + nc; ++j) {
        const posterior_params<Scalar> par = params(j);
        Scalar* out = W.col(j).data() + i0;
        direct_sq_distances<Scalar, Dim>(yt, m, ld, d, X.col(j).data(), par.t,
                                         distance_scale(pts, par), out);
        distances_to_logits<Scalar, Dim>(pts, i0, m, par, out, aux);
      }
    }
    for (field_index j = j0; j < j0 + nc; ++j) {
      auto col = W.col(j).array();
      // Normalised by the sum of the same exponentials (not by exp(L - logsumexp), whose
      // rounding would shift every weight by ε|L|).
      const Scalar mx = col.maxCoeff();
      col = (col - mx).max(exp_floor<Scalar>());
      exp_in_place(col.data(), n);
      // Terms at the floor are below exp(floor) relative to the largest: reported as 0.
      col = (col > std::exp(exp_floor<Scalar>())).select(col, Scalar(0));
      col /= col.sum();
    }
  });
}

}  // namespace kinflow::detail
