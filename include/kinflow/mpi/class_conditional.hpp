#pragma once
/// @file
/// @brief The exact class-conditional field of a labelled training set sharded over MPI
/// ranks (target kinflow::mpi): kinflow::mpi::distributed_class_conditional_field. Each rank
/// holds its own points with their labels; one evaluation of both velocities, `v_u` (all
/// points) and `v_c` (the points of each query's class), is one MPI_Allreduce.
///
/// **The reduction.** Rank r computes, with kinflow::class_conditional_field on its shard,
/// two partial posterior states per query (class_conditional_field::partial_states): over
/// all its points, and over its points of the query's class (an empty state where the shard
/// has none). The 2B records and a status record go into one MPI_Allreduce with the merge of
/// kinflow::mpi::distributed_empirical_field (kinflow/mpi/empirical.hpp, which documents the
/// records, the rank order of the merge and the failure protocol); every rank then finishes
/// both states with the formulas of kinflow::empirical_field: velocities, exact
/// divergences, and log densities normalised by the number of points over all ranks (all
/// points, or the class's).
///
/// **Use.** As for the unlabelled field: every evaluation is collective, all ranks call the
/// same member with the same times, batch and classes, in the same order. It is a
/// conditional field (`field(t, X, C, V)`, kinflow/core/conditions.hpp) with the pair
/// methods guidance uses, so `kinflow::guided(field, classes, options)` samples it with
/// classifier-free guidance and its exact log-likelihood on every rank, bit for bit alike.

#include <mpi.h>

#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <Eigen/Core>

#include "kinflow/core/batch.hpp"
#include "kinflow/core/conditions.hpp"
#include "kinflow/core/errors.hpp"
#include "kinflow/fields/class_conditional.hpp"
#include "kinflow/fields/empirical.hpp"
#include "kinflow/mpi/collective.hpp"
#include "kinflow/mpi/empirical.hpp"

namespace kinflow::mpi {

/// The exact class-conditional field of a labelled training set whose shard (points `Y_r`,
/// d x n_r, and their labels) lives on rank r: `v_u`, `v_c`, their exact divergences and
/// log densities equal kinflow::class_conditional_field's over all the points (see the
/// file documentation).
///
/// @tparam Scalar float or double
/// @tparam Dim    d fixed at compile time or Eigen::Dynamic
template <class Scalar, int Dim = Eigen::Dynamic>
  requires(std::is_same_v<Scalar, float> || std::is_same_v<Scalar, double>)
class distributed_class_conditional_field {
public:
  using scalar_type = Scalar;                          ///< the scalar type
  using batch_type = batch<Scalar, Dim>;               ///< a batch of samples (d x B)
  using values_type = per_sample<Scalar>;              ///< one value per sample
  using options_type = empirical_options<Scalar>;      ///< the options of the local fields
  using state_type = posterior_state<Scalar>;          ///< partial and reduced states

