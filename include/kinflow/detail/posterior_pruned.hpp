#pragma once
/// @file
/// @brief Private machinery of the closed-form posterior engine: the pruned stream, which
/// visits for each query only the leaves of the pruning index that can carry more than a
/// share `ε` of its posterior mass (docs/math.md, "Certified pruning").
///
/// Queries are sorted by the leaf whose centre is nearest and cut into chunks of 64. Per
/// chunk:
///  1. every query's nearest leaf is streamed: this gives each query an actual maximum
///     logit `M` and mass `W` (relative to `M`) over those points;
///  2. the leaves not yet visited are taken in increasing order of their bound `U_g` and
///     left out while `Σ n_g exp(U_g − M) ≤ ε W`; the rest are streamed and merged in
///     (posterior_state::merge_record).
/// Each step marks, per leaf, the chunk's queries that visit it (a 64-bit mask); a run of
/// consecutive leaves with the same mask is streamed by the engine's tile kernel for those
/// queries together (matrix products for d ≥ 5).
/// The mass left out is then at most `ε` times the mass found (which only grows in step 2),
/// whatever the data. When the bounds say that most points would be visited anyway, the
/// caller's dense stream runs instead (pruning_mode::automatic).

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <vector>

#include <Eigen/Core>

#include "kinflow/core/batch.hpp"
#include "kinflow/detail/field_parallel.hpp"
#include "kinflow/detail/gemm.hpp"
#include "kinflow/detail/posterior_block.hpp"
#include "kinflow/detail/posterior_plan.hpp"
#include "kinflow/detail/prune_index.hpp"

