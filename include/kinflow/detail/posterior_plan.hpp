#pragma once
/// @file
/// @brief Private machinery of the closed-form posterior engine: how one evaluation is cut
/// into tiles (points per block, samples per block, worker threads) so that its scratch
/// stays within the memory budget, and the scratch array itself.

#include <algorithm>
#include <cstddef>
#include <new>
#include <string>

#include <Eigen/Core>

#include "kinflow/core/errors.hpp"
#include "kinflow/core/products.hpp"
#include "kinflow/detail/field_parallel.hpp"

namespace kinflow {

/// Which posterior statistics a closed-form evaluation gathers besides the log-sum-exp
/// (kinflow::posterior_state, closed_form_field::partial_state; here, below the fields, so that
/// the engine's kernels share the one type).
struct posterior_request {
  /// The weighted sum of points `S` (posterior mean `S / W`).
  bool mean = false;
  /// The weighted squared deviations `Q` (trace of the posterior covariance `Q / W`),
  /// gathered without cancellation (docs/math.md, "The divergence in the velocity's pass").
  bool trace = false;
};

}  // namespace kinflow

namespace kinflow::detail {

using field_index = Eigen::Index;

/// Largest d for which distance_method::automatic picks the direct distances (measured:
/// from d ≈ 6 on, the product-based expansion is faster in float and double).
inline constexpr field_index direct_distance_max_dim = 4;

/// Scratch array from the global operator new (aligned for vector loads), so that
/// allocations are visible to programs that count them.
template <class Scalar>
class field_scratch {
public:
  explicit field_scratch(std::size_t count)
      : data_(count == 0 ? nullptr
                         : static_cast<Scalar*>(::operator new(count * sizeof(Scalar),
                                                               std::align_val_t{alignment}))) {}
  field_scratch(const field_scratch&) = delete;
  field_scratch& operator=(const field_scratch&) = delete;
  ~field_scratch() {
    if (data_ != nullptr) ::operator delete(data_, std::align_val_t{alignment});
  }
  [[nodiscard]] Scalar* data() const noexcept { return data_; }

private:
  static constexpr std::size_t alignment = 64;
  Scalar* data_;
};

/// Block sizes, worker count and scratch size of one evaluation.
struct posterior_plan {
  field_index rows_block = 1;  ///< points per tile
  field_index cols_block = 1;  ///< samples per tile (and per task)
  unsigned workers = 1;
  bool expanded = false;
  bool trace = false;  ///< the trace is gathered (its scratch is part of worker_scalars)
  bool blas = false;  ///< the expanded path's products through BLAS (detail::product_into)
  std::size_t worker_scalars = 0;  ///< scratch per worker, in scalars
  [[nodiscard]] std::size_t scratch_bytes(std::size_t scalar_size) const noexcept {
    return static_cast<std::size_t>(workers) * worker_scalars * scalar_size;
  }
};

/// Bytes a stream allocates besides its scratch arrays (thread handles, error slots).
inline constexpr std::size_t field_bookkeeping_bytes = 4096;

/// `n` rounded up to whole 64-byte lines of Scalar. Every scratch array starts on a line and
/// every block column has a padded leading dimension, so that Eigen's reductions (whose
/// summation order follows the data's alignment) do the same operations for a sample
/// whichever worker and scratch slice handle it.
template <class Scalar>
constexpr field_index field_pad(field_index n) noexcept {
  constexpr field_index line = 64 / static_cast<field_index>(sizeof(Scalar)) > 0
                                   ? 64 / static_cast<field_index>(sizeof(Scalar))
                                   : 1;
  return (n + line - 1) / line * line;
}

/// Scratch scalars of one worker for the given blocks (see posterior_tile_worker for the layout).
template <class Scalar>
std::size_t posterior_worker_scalars(field_index d, field_index rows, field_index cols,
                                     bool expanded, bool trace = false) {
  const field_index ld = field_pad<Scalar>(rows);
  const field_index tile = expanded ? ld * cols : ld * (d + 1) + ld;  // tile, or Yᵀ block + column
  field_index total = tile + ld + field_pad<Scalar>(d * cols) + 8 * field_pad<Scalar>(cols) +
                      field_pad<Scalar>(d + 1);
  // The trace over product distances (split_trace): the mean of the directly summed pairs,
  // four sums and two flags per sample.
  if (expanded && trace) total += field_pad<Scalar>(d * cols) + 6 * field_pad<Scalar>(cols);
  return static_cast<std::size_t>(total);
}

/// Chooses blocks and workers so that all scratch fits in @p budget bytes.
template <class Scalar>
posterior_plan make_posterior_plan(field_index d, field_index n, field_index b,
                                   std::size_t budget, unsigned threads,
                                   distance_method method, bool need_trace) {
  posterior_plan p;
  p.expanded = method == distance_method::expanded ||
               (method == distance_method::automatic && d > direct_distance_max_dim);
  p.trace = need_trace;
  field_index rows = std::min<field_index>(n, 512);
  field_index cols = std::min<field_index>(b, p.expanded ? 256 : 128);
  rows = std::max<field_index>(rows, 1);
  cols = std::max<field_index>(cols, 1);

  // Threads only pay off beyond ~0.1 ms of work.
  const double work = static_cast<double>(n) * static_cast<double>(b) * static_cast<double>(d + 16);
  unsigned workers = work < 4.0e5 ? 1u : field_worker_count(threads, static_cast<std::size_t>(b));
  if (workers > 1) cols = std::min<field_index>(cols, (b + workers - 1) / workers);

  const std::size_t usable = budget > field_bookkeeping_bytes ? budget - field_bookkeeping_bytes : 0;
  auto fits = [&](field_index r, field_index c, unsigned w) {
    return static_cast<std::size_t>(w) * posterior_worker_scalars<Scalar>(d, r, c, p.expanded, p.trace) *
               sizeof(Scalar) <=
           usable;
  };
  auto shrink = [&](field_index r_floor, field_index c_floor) {
    while (!fits(rows, cols, workers)) {
      if (cols > c_floor && (cols >= rows || rows <= r_floor))
        cols = std::max(c_floor, cols / 2);
      else if (rows > r_floor)
        rows = std::max(r_floor, rows / 2);
      else
        return;
    }
  };
  shrink(std::min<field_index>(rows, 64), std::min<field_index>(cols, 16));
  while (!fits(rows, cols, workers) && workers > 1) --workers;
  shrink(1, 1);
  if (!fits(rows, cols, workers)) {
    // Not even one point against one query fits: a clear error, not an allocation past
    // the budget.
    const std::size_t need =
        field_bookkeeping_bytes + posterior_worker_scalars<Scalar>(d, 1, 1, p.expanded, p.trace) * sizeof(Scalar);
    require(false, "memory_budget", budget,
            "expected at least " + std::to_string(need) + " bytes for points of dimension " + std::to_string(d));
  }

  p.rows_block = rows;
  p.cols_block = cols;
  p.workers = std::min<unsigned>(workers, static_cast<unsigned>((b + cols - 1) / cols));
  p.workers = std::max(p.workers, 1u);
  p.worker_scalars = posterior_worker_scalars<Scalar>(d, rows, cols, p.expanded, p.trace);
  return p;
}

}  // namespace kinflow::detail
