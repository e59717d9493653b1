#pragma once
/// @file
/// @brief The exact flow-matching field of a training set sharded over MPI ranks (target
/// kinflow::mpi): kinflow::mpi::distributed_empirical_field. Each rank holds its own
/// columns of `Y` and no rank ever needs all of them; one evaluation is one MPI_Allreduce.
///
/// **The reduction.** For a batch of B queries, rank r computes the partial posterior state
/// of the queries over its shard S_r with the closed-form engine (kinflow::posterior_state,
/// docs/math.md §4.2): per query `M_r = max_{i∈S_r} L_i`, `W_r = Σ_{i∈S_r} e^{L_i - M_r}` and
/// `S_r = Σ_{i∈S_r} e^{L_i - M_r} y_i` (and `Q_r`, the weighted squared deviations, for the
/// divergence), with `L_i = -‖x - t y_i‖² / (2σ_t²)`. An empty shard has the state
/// `(-∞, 0, 0)`, the identity of the merge. One MPI_Allreduce with a user-defined,
/// non-commutative operation (posterior_state::merge_record on records of `d + 4` scalars,
/// or of the 4 header scalars when only the log density is asked for) merges the B records
/// of all ranks, so that every rank holds the state over all of Y and finishes it:
///
///     m = S / W,   v = (m - (1 - σ_min) x) / σ_t   (v = m at t ≥ 1 when σ_min = 0)
///     log p_t(x) = M + log W - log N - d log σ_t - (d/2) log 2π
///     div v = t/σ_t³ · Q/W - (1 - σ_min) d / σ_t   (t Q/W / σ_t² at t ≥ 1 when σ_min = 0)
///
/// with `σ_t = max(1 - (1 - σ_min) t, ε)` and N the total number of points: the formulas of
/// kinflow::empirical_field.
///
/// **Reproducibility.** The operation is declared non-commutative, so MPI combines the
/// ranks' records in rank order; the merge itself is commutative bit for bit. For a given
/// number of ranks, shard sizes and memory budget, the results are the same bits run after
/// run and on every rank; they equal the single-process field's up to rounding (a few ulps
/// of the log-sum-exp).
///
/// **Failure.** One extra record per reduction carries the number of ranks whose local
/// evaluation threw; when it is not zero, every rank throws kinflow::mpi::collective_error
/// with the first failing rank's message instead of one rank leaving the others blocked.
///
/// **Use.** Every evaluation is collective: all ranks call the same member with the same
/// time(s) and the same batch X (identical on every rank — same seed, same integrator), in
/// the same order. Integrators, kinflow::shaped(), the KPE and the log-likelihood then run
/// unchanged on every rank and agree bit for bit. Not to be called concurrently from
/// several threads of one rank.

#include <mpi.h>

#include <cmath>
#include <cstddef>
#include <limits>
#include <memory>
#include <numbers>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <Eigen/Core>

#include "kinflow/core/batch.hpp"
#include "kinflow/core/errors.hpp"
#include "kinflow/fields/closed_form.hpp"
#include "kinflow/fields/empirical.hpp"
#include "kinflow/fields/posterior_state.hpp"
#include "kinflow/mpi/collective.hpp"
#include "kinflow/mpi/reduction.hpp"