  /// Collective: this rank's shard @p shard (d x n_r, n_r ≥ 0; copied) with one label per
  /// point (@p labels, in `[0, classes)`), @p classes classes (the same on every rank: a
  /// shard need not hold every class), evaluated with @p options (the same on every rank).
  /// @throws kinflow::mpi::collective_error on every rank when any rank's shard, labels or
  ///         options are invalid or its shard exceeds settings.memory_limit;
  ///         kinflow::invalid_argument on every rank when the ranks' d or classes differ,
  ///         or all shards are empty.
  template <class Derived>
  distributed_class_conditional_field(MPI_Comm comm, const Eigen::MatrixBase<Derived>& shard,
                                      const class_labels& labels, Eigen::Index classes,
                                      const options_type& options = {}, const shard_settings& settings = {})
      : opt_(options), classes_(classes) {
    const Eigen::Index rows = shard.rows(), cols = shard.cols();
    collectively(comm, [&] {
      kinflow::detail::require(classes >= 1, "classes", classes, "expected a number of classes >= 1");
      kinflow::detail::require(labels.size() == cols, "labels", labels.size(),
                               "expected one label per point of this rank's shard (" + std::to_string(cols) + ")");
      if constexpr (Dim != Eigen::Dynamic)
        kinflow::detail::require_dimension("rows of the training shard (dimension d)", rows, Dim);
      kinflow::detail::require(rows >= 1, "training shard rows (dimension d)", rows, "expected d >= 1");
      const auto bytes = 2 * static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols) * sizeof(Scalar);
      kinflow::detail::require(settings.memory_limit == 0 || bytes <= settings.memory_limit,
                               "memory_limit (bytes of this rank's shard, held twice: all points and by class)",
                               settings.memory_limit,
                               "the shard of " + std::to_string(cols) + " points in d = " + std::to_string(rows) +
                                   " needs " + std::to_string(bytes) + " bytes; expected memory_limit >= " +
                                   std::to_string(bytes) + " (or 0 for no limit), or more ranks");
      if (cols > 0) local_.emplace(shard, labels, options, classes);
      // The finishing steps need only the options: a field of one point gives them on every
      // rank (and checks the options on a rank with an empty shard).
      finisher_.emplace(batch_type::Zero(rows, 1), options);
    });
    long long mine[4] = {static_cast<long long>(rows), -static_cast<long long>(rows),
                         static_cast<long long>(classes), -static_cast<long long>(classes)};
    long long reduced[4] = {0, 0, 0, 0};
    MPI_Allreduce(mine, reduced, 4, MPI_LONG_LONG, MPI_MIN, comm);
    kinflow::detail::require(reduced[0] == -reduced[1], "rows of the training shards (dimension d)", rows,
                             "expected the same d on every rank; they range from " + std::to_string(reduced[0]) +
                                 " to " + std::to_string(-reduced[1]));
    kinflow::detail::require(reduced[2] == -reduced[3], "classes", classes,
                             "expected the same number of classes on every rank; they range from " +
                                 std::to_string(reduced[2]) + " to " + std::to_string(-reduced[3]));
    // The number of points of every class over all ranks (and N, the last entry).
    std::vector<long long> counts(static_cast<std::size_t>(classes + 1), 0);
    for (Eigen::Index i = 0; i < labels.size(); ++i) ++counts[static_cast<std::size_t>(labels(i))];
    counts.back() = static_cast<long long>(cols);
    MPI_Allreduce(MPI_IN_PLACE, counts.data(), static_cast<int>(counts.size()), MPI_LONG_LONG, MPI_SUM, comm);
    kinflow::detail::require(counts.back() >= 1, "training set columns over all ranks (number of points N)",
                             counts.back(), "expected a non-empty training set, N >= 1");
    class_sizes_.assign(counts.begin(), counts.end() - 1);
    n_ = static_cast<Eigen::Index>(counts.back());
    d_ = rows;
    ranks_ = size_of(comm);
    res_ = std::make_shared<detail::reduction_resources<Scalar>>(comm, d_);
  }

  /// Collective: rank r takes the balanced_shard() columns of @p Y (d x N, given on every
  /// rank) with their labels, and builds the field of (Y, labels) with @p classes classes
  /// (-1: the largest label plus one).
  template <class Derived>
  [[nodiscard]] static distributed_class_conditional_field balanced(MPI_Comm comm, const Eigen::MatrixBase<Derived>& Y,
                                                                    const class_labels& labels,
                                                                    Eigen::Index classes = -1,
                                                                    const options_type& options = {},
                                                                    const shard_settings& settings = {}) {
    kinflow::detail::require(labels.size() == Y.cols(), "labels", labels.size(),
                             "expected one label per training point (N = " + std::to_string(Y.cols()) + ")");
    const Eigen::Index K = classes >= 1 ? classes : (labels.size() > 0 ? labels.maxCoeff() + 1 : 1);
    const shard_range s = balanced_shard(comm, Y.cols());
    return distributed_class_conditional_field(comm, Y.middleCols(s.offset, s.count),
                                               class_labels(labels.segment(s.offset, s.count)), K, options, settings);
  }

  /// Dimension d.
  [[nodiscard]] Eigen::Index dim() const noexcept { return d_; }
  /// Number of training points N over all ranks.
  [[nodiscard]] Eigen::Index size() const noexcept { return n_; }
  /// Number of classes K.
  [[nodiscard]] Eigen::Index classes() const noexcept { return classes_; }
  /// The options every rank evaluates with.
  [[nodiscard]] const options_type& options() const noexcept { return opt_; }
  /// Number of points of class @p c over all ranks.
  /// @throws kinflow::invalid_argument for a class outside [0, classes()).
  [[nodiscard]] Eigen::Index class_size(Eigen::Index c) const {
    kinflow::detail::require(c >= 0 && c < classes_, "class", c,
                             "expected a class in [0, " + std::to_string(classes_) + ")");
    return static_cast<Eigen::Index>(class_sizes_[static_cast<std::size_t>(c)]);
  }
  /// Number of points of this rank's shard.
  [[nodiscard]] Eigen::Index local_size() const noexcept { return local_ ? local_->size() : 0; }
  /// Number of ranks P.
  [[nodiscard]] int ranks() const noexcept { return ranks_; }

