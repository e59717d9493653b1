#pragma once
/// @file
/// @brief The mergeable partial state of the closed-form posterior: per query, the running
/// maximum logit and the weight sums over a subset of the points, which combine exactly
/// when the points are split into shards (docs/math.md, "The closed-form posterior engine").
///
/// For a query `x` (a sample at time t) and points `y_i` with logits `L_i`, the posterior is
/// `w_i = exp(L_i) / Σ_k exp(L_k)`. Over any subset S of the points, the state
///
///     M = max_{i∈S} L_i,   W = Σ_{i∈S} e_i,   C = Σ_{i∈S} e_i c_i,
///     S = Σ_{i∈S} e_i g_i y_i,   Q = Σ_{i∈S} e_i ‖y_i - S/W‖²,        e_i = exp(L_i - M),
///
/// determines everything the fields compute: `log Σ exp(L) = M + log W`, the posterior mean
/// `S / W`, `Σ w c = C / W` and the trace of the posterior covariance `Q / W`. The states of
/// two disjoint subsets merge into the state of their union without approximation: both are
/// rescaled to the larger maximum, the sums add, and Q gains Chan's term
/// `W_a W_b / (W_a + W_b) · ‖S_a/W_a - S_b/W_b‖²`. The merge is commutative bit for bit;
/// it is associative up to rounding, so a fixed merge order gives reproducible bits.

#include <algorithm>
#include <cmath>
#include <limits>

#include <Eigen/Core>

#include "kinflow/core/batch.hpp"
#include "kinflow/core/errors.hpp"
#include "kinflow/detail/posterior_plan.hpp"  // kinflow::posterior_request

namespace kinflow {

/// The partial posterior state of a batch of queries over a subset of the points (see the
/// file documentation): one record of `dim() + 4` scalars per query, `[M, W, C, Q, S_1 … S_d]`,
/// stored contiguously (data()), so that a distributed program can send and reduce records.
///
/// A default-constructed or freshly sized state is empty: `M = -inf` and every sum 0, the
/// state of no points, which is the identity of merge().
///
/// @tparam Scalar float, double or long double
template <class Scalar>
  requires real_scalar<Scalar>
class posterior_state {
public:
  /// Scalars before the weighted sum in each record (M, W, C, Q).
  static constexpr Eigen::Index header_size = 4;
  /// Scalars per query record in dimension @p d: `d + 4`.
  [[nodiscard]] static constexpr Eigen::Index record_size(Eigen::Index d) noexcept {
    return d + header_size;
  }

  /// An empty state of no queries.
  posterior_state() = default;

  /// The empty state of @p queries queries in dimension @p d, gathering @p request.
  /// @throws kinflow::invalid_argument for d < 1 or queries < 0.
  posterior_state(Eigen::Index d, Eigen::Index queries, posterior_request request = {})
      : request_(request) {
    detail::require(d >= 1, "d (dimension of the posterior state)", d, "expected d >= 1");
    detail::require(queries >= 0, "queries (number of queries of the posterior state)", queries,
                    "expected queries >= 0");
    records_.resize(record_size(d), queries);
    clear();
  }

  /// Dimension d of the points.
  [[nodiscard]] Eigen::Index dim() const noexcept {
    return records_.rows() == 0 ? 0 : records_.rows() - header_size;
  }
  /// Number of queries.
  [[nodiscard]] Eigen::Index size() const noexcept { return records_.cols(); }
  /// The statistics gathered.
  [[nodiscard]] const posterior_request& request() const noexcept { return request_; }

  /// Resets every query to the empty state.
  void clear() {
    records_.row(0).setConstant(-std::numeric_limits<Scalar>::infinity());
    records_.bottomRows(records_.rows() - 1).setZero();
  }

