#pragma once
/// @file
/// @brief The collective helpers of kinflow's MPI layer (target kinflow::mpi): balanced
/// shards of N items over P ranks, agreement on failure (every rank throws one message, no
/// rank waits forever), and gathering of per-sample results in rank order.
///
/// Every function here is collective over its communicator: all ranks call it, in the same
/// order, with arguments of the same shape.
///
/// **Balanced shards.** N items over P ranks: rank r holds `count_r = ⌊N/P⌋ + (r < N mod P)`
/// items starting at `offset_r = r ⌊N/P⌋ + min(r, N mod P)`. Counts differ by at most one,
/// and a rank holds none when N < P.
///
/// **Agreement.** A rank that fails (a file it cannot read, a shard over its memory
/// budget) must not leave the others blocked in the next collective. kinflow::mpi::agree
/// is one MPI_Allreduce of the failing ranks' numbers; when any rank failed, the message of
/// the first failing rank is broadcast and every rank throws kinflow::mpi::collective_error
/// with the same text.

#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <exception>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <Eigen/Core>

#include "kinflow/core/batch.hpp"
#include "kinflow/core/errors.hpp"

namespace kinflow::mpi {

/// Thrown on every rank, with the same message, when an operation failed on at least one
/// rank: "kinflow::mpi: rank r of P failed: <that rank's message>" (the first failing rank;
/// the number of failing ranks is added when several failed).
class collective_error : public std::runtime_error {
public:
  /// An error with the message @p what, the first failing rank @p rank and the number of
  /// failing ranks @p failed.
  collective_error(const std::string& what, int rank, int failed)
      : std::runtime_error(what), rank_(rank), failed_(failed) {}
  /// The first (lowest) failing rank.
  [[nodiscard]] int failed_rank() const noexcept { return rank_; }
  /// How many ranks failed.
  [[nodiscard]] int failed_ranks() const noexcept { return failed_; }

private:
  int rank_;
  int failed_;
};

/// This process's rank in @p comm.
[[nodiscard]] inline int rank_of(MPI_Comm comm) {
  int r = 0;
  MPI_Comm_rank(comm, &r);
  return r;
}

/// The number of ranks P of @p comm.
[[nodiscard]] inline int size_of(MPI_Comm comm) {
  int p = 0;
  MPI_Comm_size(comm, &p);
  return p;
}

/// The MPI datatype of @p T: float, double (the scalars of fields and samples), or
/// std::int64_t and int (per-sample counters and statuses).
template <class T>
[[nodiscard]] MPI_Datatype datatype_of() noexcept {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double> ||
                    std::is_same_v<T, std::int64_t> || std::is_same_v<T, int>,
                "kinflow::mpi exchanges float, double, std::int64_t and int");
  if constexpr (std::is_same_v<T, float>)
    return MPI_FLOAT;
  else if constexpr (std::is_same_v<T, double>)
    return MPI_DOUBLE;
  else if constexpr (std::is_same_v<T, std::int64_t>)
    return MPI_INT64_T;
  else
    return MPI_INT;
}

/// A contiguous range of items, `[offset, offset + count)`, held by one rank.
struct shard_range {
  /// First item of the range.
  Eigen::Index offset = 0;
  /// Number of items (0 for an empty shard).
  Eigen::Index count = 0;
};

/// Rank @p rank's balanced share of @p n items over @p ranks ranks: `count = ⌊n/P⌋ +
/// (rank < n mod P)`, `offset = rank ⌊n/P⌋ + min(rank, n mod P)` (not collective).
/// @throws kinflow::invalid_argument for n < 0, ranks < 1 or rank outside [0, ranks).
[[nodiscard]] inline shard_range balanced_shard(Eigen::Index n, int rank, int ranks) {
  kinflow::detail::require(n >= 0, "n (number of items to shard)", n, "expected n >= 0");
  kinflow::detail::require(ranks >= 1, "ranks (number of ranks)", ranks, "expected ranks >= 1");
  kinflow::detail::require(rank >= 0 && rank < ranks, "rank", rank,
                  "expected 0 <= rank < ranks = " + std::to_string(ranks));
  const Eigen::Index base = n / ranks, extra = n % ranks;
  return {rank * base + std::min<Eigen::Index>(rank, extra), base + (rank < extra ? 1 : 0)};
}

/// This rank's balanced share of @p n items over the ranks of @p comm.
[[nodiscard]] inline shard_range balanced_shard(MPI_Comm comm, Eigen::Index n) {
  return balanced_shard(n, rank_of(comm), size_of(comm));
}

/// Collective: every rank reports @p local_error (empty when this rank succeeded). When
/// any rank failed, every rank throws kinflow::mpi::collective_error with the message of
/// the lowest failing rank; otherwise all return. Costs one MPI_Allreduce (and one
/// MPI_Bcast on failure).
inline void agree(MPI_Comm comm, const std::string& local_error) {
  const int me = rank_of(comm), p = size_of(comm);
  int mine[2] = {local_error.empty() ? INT_MAX : me, local_error.empty() ? 0 : 1};
  int first = INT_MAX, failed = 0;
  MPI_Allreduce(&mine[0], &first, 1, MPI_INT, MPI_MIN, comm);
  if (first == INT_MAX) return;
  MPI_Allreduce(&mine[1], &failed, 1, MPI_INT, MPI_SUM, comm);
  int length = me == first ? static_cast<int>(local_error.size()) : 0;
  MPI_Bcast(&length, 1, MPI_INT, first, comm);
  std::string text = me == first ? local_error : std::string(static_cast<std::size_t>(length), ' ');
  MPI_Bcast(text.data(), length, MPI_CHAR, first, comm);
  std::string what = "kinflow::mpi: rank " + std::to_string(first) + " of " + std::to_string(p) +
                     " failed: " + text;
  if (failed > 1) what += " (" + std::to_string(failed) + " ranks failed)";
  throw collective_error(what, first, failed);
}