  /// Collective: the pruning counts of every class of every rank's shard, summed
  /// (distributed_empirical_field::pruning_statistics).
  [[nodiscard]] pruning_stats pruning_statistics() const {
    return sum_over_ranks(res_->comm(), local_ ? local_->pruning_statistics() : pruning_stats{});
  }
  /// Resets this rank's pruning counts (call it on every rank).
  void reset_pruning_statistics() const noexcept {
    if (local_) local_->reset_pruning_statistics();
  }
  /// Whether this rank's classes log their passes (call it on every rank).
  void record_pruning_passes(bool on) const noexcept {
    if (local_) local_->record_pruning_passes(on);
  }
  /// Collective: the counts of the logged passes in each step of the grid @p times, summed
  /// over the ranks.
  [[nodiscard]] std::vector<pruning_stats> pruning_by_step(const std::vector<double>& times) const {
    return sum_over_ranks(res_->comm(), local_ ? kinflow::pruning_by_step(local_->pruning_passes(), times)
                                          : std::vector<pruning_stats>{});
  }

  /// Collective: the reduced states of every column of X at time t over all points
  /// (`first`, for `v_u`) and over the points of the column's class (`second`; all points
  /// for class -1). With @p unconditional false, each rank's classes stream only their own
  /// columns (class_conditional_field::partial_states), only `second` is reduced (B records,
  /// not 2B) and `first` is returned empty.
  /// @throws kinflow::mpi::collective_error on every rank when a class is out of range or
  ///         has no point on any rank, or the evaluation failed on any rank
  [[nodiscard]] std::pair<state_type, state_type> reduced_states(Scalar t, const batch_type& X, const class_labels& C,
                                                                 posterior_request request = {true, false},
                                                                 bool unconditional = true) const {
    return reduce(X, C, request, [&](const class_conditional_field<Scalar, Dim>& f) {
      return f.partial_states(t, X, C, request, unconditional);
    }, unconditional);
  }

  /// Collective: reduced_states() with one time per column.
  [[nodiscard]] std::pair<state_type, state_type> reduced_states_at_times(const sample_times<Scalar>& T,
                                                                          const batch_type& X, const class_labels& C,
                                                                          posterior_request request = {true, false},
                                                                          bool unconditional = true) const {
    return reduce(X, C, request, [&](const class_conditional_field<Scalar, Dim>& f) {
      kinflow::detail::require_dimension("number of times T (one per column of X)", T.size(), X.cols());
      return f.partial_states_at_times(T, X, C, request, unconditional);
    }, unconditional);
  }

  /// Collective: `V.col(j) = v_{C(j)}(t, X.col(j))` (class -1: all points); each rank's
  /// classes stream only their own columns.
  void operator()(Scalar t, const batch_type& X, const class_labels& C, batch_type& V) const {
    finisher_->velocity_from(t, X, reduced_states(t, X, C, {true, false}, false).second, V);
  }
  /// Collective: the conditional velocity with one time per column.
  void velocity_at_times(const sample_times<Scalar>& T, const batch_type& X, const class_labels& C,
                         batch_type& V) const {
    finisher_->velocity_from_at_times(T, X, reduced_states_at_times(T, X, C, {true, false}, false).second, V);
  }

  /// Collective: `U = v_u`, `Vc = v_c` of every column (kinflow::conditional_pair_field).
  void velocity_pair(Scalar t, const batch_type& X, const class_labels& C, batch_type& U, batch_type& Vc) const {
    const auto s = reduced_states(t, X, C, {true, false});
    finisher_->velocity_from(t, X, s.first, U);
    finisher_->velocity_from(t, X, s.second, Vc);
  }
  /// Collective: velocity_pair() with one time per column.
  void velocity_pair_at_times(const sample_times<Scalar>& T, const batch_type& X, const class_labels& C,
                              batch_type& U, batch_type& Vc) const {
    const auto s = reduced_states_at_times(T, X, C, {true, false});
    finisher_->velocity_from_at_times(T, X, s.first, U);
    finisher_->velocity_from_at_times(T, X, s.second, Vc);
  }