  /// `M` of query @p j: its largest logit (-inf when no point carries weight).
  [[nodiscard]] Scalar max_logit(Eigen::Index j) const { return records_(0, j); }
  /// `W` of query @p j: `Σ_i exp(L_i - M)`.
  [[nodiscard]] Scalar weight_sum(Eigen::Index j) const { return records_(1, j); }
  /// `C` of query @p j: `Σ_i exp(L_i - M) c_i` (0 unless the points have their own variances).
  [[nodiscard]] Scalar coef_sum(Eigen::Index j) const { return records_(2, j); }
  /// `Q` of query @p j: `Σ_i exp(L_i - M) ‖y_i - S/W‖²` (0 unless requested).
  [[nodiscard]] Scalar deviation_sum(Eigen::Index j) const { return records_(3, j); }
  /// `S` of query @p j: `Σ_i exp(L_i - M) g_i y_i` (d entries; 0 unless requested).
  [[nodiscard]] Eigen::Map<const point<Scalar>> weighted_sum(Eigen::Index j) const {
    return {records_.col(j).data() + header_size, dim()};
  }
  /// `log Σ_i exp(L_i) = M + log W` of query @p j.
  [[nodiscard]] Scalar log_sum(Eigen::Index j) const {
    return max_logit(j) + std::log(weight_sum(j));
  }

  /// The records, `record_size(dim())` scalars per query, query after query.
  [[nodiscard]] Scalar* data() noexcept { return records_.data(); }
  /// The records (read-only).
  [[nodiscard]] const Scalar* data() const noexcept { return records_.data(); }
  /// The record of query @p j.
  [[nodiscard]] Scalar* record(Eigen::Index j) noexcept { return records_.col(j).data(); }
  /// The record of query @p j (read-only).
  [[nodiscard]] const Scalar* record(Eigen::Index j) const noexcept {
    return records_.col(j).data();
  }

  /// Merges the record @p in into @p inout (both of `record_size(d)` scalars): afterwards
  /// @p inout is the state of the union of the two subsets of points. Empty records are
  /// the identity, and the result has the same bits whichever record is which (the two are
  /// put in a canonical order first, so that not even a compiler's fused multiply-adds can
  /// tell them apart).
  static void merge_record(const Scalar* in, Scalar* inout, Eigen::Index d) noexcept {
    constexpr Scalar neg_inf = -std::numeric_limits<Scalar>::infinity();
    if (!(in[0] > neg_inf)) return;  // in is empty
    if (!(inout[0] > neg_inf)) {     // inout is empty
      std::copy(in, in + record_size(d), inout);
      return;
    }
    const Eigen::Index size = record_size(d);
    const bool in_first = in[0] > inout[0] ||
                          (in[0] == inout[0] && std::lexicographical_compare(inout, inout + size, in, in + size));
    const Scalar* p = in_first ? in : inout;  // the larger maximum (p[0] >= q[0])
    const Scalar* q = in_first ? inout : in;
    const Scalar fq = std::exp(q[0] - p[0]);
    const Scalar wp = p[1], wq = fq * q[1];
    const Scalar total = wp + wq;
    // Chan's cross term from the two means, before anything is overwritten.
    Scalar cross = 0;
    if (wq > Scalar(0)) {
      Scalar sq = 0;
      for (Eigen::Index k = header_size; k < size; ++k) {
        const Scalar diff = p[k] / wp - q[k] * (fq / wq);
        sq += diff * diff;
      }
      cross = (wp * wq / total) * sq;
    }
    const Scalar coef = p[2] + fq * q[2];
    const Scalar deviation = (p[3] + fq * q[3]) + cross;
    for (Eigen::Index k = header_size; k < size; ++k) inout[k] = p[k] + fq * q[k];
    inout[0] = p[0];
    inout[1] = total;
    inout[2] = coef;
    inout[3] = deviation;
  }

  /// Merges @p other (the same queries over another, disjoint subset of the points) into
  /// this state, query by query.
  /// @throws kinflow::dimension_mismatch unless both have the same dimension and queries;
  ///         kinflow::invalid_argument unless both gathered the same statistics.
  void merge(const posterior_state& other) {
    detail::require_dimension("dimension of the merged posterior state", other.dim(), dim());
    detail::require_dimension("queries of the merged posterior state", other.size(), size());
    detail::require(other.request_.mean == request_.mean && other.request_.trace == request_.trace,
                    "request of the merged posterior state (mean, trace)",
                    static_cast<int>(other.request_.mean) * 2 + static_cast<int>(other.request_.trace),
                    "expected both states to gather the same statistics");
    const Eigen::Index d = dim();
    for (Eigen::Index j = 0; j < size(); ++j) merge_record(other.record(j), record(j), d);
  }

private:
  Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> records_;
  posterior_request request_{};
};

}  // namespace kinflow
