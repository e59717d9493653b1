#pragma once
/// @file
/// @brief Private machinery of the closed-form fields: posterior statistics of a sample
/// over a set of Gaussian "points", streamed in blocks.
///
/// For samples `x_j` (columns of X) at times `t_j` and points `y_i` (columns of Y), the
/// logits are
///
///     L_ij = log π_i - ‖x_j - t_j y_i‖² / (2 v_ij)              (shared variance v_j)
///     L_ij = log π_i - (d/2) log v_ij - ‖x_j - t_j y_i‖² / (2 v_ij),
///            v_ij = u_j² + t_j² s_i²                              (per-point variance)
///
/// and the posterior weights `w_ij = softmax_i(L_ij)`. One pass over the points gives, per
/// sample, `log Σ_i exp(L_ij)`, `Σ_i w_ij g_ij y_i`, `Σ_i w_ij c_ij` (per-point case, with
/// `c_ij = (t s_i² - u) / v_ij`, `g_ij = 1 - t c_ij`) and `Σ_i w_ij ‖y_i - ȳ_j‖²`.
///
/// Points are taken in blocks of `rows_block`, samples in blocks of `cols_block`; the
/// maximum and the sums are carried from block to block with an online log-sum-exp, so the
/// `N x B` matrix of weights never exists beyond one `rows_block x cols_block` tile per
/// worker thread. Sample blocks are spread over threads; every sample is computed by the
/// same sequence of operations whatever the number of threads.

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <new>

#include "kinflow/core/batch.hpp"
#include "kinflow/detail/field_parallel.hpp"
#include "kinflow/detail/gemm.hpp"
#include "kinflow/detail/logsumexp.hpp"