namespace kinflow::mpi {

/// Limits a rank checks before it takes its shard.
struct shard_settings {
  /// Bytes this rank's copy of its shard may take, `d · n_r · sizeof(Scalar)`; 0 = no
  /// limit. A rank over its limit makes every rank throw kinflow::mpi::collective_error.
  std::size_t memory_limit = 0;
};

/// The exact flow-matching field of a training set `Y = [Y_0 | Y_1 | … | Y_{P-1}]` whose
/// shard `Y_r` (d x n_r, possibly empty) lives on rank r: velocity, posterior mean, log
/// density and divergence equal kinflow::empirical_field's over all of Y (see the file
/// documentation for the reduction, the formulas and the collective contract).
///
/// A batched velocity field with `velocity_at_times`, `divergence`, `divergence_at_times`
/// and `dim()`: every integrator, kinflow::shaped(), the KPE and the log-likelihood take it.
///
/// @tparam Scalar float or double
/// @tparam Dim    d fixed at compile time or Eigen::Dynamic
template <class Scalar, int Dim = Eigen::Dynamic>
  requires(std::is_same_v<Scalar, float> || std::is_same_v<Scalar, double>)
class distributed_empirical_field {
public:
  /// The scalar type.
  using scalar_type = Scalar;
  /// A batch of samples (d x B).
  using batch_type = batch<Scalar, Dim>;
  /// One sample.
  using point_type = point<Scalar, Dim>;
  /// One value per sample.
  using values_type = per_sample<Scalar>;
  /// The options of the local field (σ_min, ε, memory budget, threads, products).
  using options_type = empirical_options<Scalar>;
  /// The partial and reduced posterior states.
  using state_type = posterior_state<Scalar>;

  /// Collective: this rank's shard @p shard (d x n_r, n_r ≥ 0, finite entries; copied),
  /// evaluated with @p options (the same on every rank), within @p settings.
  /// @throws kinflow::mpi::collective_error on every rank when any rank's shard or options
  ///         are invalid or its shard exceeds settings.memory_limit;
  ///         kinflow::invalid_argument on every rank when the ranks' d differ or all
  ///         shards are empty (N = 0).
  template <class Derived>
  distributed_empirical_field(MPI_Comm comm, const Eigen::MatrixBase<Derived>& shard,
                              const options_type& options = {}, const shard_settings& settings = {})
      : opt_(options) {
    const Eigen::Index rows = shard.rows(), cols = shard.cols();
    collectively(comm, [&] {
      if constexpr (Dim != Eigen::Dynamic)
        kinflow::detail::require_dimension("rows of the training shard (dimension d)", rows, Dim);
      kinflow::detail::require(rows >= 1, "training shard rows (dimension d)", rows, "expected d >= 1");
      const auto bytes = static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols) * sizeof(Scalar);
      kinflow::detail::require(settings.memory_limit == 0 || bytes <= settings.memory_limit,
                               "memory_limit (bytes of this rank's shard)", settings.memory_limit,
                               "the shard of " + std::to_string(cols) + " points in d = " +
                                   std::to_string(rows) + " needs " + std::to_string(bytes) +
                                   " bytes; expected memory_limit >= " + std::to_string(bytes) +
                                   " (or 0 for no limit), or more ranks");
      if (cols > 0)
        local_.emplace(shard, options);
      else  // the options are checked the same way on ranks with an empty shard
        static_cast<void>(empirical_field<Scalar, Dim>(batch_type::Zero(rows, 1), options));
    });
    long long dims[2] = {static_cast<long long>(rows), -static_cast<long long>(rows)};
    long long reduced[2] = {0, 0};
    MPI_Allreduce(dims, reduced, 2, MPI_LONG_LONG, MPI_MIN, comm);
    kinflow::detail::require(reduced[0] == -reduced[1], "rows of the training shards (dimension d)",
                             rows,
                             "expected the same d on every rank; they range from " +
                                 std::to_string(reduced[0]) + " to " + std::to_string(-reduced[1]));
    const long long n = static_cast<long long>(cols);
    long long total = 0, before = 0;
    MPI_Allreduce(&n, &total, 1, MPI_LONG_LONG, MPI_SUM, comm);
    MPI_Exscan(&n, &before, 1, MPI_LONG_LONG, MPI_SUM, comm);
    if (rank_of(comm) == 0) before = 0;  // MPI_Exscan leaves rank 0's result undefined
    kinflow::detail::require(total >= 1, "training set columns over all ranks (number of points N)",
                             total, "expected a non-empty training set, N >= 1");
    d_ = rows;
    n_ = static_cast<Eigen::Index>(total);
    offset_ = static_cast<Eigen::Index>(before);
    ranks_ = size_of(comm);
    res_ = std::make_shared<detail::reduction_resources<Scalar>>(comm, d_);
  }

