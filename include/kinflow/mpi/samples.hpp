#pragma once
/// @file
/// @brief Sample sharding over MPI ranks (target kinflow::mpi): when the batch B is large
/// and the training set small, every rank holds the whole field and integrates its
/// balanced share of the samples; the samples and the per-sample results are gathered in
/// rank order, so that the gathered run is the single-process run of all B samples.
///
/// Rank r solves columns `[offset_r, offset_r + count_r)` of X (kinflow::mpi::balanced_shard
/// of B): no communication during the solve, one gather at the end of `B (d + k)` scalars
/// (k the per-sample results: status, counters, energies, log-likelihood, integrals).
/// Every sample's result is its own — the integrators treat samples independently — so the
/// gathered result equals the single-process one up to the rounding of the field's
/// blocking, which depends on the batch size.

#include <mpi.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <Eigen/Core>

#include "kinflow/core/batch.hpp"
#include "kinflow/core/errors.hpp"
#include "kinflow/energy/kpe.hpp"
#include "kinflow/integrators/result.hpp"
#include "kinflow/mpi/collective.hpp"

namespace kinflow::mpi {

/// This rank's balanced share of the columns of @p X (the same X on every rank): columns
/// `[offset, offset + count)` of balanced_shard(B, rank, P) (not collective).
template <class Scalar, int Dim>
[[nodiscard]] batch<Scalar, Dim> local_columns(MPI_Comm comm, const batch<Scalar, Dim>& X) {
  const shard_range s = balanced_shard(comm, X.cols());
  return X.middleCols(s.offset, s.count);
}

/// Collective: the per-sample results of every rank's solve, concatenated in rank order
/// (statuses, counters, energies, log-likelihoods, integrals), on every rank (@p root < 0)
/// or on rank @p root only (the others get @p local back unchanged). The energy profile is
/// the solve's @p profile (its options' kpe.profile): per_sample (B_r x steps) is gathered
/// by rows; batch_mean (steps x 1) is averaged with the ranks' sample counts as weights,
/// `Σ_r B_r p_r / Σ_r B_r`.
/// @throws kinflow::invalid_argument when the ranks' results hold different numbers of
///         integrals or profile steps.
template <class Scalar>
[[nodiscard]] solve_result<Scalar> gather_result(MPI_Comm comm, const solve_result<Scalar>& local,
                                                 int root = -1, kpe_profile profile = kpe_profile::none) {
  const bool receives = root < 0 || rank_of(comm) == root;
  solve_result<Scalar> out;
  // Statuses as ints.
  Eigen::Matrix<int, Eigen::Dynamic, 1> status(static_cast<Eigen::Index>(local.status.size()));
  for (std::size_t j = 0; j < local.status.size(); ++j) status(static_cast<Eigen::Index>(j)) = static_cast<int>(local.status[j]);
  const Eigen::Matrix<int, Eigen::Dynamic, 1> all_status = gather_values(comm, status, root);
  out.status.resize(static_cast<std::size_t>(all_status.size()));
  for (Eigen::Index j = 0; j < all_status.size(); ++j)
    out.status[static_cast<std::size_t>(j)] = static_cast<solve_status>(all_status(j));
  out.nfe = gather_values(comm, local.nfe, root);
  out.accepted = gather_values(comm, local.accepted, root);
  out.rejected = gather_values(comm, local.rejected, root);
  out.kpe.total = gather_values(comm, local.kpe.total, root);
  out.kpe.early = gather_values(comm, local.kpe.early, root);
  out.kpe.late = gather_values(comm, local.kpe.late, root);
  out.kpe.tau = local.kpe.tau;
  out.log_likelihood = gather_values(comm, local.log_likelihood, root);
  // The number of integrals and the profile's steps must agree across the ranks (ranks
  // without samples may have an empty profile).
  const long long samples = static_cast<long long>(local.status.size());
  const Eigen::Index steps = profile == kpe_profile::per_sample ? local.kpe.profile.cols()
                                                                : local.kpe.profile.rows();
  constexpr long long none = std::numeric_limits<long long>::max();
  long long shape_low[2] = {samples == 0 ? none : static_cast<long long>(local.integrals.size()),
                            profile == kpe_profile::none || samples == 0 ? none : static_cast<long long>(steps)};
  long long shape_high[2] = {samples == 0 ? -1 : shape_low[0],
                             profile == kpe_profile::none || samples == 0 ? -1 : shape_low[1]};
  long long low[2] = {0, 0}, high[2] = {0, 0};
  MPI_Allreduce(shape_low, low, 2, MPI_LONG_LONG, MPI_MIN, comm);
  MPI_Allreduce(shape_high, high, 2, MPI_LONG_LONG, MPI_MAX, comm);
  kinflow::detail::require(high[0] < 0 || low[0] == high[0], "number of integrals of the gathered results",
                           local.integrals.size(), "expected the same number on every rank");
  kinflow::detail::require(high[1] < 0 || low[1] == high[1], "steps of the gathered energy profiles",
                           steps, "expected the same number on every rank");
  const Eigen::Index all_steps = high[1] < 0 ? 0 : static_cast<Eigen::Index>(high[1]);
  const std::size_t integrals = high[0] < 0 ? 0 : static_cast<std::size_t>(high[0]);
  for (std::size_t k = 0; k < integrals; ++k)
    out.integrals.push_back(gather_values(
        comm, k < local.integrals.size() ? local.integrals[k] : per_sample<Scalar>(0), root));
  long long total_samples = 0;
  MPI_Allreduce(&samples, &total_samples, 1, MPI_LONG_LONG, MPI_SUM, comm);
  using matrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;
  if (profile == kpe_profile::per_sample) {
    // B_r x steps per rank: gathered as steps x B_r columns.
    const matrix by_column = samples == 0 ? matrix(all_steps, 0) : matrix(local.kpe.profile.transpose());
    const matrix gathered = gather_columns(comm, by_column, root);
    if (receives) out.kpe.profile = gathered.transpose();
  } else if (profile == kpe_profile::batch_mean) {
    const matrix weighted = samples == 0 ? matrix(matrix::Zero(all_steps, 1))
                                         : matrix(local.kpe.profile * static_cast<Scalar>(samples));
    matrix sum(all_steps, 1);
    MPI_Allreduce(weighted.data(), sum.data(), static_cast<int>(all_steps), datatype_of<Scalar>(), MPI_SUM, comm);
    if (receives) out.kpe.profile = sum / static_cast<Scalar>(std::max<long long>(total_samples, 1));
  }
  if (!receives) return local;
  return out;
}

/// Collective: solves the samples @p X (d x B, the same on every rank) split over the
/// ranks. Rank r calls `solve(X_r)` on its balanced share X_r (local_columns()), which
/// integrates X_r in place and returns its kinflow::solve_result; then the samples and
/// the results are gathered in rank order into @p X and the returned result, on every rank
/// (@p root < 0, the default) or on rank @p root only (the others keep their share's
/// result and their X unchanged); a rank without samples (B < P) does not call `solve`.
/// @p profile is the solve's kpe.profile (see gather_result()).
/// @throws kinflow::mpi::collective_error on every rank when `solve` threw on any rank.
template <class Scalar, int Dim, class Solve>
[[nodiscard]] solve_result<Scalar> solve_sharded(MPI_Comm comm, batch<Scalar, Dim>& X, Solve&& solve,
                                                 int root = -1, kpe_profile profile = kpe_profile::none) {
  batch<Scalar, Dim> mine = local_columns(comm, X);
  // A rank without samples (B < P) does not solve.
  solve_result<Scalar> local =
      collectively(comm, [&] { return mine.cols() == 0 ? solve_result<Scalar>{} : solve(mine); });
  batch<Scalar, Dim> all = gather_columns(comm, Eigen::Matrix<Scalar, Dim, Eigen::Dynamic>(mine), root);
  solve_result<Scalar> result = gather_result(comm, local, root, profile);
  if (root < 0 || rank_of(comm) == root) X = std::move(all);
  return result;
}

}  // namespace kinflow::mpi
