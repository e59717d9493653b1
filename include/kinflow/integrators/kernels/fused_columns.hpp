#pragma once
/// @file
/// @brief Private: the fused column kernel of fixed-grid explicit Runge–Kutta for
/// per-sample fields of fixed dimension.
///
/// The batch is walked column by column, every stage of a column in registers and the
/// state read and written in place (what a hand-written loop over samples does):
///     x_j   = x + Σ_{l<j} (h a_jl) k_l,   k_j = v(t + c_j h, x_j)
///     x_new = x + Σ_j (h b_j) k_j
///     e     = Σ_j w_j ‖k_j‖²,   w_j = ½|h|·kpe_stage_weight(b, j)
/// Columns are taken in tiles of `cols` over all steps, so that a tile's energies stay in
/// cache. This is the kernel for fields written with Eigen vector operations on the point;
/// fields written coordinate by coordinate vectorize across samples in the
/// structure-of-arrays kernel (kernels/soa_tiles.hpp) instead.

#include <Eigen/Core>
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <type_traits>

#include "kinflow/core/batch.hpp"
#include "kinflow/core/errors.hpp"
#include "kinflow/energy/kpe.hpp"
#include "kinflow/integrators/progress.hpp"
#include "kinflow/integrators/tableau.hpp"
#include "kinflow/schedules/time_grid.hpp"

namespace kinflow::detail {

/// Steps `[0, steps)` of `grid` on the batch `X` (d x B, d fixed) with the fused column
/// kernel, in column tiles of `cols`; the energies go to `kpe` (when enabled) and
/// `progress` is told the share done after every step of every tile, out of
/// `progress_total_steps` steps per column.
template <class Field, class Scalar, int Dim, std::size_t S, class GridScalar>
void fused_fixed_steps(Field& field, const butcher_tableau<S>& method, const time_grid<GridScalar>& grid,
                       std::size_t steps, batch<Scalar, Dim>& X, kpe_accumulator<Scalar>& kpe,
                       Eigen::Index cols, const progress_callback& progress,
                       std::size_t progress_total_steps) {
  using point_type = point<Scalar, Dim>;
  const Eigen::Index d = X.rows(), B = X.cols();
  const bool kpe_on = kpe.enabled();
  const bool left = kpe.quadrature() == kpe_quadrature::left_riemann;
  const bool direct = kpe_on && !kpe.wants_increments();
  std::array<std::array<Scalar, S>, S> ha{};
  std::array<Scalar, S> hb{}, ct{}, w{};
  for (Eigen::Index first = 0; first < B; first += cols) {
    const Eigen::Index last = std::min(B, first + cols);
    for (std::size_t n = 0; n < steps; ++n) {
      const auto t = static_cast<Scalar>(grid[n]);
      const auto t_next = static_cast<Scalar>(grid[n + 1]);
      const Scalar h = t_next - t;
      for (std::size_t j = 0; j < S; ++j) {
        for (std::size_t l = 0; l < S; ++l) ha[j][l] = h * static_cast<Scalar>(method.a[j][l]);
        hb[j] = h * static_cast<Scalar>(method.b[j]);
        ct[j] = t + static_cast<Scalar>(method.c[j]) * h;
        w[j] = Scalar(0.5) * std::abs(h) * static_cast<Scalar>(kpe_stage_weight(method.b, j, left));
      }
      // The energy of column i goes to energy[i - offset]: the accumulator's early or late
      // sums, or (with a profile) the step's increments, which the accumulator then commits.
      Scalar* energy = nullptr;
      Eigen::Index offset = 0;
      if (kpe_on && direct) {
        energy = kpe.phase(t, t_next).data();
      } else if (kpe_on) {
        kpe.increments().head(last - first).setZero();
        energy = kpe.increments().data();
        offset = first;
      }
      // Whether the energy is on is a template parameter, so that the column loop has no
      // branches.
      auto columns = [&]<bool Energy>(std::bool_constant<Energy>) {
        for (Eigen::Index i = first; i < last; ++i) {
          const point_type x = X.col(i);
          std::array<point_type, S> kk;
          for (std::size_t j = 0; j < S; ++j) {
            point_type xs = x;
            for (std::size_t l = 0; l < j; ++l) xs += ha[j][l] * kk[l];
            decltype(auto) v = field(ct[j], static_cast<const point_type&>(xs));
            if constexpr (std::remove_cvref_t<decltype(v)>::RowsAtCompileTime == Eigen::Dynamic)
              if (v.size() != d) require_dimension("velocity returned by the per-sample field", v.size(), d);
            kk[j] = v;
          }
          point_type xn = x;
          for (std::size_t j = 0; j < S; ++j) xn += hb[j] * kk[j];
          X.col(i) = xn;
          if constexpr (Energy) {
            Scalar e = 0;
            for (std::size_t j = 0; j < S; ++j) e += w[j] * kk[j].squaredNorm();
            energy[i - offset] += e;
          }
        }
      };
      if (kpe_on)
        columns(std::true_type{});
      else
        columns(std::false_type{});
      if (kpe_on && !direct) kpe.commit(n, t, t_next, first, last - first);
      report_progress(progress,
                      static_cast<double>(first) * static_cast<double>(progress_total_steps) +
                          static_cast<double>(last - first) * static_cast<double>(n + 1),
                      static_cast<double>(B) * static_cast<double>(progress_total_steps));
    }
  }
}

}  // namespace kinflow::detail