  /// Collective: rank r takes the balanced_shard() columns of @p Y (d x N, given on every
  /// rank, e.g. read from one file) and builds the field of Y.
  template <class Derived>
  [[nodiscard]] static distributed_empirical_field balanced(MPI_Comm comm,
                                                            const Eigen::MatrixBase<Derived>& Y,
                                                            const options_type& options = {},
                                                            const shard_settings& settings = {}) {
    const shard_range s = balanced_shard(comm, Y.cols());
    return distributed_empirical_field(comm, Y.middleCols(s.offset, s.count), options, settings);
  }

  /// Dimension d.
  [[nodiscard]] Eigen::Index dim() const noexcept { return d_; }
  /// Number of training points N over all ranks.
  [[nodiscard]] Eigen::Index size() const noexcept { return n_; }
  /// Number of training points n_r of this rank's shard.
  [[nodiscard]] Eigen::Index local_size() const noexcept { return local_ ? local_->size() : 0; }
  /// Index of this rank's first point in Y (the points of lower ranks come first).
  [[nodiscard]] Eigen::Index local_offset() const noexcept { return offset_; }
  /// Number of ranks P.
  [[nodiscard]] int ranks() const noexcept { return ranks_; }
  /// The field's communicator (a duplicate of the one given).
  [[nodiscard]] MPI_Comm comm() const noexcept { return res_->comm(); }
  /// The options in use.
  [[nodiscard]] const options_type& options() const noexcept { return opt_; }

  /// Noise level `σ_t = max(1 - (1 - σ_min) t, ε)`.
  [[nodiscard]] Scalar sigma(Scalar t) const noexcept {
    using std::max;
    return max(Scalar(1) - (Scalar(1) - opt_.sigma_min) * t, opt_.eps);
  }

  /// Collective: the pruning counts of every rank's shard (closed_form_field's), summed;
  /// each rank's pass over its shard counts as one evaluation.
  [[nodiscard]] pruning_stats pruning_statistics() const {
    return sum_over_ranks(comm(), local_ ? local_->pruning_statistics() : pruning_stats{});
  }
  /// Resets this rank's pruning counts (call it on every rank).
  void reset_pruning_statistics() const noexcept {
    if (local_) local_->reset_pruning_statistics();
  }
  /// Whether this rank's shard logs its passes (call it on every rank).
  void record_pruning_passes(bool on) const noexcept {
    if (local_) local_->record_pruning_passes(on);
  }
  /// Collective: the counts of the logged passes in each step of the grid @p times
  /// (kinflow::pruning_by_step), summed over the ranks.
  [[nodiscard]] std::vector<pruning_stats> pruning_by_step(const std::vector<double>& times) const {
    return sum_over_ranks(comm(), local_ ? kinflow::pruning_by_step(local_->pruning_passes(), times)
                                         : std::vector<pruning_stats>{});
  }

  /// Collective: the posterior state of every column of X at time t over all of Y (the
  /// reduced state), gathering @p request.
  /// @throws kinflow::dimension_mismatch unless X has d rows;
  ///         kinflow::mpi::collective_error when the evaluation failed on any rank.
  [[nodiscard]] state_type reduced_state(Scalar t, const batch_type& X,
                                         posterior_request request = {true, false}) const {
    check(X);
    return reduce(
        X.cols(), request, [] {},
        [&](const empirical_field<Scalar, Dim>& f) { return f.partial_state(t, X, request); });
  }