namespace kinflow {

/// How a closed-form field forms the squared distances `‖x - t y‖²`.
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

namespace detail {

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

/// The point side: `y` (d x n), cached squared norms and optional priors and variances.
template <class Scalar, int Dim>
struct posterior_points {
  Eigen::Map<const batch<Scalar, Dim>> y;
  const Scalar* sq_norm = nullptr;    ///< ‖y_i‖², n entries
  Scalar max_norm = 0;                ///< max_i ‖y_i‖
  const Scalar* log_prior = nullptr;  ///< log π_i (n entries); null when all equal
  const Scalar* spread = nullptr;     ///< s_i² (n entries); null: shared variance per column
  Scalar min_spread = 0;              ///< min_i s_i²
};

/// Per-sample parameters: the scale `t` of the points and either the shared variance
/// (`a = v_j`) or, in the per-point case, `a = u_j`.
template <class Scalar>
struct posterior_params {
  Scalar t;
  Scalar a;
};

/// What a stream computes besides the log-sum-exp.
struct posterior_request {
  bool mean = false;   ///< Σ_i w_ij g_ij y_i (g = 1 without per-point variances)
  bool trace = false;  ///< Σ_i w_ij ‖y_i - ȳ_j‖² (shared variance only; direct distances)
};

/// One sample's statistics, handed to the caller's `finish(j, column)`.
template <class Scalar>
struct posterior_column {
  Scalar log_sum;       ///< log Σ_i exp(L_ij)
  const Scalar* mean;   ///< d entries (valid when requested)
  Scalar coef;          ///< Σ_i w_ij c_ij (per-point variance case)
  Scalar trace;         ///< Σ_i w_ij ‖y_i - ȳ_j‖² (when requested)
};

/// Block sizes, worker count and scratch size of one evaluation.
struct posterior_plan {
  field_index rows_block = 1;  ///< points per tile
  field_index cols_block = 1;  ///< samples per tile (and per task)
  unsigned workers = 1;
  bool expanded = false;
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

/// `Σ_k (a_k - t b_k)²` (t = 0: `Σ_k a_k²`) in a fixed order, whatever the alignment of the
/// data, so that results do not depend on where the caller's matrices live.
template <class Scalar>
Scalar plain_sq_distance(const Scalar* a, const Scalar* b, Scalar t, field_index d) noexcept {
  Scalar s = 0;
  for (field_index k = 0; k < d; ++k) {
    const Scalar diff = a[k] - (b == nullptr ? Scalar(0) : t * b[k]);
    s += diff * diff;
  }
  return s;
}

/// Squared norms of the columns of @p y (see plain_sq_distance).
template <class Scalar, int Dim>
Eigen::Matrix<Scalar, Eigen::Dynamic, 1> column_sq_norms(const Eigen::Map<const batch<Scalar, Dim>>& y) {
  Eigen::Matrix<Scalar, Eigen::Dynamic, 1> out(y.cols());
  for (field_index i = 0; i < y.cols(); ++i)
    out(i) = plain_sq_distance<Scalar>(y.col(i).data(), nullptr, Scalar(0), y.rows());
  return out;
}

/// Scratch scalars of one worker for the given blocks (see posterior_block for the layout).
template <class Scalar>
std::size_t posterior_worker_scalars(field_index d, field_index rows, field_index cols,
                                     bool expanded) {
  const field_index ld = field_pad<Scalar>(rows);
  const field_index tile = expanded ? ld * cols : ld * (d + 1) + ld;  // tile, or Yᵀ block + column
  const field_index total = tile + ld + field_pad<Scalar>(d * cols) + 8 * field_pad<Scalar>(cols) +
                            field_pad<Scalar>(d + 1);
  return static_cast<std::size_t>(total);
}

/// Chooses blocks and workers so that all scratch fits in @p budget bytes.
template <class Scalar>
posterior_plan make_posterior_plan(field_index d, field_index n, field_index b,
                                   std::size_t budget, unsigned threads,
                                   distance_method method, bool need_trace) {
  posterior_plan p;
  p.expanded = !need_trace && (method == distance_method::expanded ||
                               (method == distance_method::automatic && d > direct_distance_max_dim));
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
    return static_cast<std::size_t>(w) * posterior_worker_scalars<Scalar>(d, r, c, p.expanded) *
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

  p.rows_block = rows;
  p.cols_block = cols;
  p.workers = std::min<unsigned>(workers, static_cast<unsigned>((b + cols - 1) / cols));
  p.workers = std::max(p.workers, 1u);
  p.worker_scalars = posterior_worker_scalars<Scalar>(d, rows, cols, p.expanded);
  return p;
}

/// Copies points [i0, i0 + m) of `y` into `yt` as an `m x (d + 1)` column-major block with
/// leading dimension `ld` (one coordinate per column, contiguous over points), the last
/// column all ones.
template <class Scalar, int Dim>
void transpose_points(const Eigen::Map<const batch<Scalar, Dim>>& y, field_index i0,
                      field_index m, field_index ld, Scalar* yt) {
  const field_index d = y.rows();
  const Scalar* src = y.data() + i0 * d;
  for (field_index i = 0; i < m; ++i)
    for (field_index k = 0; k < d; ++k) yt[k * ld + i] = src[i * d + k];
  std::fill(yt + d * ld, yt + d * ld + m, Scalar(1));
}

/// `out_i = scale · ‖x - t y_i‖²` over a transposed block (see transpose_points).
template <class Scalar, int Dim>
void direct_sq_distances(const Scalar* yt, field_index m, field_index ld, field_index d,
                         const Scalar* x, Scalar t, Scalar scale, Scalar* out) {
  if constexpr (Dim != Eigen::Dynamic) {
    // Fixed d: the coordinate loop unrolls and the loop over points vectorises.
    Scalar xs[Dim];
    for (int k = 0; k < Dim; ++k) xs[k] = x[k];
    for (field_index i = 0; i < m; ++i) {
      Scalar s = 0;
      for (int k = 0; k < Dim; ++k) {
        const Scalar diff = xs[k] - t * yt[k * ld + i];
        s += diff * diff;
      }
      out[i] = scale * s;
    }
  } else {
    using array_map = Eigen::Map<Eigen::Array<Scalar, Eigen::Dynamic, 1>>;
    using const_array_map = Eigen::Map<const Eigen::Array<Scalar, Eigen::Dynamic, 1>>;
    array_map o(out, m);
    o = (x[0] - t * const_array_map(yt, m)).square();
    for (field_index k = 1; k < d; ++k) o += (x[k] - t * const_array_map(yt + k * ld, m)).square();
    if (scale != Scalar(1)) o *= scale;
  }
}

/// Scale applied to squared distances before distances_to_logits: `-1/(2v)` with a shared
/// variance, 1 (the division happens per point) otherwise.
template <class Scalar, int Dim>
Scalar distance_scale(const posterior_points<Scalar, Dim>& pts, posterior_params<Scalar> par) {
  return pts.spread == nullptr ? Scalar(-0.5) / par.a : Scalar(1);
}

/// Completes the logits of points [i0, i0 + m) from `L_i = distance_scale · ‖x - t y_i‖²`.
template <class Scalar, int Dim>
void distances_to_logits(const posterior_points<Scalar, Dim>& pts, field_index i0, field_index m,
                         posterior_params<Scalar> par, Scalar* logits, Scalar* aux) {
  using array_map = Eigen::Map<Eigen::Array<Scalar, Eigen::Dynamic, 1>>;
  using const_array_map = Eigen::Map<const Eigen::Array<Scalar, Eigen::Dynamic, 1>>;
  array_map L(logits, m);
  if (pts.spread != nullptr) {
    array_map var(aux, m);
    const Scalar half_d = Scalar(0.5) * static_cast<Scalar>(pts.y.rows());
    var = par.a * par.a + par.t * par.t * const_array_map(pts.spread + i0, m);
    L = -(half_d * var.log() + Scalar(0.5) * L / var);
  }
  if (pts.log_prior != nullptr) L += const_array_map(pts.log_prior + i0, m);
}

/// The streaming kernel for the sample block [j0, j0 + nc) on one worker's scratch.
template <class Scalar, int Dim, class Params, class Finish>
void posterior_block(const posterior_points<Scalar, Dim>& pts, const batch<Scalar, Dim>& X,
                     field_index j0, field_index nc, const Params& params, posterior_request req,
                     const posterior_plan& plan, Scalar* scratch, const Finish& finish) {
  using vector = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;
  using array = Eigen::Array<Scalar, Eigen::Dynamic, 1>;
  using vector_map = Eigen::Map<vector>;
  using array_map = Eigen::Map<array>;
  using const_array_map = Eigen::Map<const array>;
  using strided_map = Eigen::Map<const Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>, 0,
                                  Eigen::OuterStride<>>;
  using tile_map = Eigen::Map<Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>, 0,
                              Eigen::OuterStride<>>;
  constexpr Scalar inf = std::numeric_limits<Scalar>::infinity();
  constexpr Scalar eps = std::numeric_limits<Scalar>::epsilon();

  const field_index d = pts.y.rows(), n = pts.y.cols(), mb = plan.rows_block;
  const bool per_point = pts.spread != nullptr;

  // Carve the scratch (see posterior_worker_scalars); every array starts on a 64-byte line.
  const field_index ld = field_pad<Scalar>(mb), cb = field_pad<Scalar>(plan.cols_block);
  Scalar* p = scratch;
  Scalar* yt = nullptr;
  Scalar* tile;
  if (plan.expanded) {
    tile = p;  // ld x cols_block
    p += ld * plan.cols_block;
  } else {
    yt = p;  // ld x (d + 1)
    p += ld * (d + 1);
    tile = p;  // one column
    p += ld;
  }
  Scalar* aux = p;
  p += ld;
  Scalar* acc = p;
  p += field_pad<Scalar>(d * plan.cols_block);
  Scalar* run_max = p;
  Scalar* run_sum = run_max + cb;
  Scalar* run_coef = run_sum + cb;
  Scalar* run_m2 = run_coef + cb;
  Scalar* col_t = run_m2 + cb;
  Scalar* col_a = col_t + cb;
  Scalar* x_norm2 = col_a + cb;
  Scalar* bound = x_norm2 + cb;
  Scalar* tmp = bound + cb;  // d + 1

  std::fill(run_max, run_max + nc, -inf);
  std::fill(run_sum, run_sum + nc, Scalar(0));
  std::fill(run_coef, run_coef + nc, Scalar(0));
  std::fill(run_m2, run_m2 + nc, Scalar(0));
  std::fill(acc, acc + d * nc, Scalar(0));
  for (field_index j = 0; j < nc; ++j) {
    const posterior_params<Scalar> par = params(j0 + j);
    col_t[j] = par.t;
    col_a[j] = par.a;
  }

  // Expanded distances: rounding bound of the logits per sample. The cross term x·y of a
  // product of length d carries an error of about sqrt(d) u ‖x‖‖y‖ (u the unit roundoff),
  // the norms likewise; (2 sqrt(d) + 4) u (‖x‖ + t max‖y‖)² bounds the error of the
  // squared distance, divided by 2v for the logit.
  // Refinement is needed where that bound exceeds ε^(2/3) plus the rounding the logit has
  // anyway when formed directly (about sqrt(d) ε |L|; 8 sqrt(d) ε |L| with |L| the smallest
  // magnitude among the logits that matter, those near the maximum).
  const Scalar refine_tol = std::pow(eps, Scalar(2) / Scalar(3));
  const Scalar refine_rel = Scalar(8) * std::sqrt(static_cast<Scalar>(d)) * eps;
  const Scalar margin = std::log(static_cast<Scalar>(n)) - std::log(eps) + Scalar(2);
  if (plan.expanded) {
    const Scalar kappa = (Scalar(2) * std::sqrt(static_cast<Scalar>(d)) + Scalar(4)) * eps / 2;
    for (field_index j = 0; j < nc; ++j) {
      const Scalar xx = plain_sq_distance<Scalar>(X.col(j0 + j).data(), nullptr, Scalar(0), d);
      x_norm2[j] = xx;
      const Scalar t = col_t[j];
      const Scalar min_var =
          per_point ? col_a[j] * col_a[j] + t * t * pts.min_spread : col_a[j];
      const Scalar r = std::sqrt(xx) + std::abs(t) * pts.max_norm;
      bound[j] = kappa * r * r / (Scalar(2) * min_var);
    }
  }

  const Scalar floor = exp_floor<Scalar>();
  const Scalar half_d = Scalar(0.5) * static_cast<Scalar>(d);

  // Folds the logits of one block (in `e`, overwritten by the unnormalised weights,
  // times g in the per-point case) into sample j's running state. Returns the factor
  // by which the sample's accumulated mean must still be rescaled (expanded path: the
  // block's contribution comes later from one product).
  auto fold = [&](field_index j, field_index i0, field_index m, Scalar* e_ptr) {
    array_map e(e_ptr, m);
    const Scalar block_max = e.maxCoeff();
    const Scalar new_max = std::max(run_max[j], block_max);
    if (!(new_max > -inf)) {  // every logit so far is -inf: nothing to add
      e.setZero();
      return Scalar(1);
    }
    const Scalar alpha = run_max[j] == -inf ? Scalar(0) : std::exp(run_max[j] - new_max);
    run_max[j] = new_max;
    e = (e - new_max).max(floor);
    exp_in_place(e_ptr, m);
    Scalar* a = acc + j * d;
    const Scalar t = col_t[j];
    if (per_point) {
      array_map var(aux, m);
      var = col_a[j] * col_a[j] + t * t * const_array_map(pts.spread + i0, m);
      // c = (t s² - u) / v; the weights on the points become e g, g = 1 - t c.
      var = (t * const_array_map(pts.spread + i0, m) - col_a[j]) / var;
      const Scalar sb = e.sum();
      const Scalar hc = (e * var).sum();
      run_sum[j] = alpha * run_sum[j] + sb;
      run_coef[j] = alpha * run_coef[j] + hc;
      if (req.mean) e *= Scalar(1) - t * var;
    } else if (req.trace) {
      // Chan's pairwise update of a weighted mean and sum of squared deviations.
      const strided_map ytm(yt, m, d + 1, Eigen::OuterStride<>(ld));
      vector_map s(tmp, d + 1);
      s.noalias() = ytm.transpose() * e.matrix();
      const Scalar sb = s(d);
      vector_map mu_b(tmp, d);
      mu_b /= sb;
      Scalar m2_b = 0;
      for (field_index k = 0; k < d; ++k)
        m2_b += (e * (const_array_map(yt + k * ld, m) - mu_b(k)).square()).sum();
      const Scalar sa = alpha * run_sum[j];
      const Scalar total = sa + sb;
      vector_map mu(a, d);
      const Scalar sq = (mu_b - mu).squaredNorm();
      mu += (sb / total) * (mu_b - mu);
      run_m2[j] = alpha * run_m2[j] + m2_b + sq * (sa * sb / total);
      run_sum[j] = total;
      return Scalar(1);
    } else {
      run_sum[j] = alpha * run_sum[j] + e.sum();
    }
    if (req.mean && !plan.expanded) {
      const strided_map ytm(yt, m, d, Eigen::OuterStride<>(ld));
      vector_map aj(a, d);
      if (alpha != Scalar(1)) aj *= alpha;
      aj.noalias() += ytm.transpose() * e.matrix();
      return Scalar(1);
    }
    return alpha;
  };

  for (field_index i0 = 0; i0 < n; i0 += mb) {
    const field_index m = std::min(mb, n - i0);
    if (!plan.expanded) {
      transpose_points<Scalar, Dim>(pts.y, i0, m, ld, yt);
      for (field_index j = 0; j < nc; ++j) {
        const posterior_params<Scalar> par{col_t[j], col_a[j]};
        direct_sq_distances<Scalar, Dim>(yt, m, ld, d, X.col(j0 + j).data(), par.t,
                                         distance_scale(pts, par), tile);
        distances_to_logits<Scalar, Dim>(pts, i0, m, par, tile, aux);
        fold(j, i0, m, tile);
      }
      continue;
    }

    // Expanded distances: one product for the whole tile, then per sample.
    tile_map T(tile, m, nc, Eigen::OuterStride<>(ld));
    const auto yb = pts.y.middleCols(i0, m);
    product_into(yb.transpose(), X.middleCols(j0, nc), T, false, plan.blas);
    const const_array_map yy(pts.sq_norm + i0, m);
    for (field_index j = 0; j < nc; ++j) {
      array_map L(tile + j * ld, m);
      const Scalar t = col_t[j];
      const posterior_params<Scalar> par{t, col_a[j]};
      L = ((x_norm2[j] - Scalar(2) * t * L) + (t * t) * yy).max(Scalar(0)) *
          distance_scale(pts, par);
      distances_to_logits<Scalar, Dim>(pts, i0, m, par, L.data(), aux);
      const Scalar top = std::max(run_max[j], L.maxCoeff());
      if (bound[j] > refine_tol + refine_rel * std::abs(top)) {
        // Cancellation possible: recompute directly every pair that may carry weight.
        // Pairs left out have logits below the maximum by more than `margin` even after
        // their worst rounding, so their weights are below eps/n each.
        const Scalar thr = top - Scalar(2) * bound[j] - margin;
        const Scalar* xj = X.col(j0 + j).data();
        for (field_index i = 0; i < m; ++i) {
          if (!(L(i) >= thr)) continue;
          const Scalar dist2 = plain_sq_distance<Scalar>(xj, pts.y.col(i0 + i).data(), t, d);
          Scalar l;
          if (per_point) {
            const Scalar var = col_a[j] * col_a[j] + t * t * pts.spread[i0 + i];
            l = -(half_d * std::log(var) + Scalar(0.5) * dist2 / var);
          } else {
            l = Scalar(-0.5) * dist2 / col_a[j];
          }
          if (pts.log_prior != nullptr) l += pts.log_prior[i0 + i];
          L(i) = l;
        }
      }
      const Scalar alpha = fold(j, i0, m, L.data());
      if (req.mean && alpha != Scalar(1)) vector_map(acc + j * d, d) *= alpha;
    }
    if (req.mean) {
      Eigen::Map<Eigen::Matrix<Scalar, Dim, Eigen::Dynamic>> A(acc, d, nc);
      product_into(yb, T, A, true, plan.blas);
    }
  }

  for (field_index j = 0; j < nc; ++j) {
    posterior_column<Scalar> c{};
    c.log_sum = run_max[j] + std::log(run_sum[j]);
    Scalar* a = acc + j * d;
    if (req.mean && !req.trace) {
      const Scalar inv = Scalar(1) / run_sum[j];
      for (field_index k = 0; k < d; ++k) a[k] *= inv;
    }
    c.mean = a;
    c.coef = run_coef[j] / run_sum[j];
    c.trace = run_m2[j] / run_sum[j];
    finish(j0 + j, c);
  }
}

/// Streams all samples of X over all points: calls `finish(j, column)` once per sample
/// (from worker threads, each j exactly once). `params(j)` gives sample j's parameters.
/// `finish` may write column j of an output that aliases X.
template <class Scalar, int Dim, class Params, class Finish>
void posterior_stream(const posterior_points<Scalar, Dim>& pts, const batch<Scalar, Dim>& X,
                      const Params& params, posterior_request req, const posterior_plan& plan,
                      const Finish& finish) {
  const field_index b = X.cols();
  if (b == 0) return;
  field_scratch<Scalar> mem(static_cast<std::size_t>(plan.workers) * plan.worker_scalars);
  const auto tasks = static_cast<std::size_t>((b + plan.cols_block - 1) / plan.cols_block);
  const blas_single_thread_scope single_threaded_blas(plan.blas && plan.expanded);
  field_parallel_for(plan.workers, tasks, [&](unsigned w, std::size_t task) {
    const field_index j0 = static_cast<field_index>(task) * plan.cols_block;
    const field_index nc = std::min(plan.cols_block, b - j0);
    posterior_block<Scalar, Dim>(pts, X, j0, nc, params, req, plan,
                                 mem.data() + static_cast<std::size_t>(w) * plan.worker_scalars,
                                 finish);
  });
}

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

}  // namespace detail
}  // namespace kinflow
