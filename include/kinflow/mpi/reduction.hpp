#pragma once
/// @file
/// @brief The reductions behind the distributed fields: the merge of posterior-state records
/// as a user-defined MPI operation over a field's own communicator (kinflow/mpi/empirical.hpp
/// and class_conditional.hpp), and the sums of the pruning counts over the ranks.

#include <mpi.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "kinflow/core/errors.hpp"
#include "kinflow/fields/posterior_engine.hpp"
#include "kinflow/fields/posterior_state.hpp"
#include "kinflow/mpi/collective.hpp"

namespace kinflow::mpi {

/// Collective: @p stats summed over the ranks of @p comm (every count).
[[nodiscard]] inline pruning_stats sum_over_ranks(MPI_Comm comm, const pruning_stats& stats) {
  std::uint64_t v[4] = {stats.evaluations, stats.pruned_evaluations, stats.pairs, stats.dense_pairs};
  MPI_Allreduce(MPI_IN_PLACE, v, 4, MPI_UINT64_T, MPI_SUM, comm);
  return pruning_stats{v[0], v[1], v[2], v[3]};
}

/// Collective: per-step counts @p steps summed over the ranks of @p comm, entry by entry; a
/// rank with fewer entries (none, say, for a rank without points or samples) adds zeros.
[[nodiscard]] inline std::vector<pruning_stats> sum_over_ranks(MPI_Comm comm, const std::vector<pruning_stats>& steps) {
  unsigned long long n = steps.size();
  MPI_Allreduce(MPI_IN_PLACE, &n, 1, MPI_UNSIGNED_LONG_LONG, MPI_MAX, comm);
  std::vector<std::uint64_t> v(4 * static_cast<std::size_t>(n), 0);
  for (std::size_t i = 0; i < steps.size(); ++i) {
    v[4 * i] = steps[i].evaluations;
    v[4 * i + 1] = steps[i].pruned_evaluations;
    v[4 * i + 2] = steps[i].pairs;
    v[4 * i + 3] = steps[i].dense_pairs;
  }
  kinflow::detail::require(v.size() <= static_cast<std::size_t>(std::numeric_limits<int>::max()),
                           "number of steps of the pruning counts", static_cast<long long>(n),
                           "expected fewer than 2^29 steps");
  MPI_Allreduce(MPI_IN_PLACE, v.data(), static_cast<int>(v.size()), MPI_UINT64_T, MPI_SUM, comm);
  std::vector<pruning_stats> out(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = pruning_stats{v[4 * i], v[4 * i + 1], v[4 * i + 2], v[4 * i + 3]};
  return out;
}

namespace detail {

/// The user-defined MPI operation: merges `*len` records of `in` into `inout`, each of
/// `MPI_Type_size(*type) / sizeof(Scalar)` scalars (posterior_state::merge_record).
template <class Scalar>
void merge_records(void* in, void* inout, int* len, MPI_Datatype* type) {
  int bytes = 0;
  MPI_Type_size(*type, &bytes);
  const auto size = static_cast<Eigen::Index>(static_cast<std::size_t>(bytes) / sizeof(Scalar));
  const Eigen::Index d = size - posterior_state<Scalar>::header_size;
  const auto* a = static_cast<const Scalar*>(in);
  auto* b = static_cast<Scalar*>(inout);
  for (int i = 0; i < *len; ++i)
    posterior_state<Scalar>::merge_record(a + i * size, b + i * size, d);
}

/// The MPI resources of a distributed field: its own communicator (a duplicate of the
/// caller's), the merge operation and the record datatypes (full and header only). Freed
/// with the last copy of the field, unless MPI is already finalized.
template <class Scalar>
class reduction_resources {
public:
  reduction_resources(MPI_Comm comm, Eigen::Index d) {
    MPI_Comm_dup(comm, &comm_);
    MPI_Op_create(&merge_records<Scalar>, /*commute=*/0, &op_);
    MPI_Type_contiguous(static_cast<int>(posterior_state<Scalar>::record_size(d)),
                        datatype_of<Scalar>(), &full_);
    MPI_Type_commit(&full_);
    MPI_Type_contiguous(static_cast<int>(posterior_state<Scalar>::header_size),
                        datatype_of<Scalar>(), &header_);
    MPI_Type_commit(&header_);
  }
  reduction_resources(const reduction_resources&) = delete;
  reduction_resources& operator=(const reduction_resources&) = delete;
  ~reduction_resources() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized) return;
    MPI_Type_free(&header_);
    MPI_Type_free(&full_);
    MPI_Op_free(&op_);
    MPI_Comm_free(&comm_);
  }
  [[nodiscard]] MPI_Comm comm() const noexcept { return comm_; }
  [[nodiscard]] MPI_Op op() const noexcept { return op_; }
  [[nodiscard]] MPI_Datatype full() const noexcept { return full_; }
  [[nodiscard]] MPI_Datatype header() const noexcept { return header_; }

private:
  MPI_Comm comm_ = MPI_COMM_NULL;
  MPI_Op op_ = MPI_OP_NULL;
  MPI_Datatype full_ = MPI_DATATYPE_NULL;
  MPI_Datatype header_ = MPI_DATATYPE_NULL;
};

/// Merges the records of @p state (in dimension @p d; every query's, header only when
/// @p header_only) over the ranks of @p res, in place, with one status record appended: W of the merged status is
/// the number of ranks plus those whose @p error is not empty, and then every rank throws
/// kinflow::mpi::collective_error with the first failing rank's message (agree()).
template <class Scalar>
void reduce_records(const reduction_resources<Scalar>& res, int ranks, Eigen::Index d,
                    posterior_state<Scalar>& state, bool header_only, const std::string& error) {
  using state_type = posterior_state<Scalar>;
  const Eigen::Index queries = state.size();
  const Eigen::Index record = header_only ? state_type::header_size : state_type::record_size(d);
  const Eigen::Index full = state_type::record_size(d);
  std::vector<Scalar> buffer(static_cast<std::size_t>(record * (queries + 1)), Scalar(0));
  for (Eigen::Index j = 0; j < queries; ++j)
    std::copy(state.record(j), state.record(j) + record, buffer.data() + j * record);
  // The status record: M = 0, W = 1 + (failed here); after the merge W = P + failures.
  Scalar* status = buffer.data() + queries * record;
  status[0] = Scalar(0);
  status[1] = Scalar(error.empty() ? 1 : 2);
  kinflow::detail::require(queries + 1 <= std::numeric_limits<int>::max(), "batch size B", queries,
                           "expected B < 2^31 - 1 for one reduction");
  MPI_Allreduce(MPI_IN_PLACE, buffer.data(), static_cast<int>(queries + 1), header_only ? res.header() : res.full(),
                res.op(), res.comm());
  if (status[1] != static_cast<Scalar>(ranks)) agree(res.comm(), error);
  for (Eigen::Index j = 0; j < queries; ++j) {
    std::copy(buffer.data() + j * record, buffer.data() + (j + 1) * record, state.record(j));
    if (header_only) std::fill(state.record(j) + record, state.record(j) + full, Scalar(0));
  }
}

}  // namespace detail

}  // namespace kinflow::mpi