  /// Collective: the reduced state with one time per column, query j at time `T(j)`.
  /// @throws kinflow::mpi::collective_error on every rank when T has not one entry per
  ///         column of X on some rank, or the evaluation failed on any rank.
  [[nodiscard]] state_type reduced_state_at_times(const sample_times<Scalar>& T, const batch_type& X,
                                                  posterior_request request = {true, false}) const {
    check(X);
    // Checked inside the reduction: a rank whose T is wrong fails every rank.
    return reduce(
        X.cols(), request,
        [&] {
          kinflow::detail::require_dimension("number of times T (one per column of X)", T.size(), X.cols());
        },
        [&](const empirical_field<Scalar, Dim>& f) { return f.partial_state_at_times(T, X, request); });
  }

  /// Collective: velocity `V.col(j) = v(X.col(j), t)`; V is resized to X's shape and may be X.
  void operator()(Scalar t, const batch_type& X, batch_type& V) const {
    const state_type s = reduced_state(t, X, {true, false});
    finish_velocity(s, [t](Eigen::Index) { return t; }, X, V);
  }

  /// Collective: velocity with one time per column, `V.col(j) = v(X.col(j), T(j))`.
  void velocity_at_times(const sample_times<Scalar>& T, const batch_type& X, batch_type& V) const {
    const state_type s = reduced_state_at_times(T, X, {true, false});
    finish_velocity(s, [&T](Eigen::Index j) { return T(j); }, X, V);
  }

  /// Collective: velocity of every column of X, returned.
  [[nodiscard]] batch_type velocity(Scalar t, const batch_type& X) const {
    batch_type V;
    (*this)(t, X, V);
    return V;
  }

  /// Collective: posterior mean `M.col(j) = m(X.col(j), t) = S / W`.
  void posterior_mean(Scalar t, const batch_type& X, batch_type& M) const {
    const state_type s = reduced_state(t, X, {true, false});
    M.resize(X.rows(), X.cols());
    posterior_engine<Scalar, Dim>::finish_state(
        s, [&](Eigen::Index j, const kinflow::detail::posterior_column<Scalar>& c) {
          M.col(j) = Eigen::Map<const point_type>(c.mean, d_);
        });
  }

  /// Collective: posterior mean of every column of X, returned.
  [[nodiscard]] batch_type posterior_mean(Scalar t, const batch_type& X) const {
    batch_type M;
    posterior_mean(t, X, M);
    return M;
  }

  /// Collective: log density `log p_t(x) = M + log W - log N - d log σ_t - (d/2) log 2π`
  /// of every column of X (a reduction of 4 scalars per sample).
  [[nodiscard]] values_type log_density(Scalar t, const batch_type& X) const {
    const state_type s = reduced_state(t, X, {false, false});
    values_type out(X.cols());
    const Scalar shift = log_density_shift(t);
    for (Eigen::Index j = 0; j < s.size(); ++j) out(j) = s.log_sum(j) + shift;
    return out;
  }

  /// Collective: exact divergence `D(j) = div v(X.col(j), t)`; D is resized to X.cols().
  void divergence(Scalar t, const batch_type& X, values_type& D) const {
    const state_type s = reduced_state(t, X, {false, true});
    finish_divergence(s, [t](Eigen::Index) { return t; }, D);
  }

  /// Collective: exact divergence with one time per column, `D(j) = div v(X.col(j), T(j))`.
  void divergence_at_times(const sample_times<Scalar>& T, const batch_type& X, values_type& D) const {
    const state_type s = reduced_state_at_times(T, X, {false, true});
    finish_divergence(s, [&T](Eigen::Index j) { return T(j); }, D);
  }

  /// Collective: exact divergence of every column of X at time t, returned.
  [[nodiscard]] values_type divergence(Scalar t, const batch_type& X) const {
    values_type D;
    divergence(t, X, D);
    return D;
  }

  /// Collective: velocity and exact divergence from one reduction of the state with mean
  /// and trace (kinflow::closed_form_field::velocity_and_divergence). V may be X.
  void velocity_and_divergence(Scalar t, const batch_type& X, batch_type& V, values_type& D) const {
    const state_type s = reduced_state(t, X, {true, true});
    finish_divergence(s, [t](Eigen::Index) { return t; }, D);
    finish_velocity(s, [t](Eigen::Index) { return t; }, X, V);
  }