/// Collective: runs @p work on every rank; when it throws on any rank, every rank throws
/// kinflow::mpi::collective_error with the lowest failing rank's message (see agree()).
/// @return what @p work returned (when every rank succeeded)
template <class Work>
auto collectively(MPI_Comm comm, Work&& work) -> decltype(work()) {
  using result = decltype(work());
  std::string error;
  if constexpr (std::is_void_v<result>) {
    try {
      std::forward<Work>(work)();
    } catch (const std::exception& e) {
      error = e.what()[0] == '\0' ? "unknown error" : e.what();
    } catch (...) {
      error = "unknown error";
    }
    agree(comm, error);
  } else {
    std::optional<result> value;
    try {
      value.emplace(std::forward<Work>(work)());
    } catch (const std::exception& e) {
      error = e.what()[0] == '\0' ? "unknown error" : e.what();
    } catch (...) {
      error = "unknown error";
    }
    agree(comm, error);
    return std::move(*value);
  }
}

namespace detail {

/// Gathers @p count items of @p unit scalars each from every rank, in rank order, into
/// @p out (resized on the receivers: all ranks when @p root < 0, else @p root only).
template <class Scalar>
void gather_units(MPI_Comm comm, const Scalar* local, Eigen::Index count, Eigen::Index unit,
                  int root, std::vector<Scalar>& out, Eigen::Index& total) {
  const int p = size_of(comm), me = rank_of(comm);
  const long long mine = static_cast<long long>(count);
  std::vector<long long> counts(static_cast<std::size_t>(p));
  MPI_Allgather(&mine, 1, MPI_LONG_LONG, counts.data(), 1, MPI_LONG_LONG, comm);
  std::vector<int> sizes(static_cast<std::size_t>(p)), displs(static_cast<std::size_t>(p));
  long long sum = 0;
  for (int r = 0; r < p; ++r) {
    const long long scalars = counts[static_cast<std::size_t>(r)] * unit;
    kinflow::detail::require(sum + scalars <= INT_MAX, "gathered scalars", sum + scalars,
                             "expected at most 2^31 - 1 scalars in one gather");
    sizes[static_cast<std::size_t>(r)] = static_cast<int>(scalars);
    displs[static_cast<std::size_t>(r)] = static_cast<int>(sum);
    sum += scalars;
  }
  total = static_cast<Eigen::Index>(sum / std::max<Eigen::Index>(unit, 1));
  const bool receives = root < 0 || me == root;
  out.assign(receives ? static_cast<std::size_t>(sum) : 0, Scalar(0));
  const int send = static_cast<int>(mine * unit);
  if (root < 0)
    MPI_Allgatherv(local, send, datatype_of<Scalar>(), out.data(), sizes.data(), displs.data(),
                   datatype_of<Scalar>(), comm);
  else
    MPI_Gatherv(local, send, datatype_of<Scalar>(), out.data(), sizes.data(), displs.data(),
                datatype_of<Scalar>(), root, comm);
}

}  // namespace detail

/// Collective: the columns of every rank's @p local (d x n_r, the same d everywhere) side
/// by side in rank order, `[local_0 | local_1 | … | local_{P-1}]` (d x Σ n_r), on every rank
/// (@p root < 0, the default) or on rank @p root only (the others get an empty matrix).
/// The inverse of taking balanced_shard() columns.
template <class Scalar, int Rows>
[[nodiscard]] Eigen::Matrix<Scalar, Rows, Eigen::Dynamic> gather_columns(
    MPI_Comm comm, const Eigen::Matrix<Scalar, Rows, Eigen::Dynamic>& local, int root = -1) {
  std::vector<Scalar> all;
  Eigen::Index total = 0;
  detail::gather_units(comm, local.data(), local.cols(), local.rows(), root, all, total);
  if (root >= 0 && rank_of(comm) != root) return Eigen::Matrix<Scalar, Rows, Eigen::Dynamic>(local.rows(), 0);
  Eigen::Matrix<Scalar, Rows, Eigen::Dynamic> out(local.rows(), total);
  std::copy(all.begin(), all.end(), out.data());
  return out;
}

/// Collective: every rank's values @p local (one per sample: values, counters)
/// concatenated in rank order, on every rank (@p root < 0) or on rank @p root only (the
/// others get an empty vector).
template <class T>
[[nodiscard]] Eigen::Matrix<T, Eigen::Dynamic, 1> gather_values(
    MPI_Comm comm, const Eigen::Matrix<T, Eigen::Dynamic, 1>& local, int root = -1) {
  std::vector<T> all;
  Eigen::Index total = 0;
  detail::gather_units(comm, local.data(), local.size(), 1, root, all, total);
  Eigen::Matrix<T, Eigen::Dynamic, 1> out(static_cast<Eigen::Index>(all.size()));
  std::copy(all.begin(), all.end(), out.data());
  return out;
}

}  // namespace kinflow::mpi