  /// Collective: both velocities and their exact divergences from one reduction
  /// (kinflow::conditional_pair_divergence_field: the exact guided log-likelihood).
  void velocity_pair_and_divergence(Scalar t, const batch_type& X, const class_labels& C, batch_type& U,
                                    batch_type& Vc, values_type& Du, values_type& Dc) const {
    const auto s = reduced_states(t, X, C, {true, true});
    Du = finisher_->divergence_from(t, s.first);
    Dc = finisher_->divergence_from(t, s.second);
    finisher_->velocity_from(t, X, s.first, U);
    finisher_->velocity_from(t, X, s.second, Vc);
  }
  /// Collective: velocity_pair_and_divergence() with one time per column.
  void velocity_pair_and_divergence_at_times(const sample_times<Scalar>& T, const batch_type& X,
                                             const class_labels& C, batch_type& U, batch_type& Vc, values_type& Du,
                                             values_type& Dc) const {
    const auto s = reduced_states_at_times(T, X, C, {true, true});
    Du = finisher_->divergence_from_at_times(T, s.first);
    Dc = finisher_->divergence_from_at_times(T, s.second);
    finisher_->velocity_from_at_times(T, X, s.first, U);
    finisher_->velocity_from_at_times(T, X, s.second, Vc);
  }

  /// Collective: exact divergence of the conditional velocity, `D(j) = div v_{C(j)}`.
  void divergence(Scalar t, const batch_type& X, const class_labels& C, values_type& D) const {
    const auto s = reduced_states(t, X, C, {false, true}, false);
    D = finisher_->divergence_from(t, s.second);
  }

  /// Collective: `log p_t(X.col(j) | C(j))` (class -1: of all points), normalised by the
  /// number of points of the class over all ranks (a reduction of the headers only).
  [[nodiscard]] values_type log_density(Scalar t, const batch_type& X, const class_labels& C) const {
    const auto s = reduced_states(t, X, C, {false, false}, false);
    values_type out = finisher_->log_density_from(t, s.second);  // normalised by the finisher's one point
    for (Eigen::Index j = 0; j < X.cols(); ++j)
      out(j) -= std::log(static_cast<Scalar>(C(j) == null_class ? n_ : class_size(C(j))));
    return out;
  }

private:
  /// This rank's two partial states from `local(field)` (empty states on an empty shard)
  /// after the checks of X and C, merged over all ranks in one reduction of 2B records; of
  /// B records (`second` only, `first` left empty) without @p pair.
  template <class Local>
  std::pair<state_type, state_type> reduce(const batch_type& X, const class_labels& C, posterior_request request,
                                           const Local& local, bool pair) const {
    const Eigen::Index B = X.cols();
    std::pair<state_type, state_type> parts;
    std::string error;
    try {
      kinflow::detail::require_dimension("rows of the sample batch X (dimension d)", X.rows(), d_);
      kinflow::detail::require_dimension("number of classes C (one per column of X)", C.size(), B);
      kinflow::detail::require_classes(C, classes_, "C");
      for (Eigen::Index j = 0; j < B; ++j)
        kinflow::detail::require(C(j) < 0 || class_sizes_[static_cast<std::size_t>(C(j))] > 0,
                                 "C[" + std::to_string(j) + "]", C(j),
                                 "expected a class with training points (this one has none on any rank)");
      if (local_) parts = local(*local_);
    } catch (const std::exception& e) {
      error = e.what()[0] == '\0' ? "unknown error" : e.what();
    } catch (...) {
      error = "unknown error";
    }
    // [all points | the class's] with the pair, [the class's] without; empty on an empty shard.
    const Eigen::Index second = pair ? B : 0, record = state_type::record_size(d_);
    state_type merged(d_, second + B, request);
    if (error.empty() && local_)
      for (Eigen::Index j = 0; j < B; ++j) {
        if (pair) std::copy(parts.first.record(j), parts.first.record(j) + record, merged.record(j));
        std::copy(parts.second.record(j), parts.second.record(j) + record, merged.record(second + j));
      }
    detail::reduce_records(*res_, ranks_, d_, merged, !request.mean && !request.trace, error);
    std::pair<state_type, state_type> out{state_type(d_, B, request), state_type(d_, B, request)};
    for (Eigen::Index j = 0; j < B; ++j) {
      if (pair) std::copy(merged.record(j), merged.record(j) + record, out.first.record(j));
      std::copy(merged.record(second + j), merged.record(second + j) + record, out.second.record(j));
    }
    return out;
  }

  options_type opt_;
  Eigen::Index classes_ = 0;
  std::optional<class_conditional_field<Scalar, Dim>> local_;
  std::optional<empirical_field<Scalar, Dim>> finisher_;
  std::vector<long long> class_sizes_;
  Eigen::Index n_ = 0;
  Eigen::Index d_ = 0;
  int ranks_ = 1;
  std::shared_ptr<detail::reduction_resources<Scalar>> res_;
};

}  // namespace kinflow::mpi