  /// Collective: velocity and exact divergence with one time per column.
  void velocity_and_divergence_at_times(const sample_times<Scalar>& T, const batch_type& X,
                                        batch_type& V, values_type& D) const {
    const state_type s = reduced_state_at_times(T, X, {true, true});
    finish_divergence(s, [&T](Eigen::Index j) { return T(j); }, D);
    finish_velocity(s, [&T](Eigen::Index j) { return T(j); }, X, V);
  }

private:
  void check(const batch_type& X) const {
    kinflow::detail::require_dimension("rows of the sample batch X (dimension d)", X.rows(), d_);
  }

  /// This rank's partial state from `local(field)` (the empty state on an empty shard),
  /// after `validate()`, reduced over all ranks with the status record appended: when
  /// either threw on any rank, every rank throws kinflow::mpi::collective_error.
  template <class Validate, class Local>
  state_type reduce(Eigen::Index queries, posterior_request request, const Validate& validate,
                    const Local& local) const {
    state_type state;
    std::string error;
    try {
      validate();
      if (local_)
        state = local(*local_);
      else
        state = state_type(d_, queries, request);
    } catch (const std::exception& e) {
      error = e.what()[0] == '\0' ? "unknown error" : e.what();
    } catch (...) {
      error = "unknown error";
    }
    if (!error.empty()) state = state_type(d_, queries, request);
    detail::reduce_records(*res_, ranks_, d_, state, !request.mean && !request.trace, error);
    return state;
  }

  template <class TimeOf>
  void finish_velocity(const state_type& s, const TimeOf& time_of, const batch_type& X,
                       batch_type& V) const {
    V.resize(X.rows(), X.cols());
    const Scalar c = Scalar(1) - opt_.sigma_min;
    posterior_engine<Scalar, Dim>::finish_state(
        s, [&](Eigen::Index j, const kinflow::detail::posterior_column<Scalar>& col) {
          const Scalar t = time_of(j);
          const Eigen::Map<const point_type> m(col.mean, d_);
          if (at_data_time(t))
            V.col(j) = m;
          else
            V.col(j) = (m - c * X.col(j)) * (Scalar(1) / sigma(t));
        });
  }

  template <class TimeOf>
  void finish_divergence(const state_type& s, const TimeOf& time_of, values_type& D) const {
    D.resize(s.size());
    const Scalar c = Scalar(1) - opt_.sigma_min;
    const Scalar d = static_cast<Scalar>(d_);
    posterior_engine<Scalar, Dim>::finish_state(
        s, [&](Eigen::Index j, const kinflow::detail::posterior_column<Scalar>& col) {
          const Scalar t = time_of(j);
          const Scalar sg = sigma(t);
          const Scalar a = t / (sg * sg * sg);
          D(j) = at_data_time(t) ? a * sg * col.trace : a * col.trace - c * d / sg;
        });
  }

  /// True where the path is degenerate (σ_min = 0 and t ≥ 1) and the velocity is `m`.
  [[nodiscard]] bool at_data_time(Scalar t) const noexcept {
    return opt_.sigma_min == Scalar(0) && t >= Scalar(1);
  }

  /// `-log N - d log σ_t - (d/2) log 2π`, N over all ranks.
  [[nodiscard]] Scalar log_density_shift(Scalar t) const {
    return -std::log(static_cast<Scalar>(n_)) - static_cast<Scalar>(d_) * std::log(sigma(t)) -
           Scalar(0.5) * static_cast<Scalar>(d_) * std::log(Scalar(2) * std::numbers::pi_v<Scalar>);
  }

  options_type opt_;
  std::optional<empirical_field<Scalar, Dim>> local_;
  Eigen::Index d_ = 0;
  Eigen::Index n_ = 0;
  Eigen::Index offset_ = 0;
  int ranks_ = 1;
  std::shared_ptr<detail::reduction_resources<Scalar>> res_;
};

}  // namespace kinflow::mpi