namespace kinflow::detail {

/// Running counts of a pruning engine (shared by copies of it).
struct prune_counters {
  std::atomic<std::uint64_t> evaluations{0};         ///< streams run
  std::atomic<std::uint64_t> pruned_evaluations{0};  ///< of which pruned
  std::atomic<std::uint64_t> pairs{0};               ///< (query, point) pairs evaluated
  std::atomic<std::uint64_t> dense_pairs{0};         ///< pairs a dense stream evaluates
};

/// Queries per chunk of the pruned stream (one bit each in a leaf's mask).
inline constexpr field_index prune_chunk = 64;

/// The pruned stream of X with per-query parameters @p par (B entries): the statistics of
/// query j into the record `records + j · record_size(d)`. Returns false, having written
/// nothing, where pruned_stream does.
template <class Scalar, int Dim, class State>
bool pruned_core(const prune_index<Scalar, Dim>& ix, const posterior_points<Scalar, Dim>& original,
                 const batch<Scalar, Dim>& X, const posterior_params<Scalar>* par, posterior_request req,
                 const posterior_plan& dense, std::size_t budget, Scalar eps, bool forced, prune_counters& counts,
                 Scalar* records) {
  const auto params = [par](field_index j) { return par[j]; };
  using mask = std::uint64_t;
  const field_index d = X.rows(), B = X.cols(), n = ix.points.cols(), G = ix.leaves();
  if (B == 0) return true;
  const field_index cq = std::min(B, prune_chunk);
  posterior_plan plan = dense;
  plan.cols_block = cq;
  const field_index rec = State::record_size(d);
  const field_index dpad = field_pad<Scalar>(d * cq), rpad = field_pad<Scalar>(rec * cq);
  const field_index upad = field_pad<Scalar>(G * cq);
  const std::size_t tile_scalars = posterior_worker_scalars<Scalar>(d, plan.rows_block, cq, plan.expanded, plan.trace);
  // Per worker, first the pruned chunks: the tile kernel's scratch, U (G x cq), the chunk's
  // queries and a gathered subset of them, the chunk's records and a subset's; then the
  // chunks that run dense, in blocks of the dense plan: its scratch and the gathered block.
  const std::size_t worker_scalars =
      std::max(tile_scalars + static_cast<std::size_t>(upad + 2 * dpad + 2 * rpad),
               dense.worker_scalars + static_cast<std::size_t>(field_pad<Scalar>(d * dense.cols_block)));
  // Per worker: the chunk's queries, a subset of them and their first leaves (3 cq); the
  // leaf masks (G).
  const std::size_t worker_indices = static_cast<std::size_t>(3 * cq);
  const auto tasks = static_cast<std::size_t>((B + cq - 1) / cq);
  // The nearest leaf and the order of every query, the queries that run dense, a flag per chunk.
  const std::size_t global_indices = static_cast<std::size_t>(3 * B) + tasks;
  const std::size_t global_bytes = global_indices * sizeof(field_index) + field_bookkeeping_bytes;
  unsigned workers = std::max(std::min<unsigned>(dense.workers, static_cast<unsigned>(tasks)), 1u);
  auto bytes = [&](unsigned w) {
    return global_bytes + static_cast<std::size_t>(w) * (worker_scalars * sizeof(Scalar) +
                                                         worker_indices * sizeof(field_index) +
                                                         static_cast<std::size_t>(G) * sizeof(mask));
  };
  while (workers > 1 && bytes(workers) > budget) --workers;
  if (bytes(workers) > budget) return false;
  plan.workers = workers;
  plan.worker_scalars = tile_scalars;

  field_scratch<Scalar> mem(static_cast<std::size_t>(workers) * worker_scalars);
  field_scratch<field_index> idx_mem(static_cast<std::size_t>(workers) * worker_indices + global_indices);
  field_scratch<mask> mask_mem(static_cast<std::size_t>(workers) * static_cast<std::size_t>(G));
  field_index* best = idx_mem.data() + static_cast<std::size_t>(workers) * worker_indices;  // B
  field_index* order = best + B;                                                             // B
  field_index* dense_queries = order + B;                                                    // B
  field_index* chunk_dense = dense_queries + B;                                              // tasks
  const blas_single_thread_scope single_threaded_blas(plan.blas && plan.expanded);
  const Scalar log_eps = std::log(eps), log_g = std::log(static_cast<Scalar>(G));
  constexpr Scalar neg_inf = -std::numeric_limits<Scalar>::infinity();
  using const_map = Eigen::Map<const batch<Scalar, Dim>>;

  // Pass A: each query's nearest leaf, and an estimate of the points pruning would visit.
  // The estimate comes from every `stride`-th chunk (at least 8 chunks): where pruning would
  // not pay, that is all the pass costs (the leaf bounds of every query cost as much as a
  // tenth of a dense pass over few points in 2-D); the other chunks' nearest leaves follow
  // only when it pays.
  const std::size_t stride = std::max<std::size_t>(1, tasks / 8);
  std::atomic<std::uint64_t> estimate{0};
  std::atomic<field_index> sampled{0};
  auto nearest_leaves = [&](unsigned w, std::size_t task, bool count) {
    Scalar* U = mem.data() + static_cast<std::size_t>(w) * worker_scalars + tile_scalars;
    const field_index j0 = static_cast<field_index>(task) * cq, nc = std::min(cq, B - j0);
    leaf_logit_bounds<Scalar, Dim>(ix, const_map(X.col(j0).data(), d, nc),
                                   [&](field_index j) { return params(j0 + j); }, plan.expanded, plan.blas, U,
                                   best + j0);
    if (!count) return;
    std::uint64_t local = 0;
    for (field_index j = 0; j < nc; ++j) {
      const Scalar* u = U + j * G;
      const Scalar floor = *std::max_element(u, u + G) + log_eps - log_g;
      for (field_index g = 0; g < G; ++g)
        if (u[g] >= floor) local += static_cast<std::uint64_t>(ix.leaf_points(g));
    }
    estimate += local;
    sampled += nc;
  };
  const std::size_t samples = (tasks + stride - 1) / stride;
  field_parallel_for(workers, samples, [&](unsigned w, std::size_t k) { nearest_leaves(w, k * stride, true); });
  // Pruning is not tried where the sampled queries would visit more than half of the points.
  if (!forced && 2 * estimate.load() > static_cast<std::uint64_t>(n) * static_cast<std::uint64_t>(sampled.load()))
    return false;
  if (stride > 1)
    field_parallel_for(workers, tasks, [&](unsigned w, std::size_t task) {
      if (task % stride != 0) nearest_leaves(w, task, false);
    });

  std::iota(order, order + B, field_index{0});
  std::stable_sort(order, order + B, [&](field_index a, field_index b) { return best[a] < best[b]; });

  // Pass B: chunks of queries with neighbouring nearest leaves.
  std::atomic<std::uint64_t> pairs{0};
  const auto view = ix.view();
  field_parallel_for(workers, tasks, [&](unsigned w, std::size_t task) {
    Scalar* base = mem.data() + static_cast<std::size_t>(w) * worker_scalars;
    Scalar* U = base + tile_scalars;
    Scalar* xg = U + upad;  // the chunk's queries
    Scalar* xh = xg + dpad;  // a subset of them
    Scalar* r1 = xh + dpad;  // the chunk's records
    Scalar* r2 = r1 + rpad;  // a subset's records
    field_index* q = idx_mem.data() + static_cast<std::size_t>(w) * worker_indices;  // cq: the chunk's queries
    field_index* sub = q + cq;  // cq: a subset (indices into the chunk)
    field_index* first = sub + cq;  // cq: each query's leaf of step 1
    mask* leaf_mask = mask_mem.data() + static_cast<std::size_t>(w) * static_cast<std::size_t>(G);

    const field_index k0 = static_cast<field_index>(task) * cq, nc = std::min(cq, B - k0);
    for (field_index i = 0; i < nc; ++i) {
      q[i] = order[k0 + i];
      std::copy_n(X.col(q[i]).data(), d, xg + i * d);
      Scalar* r = r1 + i * rec;
      r[0] = neg_inf;
      std::fill(r + 1, r + rec, Scalar(0));
    }
    const const_map Xg(xg, d, nc);
    leaf_logit_bounds<Scalar, Dim>(ix, Xg, [&](field_index i) { return params(q[i]); }, plan.expanded, plan.blas, U,
                                   first);

    // Streams every run of consecutive leaves with the same nonzero mask for the queries of
    // the mask, and merges the statistics into the chunk's records.
    std::uint64_t local = 0;
    auto visit = [&] {
      for (field_index g = 0; g < G;) {
        const mask m = leaf_mask[g];
        field_index h = g + 1;
        while (h < G && leaf_mask[h] == m) ++h;
        if (m != 0) {
          field_index ns = 0;
          for (field_index i = 0; i < nc; ++i)
            if ((m >> i) & 1u) {
              sub[ns] = i;
              std::copy_n(xg + i * d, d, xh + ns * d);
              ++ns;
            }
          const point_range range{ix.begin[g], ix.begin[h]};
          posterior_tile_worker<Scalar, Dim> worker(view, plan, req, base);
          worker.run(const_map(xh, d, ns), 0, ns, [&](field_index k) { return params(q[sub[k]]); }, &range, 1,
                     [&](field_index k, const posterior_raw<Scalar>& raw) {
                       Scalar* r = r2 + k * rec;
                       r[0] = raw.max;
                       r[1] = raw.sum;
                       r[2] = raw.coef;
                       r[3] = raw.m2;
                       std::copy_n(raw.weighted, d, r + State::header_size);
                     });
          for (field_index k = 0; k < ns; ++k) State::merge_record(r2 + k * rec, r1 + sub[k] * rec, d);
          local += static_cast<std::uint64_t>(range.end - range.begin) * static_cast<std::uint64_t>(ns);
        }
        g = h;
      }
    };

    // Step 1: every query's leaf of the nearest centre.
    std::fill(leaf_mask, leaf_mask + G, mask{0});
    for (field_index i = 0; i < nc; ++i) leaf_mask[first[i]] |= mask{1} << i;
    visit();

    // Step 2: the leaves each query cannot leave out. Each leaf left out carries at most
    // ε W / (G − 1) (its bound times its size), so all of them together at most ε W.
    for (field_index g = 0; g < G; ++g) leaf_mask[g] = 0;
    const Scalar share = std::log(eps) - std::log(static_cast<Scalar>(std::max<field_index>(G - 1, 1)));
    for (field_index i = 0; i < nc; ++i) {
      const Scalar* u = U + i * G;
      const field_index g1 = first[i];
      const Scalar M = r1[i * rec], W = r1[i * rec + 1];
      // No weight found (not with finite input): cut = -inf visits every leaf.
      const Scalar cut = M > neg_inf ? M + std::log(W) + share : neg_inf;
      const mask bit = mask{1} << i;
      for (field_index g = 0; g < G; ++g)
        if (g != g1 && !(u[g] + ix.log_points(g) <= cut)) leaf_mask[g] |= bit;
    }
    // Where the pruned runs would cost about as much as the dense pass, the dense pass is
    // cheaper: the chunk's queries join the dense blocks below. A run of few queries over a
    // leaf reuses each point little (a thin matrix product), so each visited leaf counts as
    // `overhead` queries more than it has.
    const std::uint64_t overhead = plan.expanded ? 64 : 2;
    std::uint64_t wanted = 0;
    for (field_index g = 0; g < G; ++g)
      if (leaf_mask[g] != 0)
        wanted += (static_cast<std::uint64_t>(std::popcount(leaf_mask[g])) + overhead) *
                  static_cast<std::uint64_t>(ix.leaf_points(g));
    chunk_dense[task] =
        !forced && 10 * wanted > 7 * static_cast<std::uint64_t>(nc) * static_cast<std::uint64_t>(n) ? 1 : 0;
    if (chunk_dense[task]) {
      pairs += local;
      return;
    }
    visit();
    pairs += local;
    for (field_index i = 0; i < nc; ++i) {
      Scalar* r = r1 + i * rec;
      std::copy_n(r, rec, records + q[i] * rec);
    }
  });
  // The chunks that run dense, in the dense plan's blocks (in chunk order, so that which
  // block a query joins does not depend on the threads).
  field_index nd = 0;
  for (std::size_t task = 0; task < tasks; ++task) {
    if (!chunk_dense[task]) continue;
    const field_index k0 = static_cast<field_index>(task) * cq, nc = std::min(cq, B - k0);
    std::copy_n(order + k0, nc, dense_queries + nd);
    nd += nc;
  }
  if (nd > 0) {
    const field_index cd = dense.cols_block;
    const auto blocks = static_cast<std::size_t>((nd + cd - 1) / cd);
    posterior_plan full = dense;
    full.workers = workers;
    field_parallel_for(workers, blocks, [&](unsigned w, std::size_t block) {
      Scalar* base = mem.data() + static_cast<std::size_t>(w) * worker_scalars;
      Scalar* xb = base + dense.worker_scalars;
      const field_index k0 = static_cast<field_index>(block) * cd, nc = std::min(cd, nd - k0);
      const field_index* qs = dense_queries + k0;
      for (field_index i = 0; i < nc; ++i) std::copy_n(X.col(qs[i]).data(), d, xb + i * d);
      posterior_tile_worker<Scalar, Dim> worker(original, full, req, base);
      worker.run(const_map(xb, d, nc), 0, nc, [&](field_index i) { return params(qs[i]); },
                 [&](field_index i, const posterior_raw<Scalar>& raw) {
                   Scalar* r = records + qs[i] * rec;
                   r[0] = raw.max;
                   r[1] = raw.sum;
                   r[2] = raw.coef;
                   r[3] = raw.m2;
                   std::copy_n(raw.weighted, d, r + State::header_size);
                 });
    });
    pairs += static_cast<std::uint64_t>(nd) * static_cast<std::uint64_t>(n);
  }
  counts.pruned_evaluations += 1;
  counts.pairs += pairs.load();
  return true;
}

/// Runs the pruned stream of X (see the file comment) and returns true, or returns false
/// without calling @p sink when pruning would not pay (@p forced false and the bounds'
/// estimate, from a sample of the queries, of the points to visit above half of them) or
/// the scratch does not fit @p budget bytes. With @p forced (pruning_mode::on) no chunk joins the dense pass.
/// @p dense is the plan a dense stream of X would use; the queries that run dense stream
/// over @p original, the points in their own order (in which the split trace's near points
/// are fewer than in the index's clustered order). `State` is
/// kinflow::posterior_state<Scalar> (its record layout and merge).
///
/// The work is done by pruned_core, compiled once per scalar type and dimension (not per
/// caller's parameters and finishing step): the parameters are taken into an array first,
/// and the statistics of every query come back as records, handed to @p sink at the end.
template <class Scalar, int Dim, class State, class Params, class Sink>
bool pruned_stream(const prune_index<Scalar, Dim>& ix, const posterior_points<Scalar, Dim>& original,
                   const batch<Scalar, Dim>& X, const Params& params,
                   posterior_request req, const posterior_plan& dense, std::size_t budget, Scalar eps,
                   bool forced, prune_counters& counts, const Sink& sink) {
  const field_index B = X.cols(), rec = State::record_size(X.rows());
  const std::size_t own = static_cast<std::size_t>(B) * (sizeof(posterior_params<Scalar>) +
                                                         static_cast<std::size_t>(rec) * sizeof(Scalar));
  if (own >= budget) return false;
  field_scratch<posterior_params<Scalar>> par(static_cast<std::size_t>(B));
  for (field_index j = 0; j < B; ++j) par.data()[j] = params(j);
  field_scratch<Scalar> records(static_cast<std::size_t>(B * rec));
  if (!pruned_core<Scalar, Dim, State>(ix, original, X, par.data(), req, dense, budget - own, eps, forced, counts,
                                       records.data()))
    return false;
  for (field_index j = 0; j < B; ++j) {
    Scalar* r = records.data() + j * rec;
    sink(j, posterior_raw<Scalar>{r[0], r[1], r[2], r[3], r + State::header_size});
  }
  return true;
}

}  // namespace kinflow::detail
