#pragma once
/// @file
/// @brief Private: the pass of kinflow::class_conditional_field over its classes (one field per
/// class), which gives every query its partial posterior state over all points and over the
/// points of its own class.

#include <Eigen/Core>
#include <algorithm>
#include <cstddef>
#include <memory>
#include <vector>

#include "kinflow/core/batch.hpp"
#include "kinflow/core/conditions.hpp"
#include "kinflow/detail/field_parallel.hpp"
#include "kinflow/detail/posterior_plan.hpp"

namespace kinflow::detail {

/// The states of every column of X over all points (@p u) and over its own class's (@p c;
/// all points for class -1), from one pass over the classes' fields (@p fields, one per
/// class, null for a class without points; @p size points in all, dimension @p d). `time_of`
/// has a member `t` (one time for every column) or `T` (a pointer to one time per column).
/// The classes run on up to @p threads worker threads, in blocks of columns whose per-class
/// states fit half of @p memory_budget bytes; the states are merged in the order of the
/// classes, so the bits do not depend on the threads. Without @p all_u (v_u not wanted),
/// each class sees only the columns of its own class and of class -1 (@p u then holds only
/// the latter's): a pass costs about 1/K of the full one.
template <class Field, class State, class TimeOf, class Batch>
void class_pass(const std::vector<std::shared_ptr<const Field>>& fields, Eigen::Index size, Eigen::Index d,
                std::size_t memory_budget, unsigned threads, const TimeOf& time_of, const Batch& X,
                const class_labels& C, posterior_request request, State& u, State& c, bool all_u) {
  using Scalar = typename Batch::Scalar;
  constexpr bool one_time = requires(const TimeOf& o) { o.t; };
  const Eigen::Index B = X.cols();
  const Eigen::Index record = State::record_size(d);
  u = State(d, B, request);
  c = State(d, B, request);
  std::vector<std::size_t> ks;  // the classes with points
  for (std::size_t k = 0; k < fields.size(); ++k)
    if (fields[k]) ks.push_back(k);
  const auto per_column = static_cast<double>(ks.size()) * static_cast<double>(record) * sizeof(Scalar);
  const Eigen::Index block =
      std::clamp<Eigen::Index>(static_cast<Eigen::Index>(static_cast<double>(memory_budget) / 2 / per_column), 64,
                               std::max<Eigen::Index>(B, 1));
  const double work = static_cast<double>(size) * static_cast<double>(B) * static_cast<double>(d + 16);
  const unsigned workers = work < 4.0e5 ? 1u : detail::field_worker_count(threads, ks.size());
  std::vector<State> parts(ks.size());
  std::vector<std::vector<Eigen::Index>> cols(ks.size());  // without all_u: each class's columns
  std::vector<Batch> Xs(ks.size());
  std::vector<sample_times<Scalar>> Ts(ks.size());
  Batch Xb;
  sample_times<Scalar> Tb;
  for (Eigen::Index q0 = 0; q0 < B; q0 += block) {
    const Eigen::Index n = std::min(block, B - q0);
    const bool whole = q0 == 0 && n == B;
    if (!whole) Xb = X.middleCols(q0, n);
    const Batch& Xq = whole ? X : Xb;
    if constexpr (!one_time)
      if (!whole) Tb = time_of.T->segment(q0, n);
    for (std::size_t i = 0; i < ks.size() && !all_u; ++i) {
      cols[i].clear();
      for (Eigen::Index j = 0; j < n; ++j)
        if (C(q0 + j) == static_cast<Eigen::Index>(ks[i]) || C(q0 + j) == null_class) cols[i].push_back(j);
    }
    detail::field_parallel_for(workers, ks.size(), [&](unsigned, std::size_t i) {
      const Field& f = *fields[ks[i]];
      if (!all_u && cols[i].empty()) return;
      if (!all_u) Xs[i] = Xq(Eigen::all, cols[i]);
      const Batch& Xi = all_u ? Xq : Xs[i];
      if constexpr (one_time) {
        parts[i] = f.partial_state(time_of.t, Xi, request);
      } else {
        const sample_times<Scalar>& Tq = whole ? *time_of.T : Tb;
        if (!all_u) Ts[i] = Tq(cols[i]);
        parts[i] = f.partial_state_at_times(all_u ? Tq : Ts[i], Xi, request);
      }
    });
    for (std::size_t i = 0; i < ks.size(); ++i) {
      const auto m_end = all_u ? n : static_cast<Eigen::Index>(cols[i].size());
      for (Eigen::Index m = 0; m < m_end; ++m) {
        const Eigen::Index j = q0 + (all_u ? m : cols[i][static_cast<std::size_t>(m)]);
        const Scalar* r = parts[i].record(m);
        if (C(j) == static_cast<Eigen::Index>(ks[i])) std::copy(r, r + record, c.record(j));
        if (all_u || C(j) == null_class) State::merge_record(r, u.record(j), d);
      }
    }
  }
  for (Eigen::Index j = 0; j < B; ++j)
    if (C(j) == null_class) std::copy(u.record(j), u.record(j) + record, c.record(j));
}

}  // namespace kinflow::detail
