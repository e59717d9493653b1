#pragma once
/// @file
/// @brief The closed-form posterior engine shared by kinflow::empirical_field and
/// kinflow::gaussian_mixture_field (docs/math.md, "The closed-form posterior engine"): the
/// settings both fields share (memory, threads, products, pruning) and the engine that
/// streams a batch over the points in tiles, dense or pruned.

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include <Eigen/Core>

#include "kinflow/core/batch.hpp"
#include "kinflow/core/errors.hpp"
#include "kinflow/core/products.hpp"
#include "kinflow/detail/field_storage.hpp"
#include "kinflow/detail/function_ref.hpp"
#include "kinflow/detail/gemm.hpp"
#include "kinflow/detail/posterior_block.hpp"
#include "kinflow/detail/posterior_kernels.hpp"
#include "kinflow/detail/posterior_plan.hpp"
#include "kinflow/detail/posterior_pruned.hpp"
#include "kinflow/detail/posterior_weights.hpp"
#include "kinflow/detail/prune_index.hpp"
#include "kinflow/fields/posterior_state.hpp"

namespace kinflow {

/// Whether a closed-form field skips the points that cannot matter (certified pruning,
/// docs/math.md "Certified pruning"; closed_form_settings::pruning).
///
/// Pruning leaves out, per query, whole groups of points whose total posterior mass is
/// provably at most `ε` (closed_form_settings::pruning_eps) times the mass of the points it
/// visits. Every quantity then differs from the dense one by a stated bound: the log density
/// by at most `ε`, the posterior mean by at most `2εR` (R: the largest distance from the
/// mean to a point), the trace of the posterior covariance by at most `2ε (2R)²`. The first
/// evaluation that prunes builds an index over the points (a ball tree, O(n d log n)) and
/// keeps a reordered copy of them: memory for a second copy of the training set.
enum class pruning_mode {
  /// Prune where the bounds show that it pays (late times, concentrated posteriors), run the
  /// dense pass otherwise (early times, few points: the check costs about 1 %).
  automatic,
  /// Never prune: every point is visited, and no index is built.
  off,
  /// Always take the pruned path, even where it visits almost every point.
  on
};

/// Counts of a closed-form field's evaluations (closed_form_field::pruning_statistics): how
/// many (query, point) pairs were evaluated against how many the dense pass evaluates.
struct pruning_stats {
  std::uint64_t evaluations = 0;         ///< passes over the points (each of a whole batch)
  std::uint64_t pruned_evaluations = 0;  ///< of which took the pruned path
  std::uint64_t pairs = 0;               ///< (query, point) pairs evaluated
  std::uint64_t dense_pairs = 0;         ///< (query, point) pairs the dense passes evaluate
  /// Adds the counts of @p o (e.g. another field's, or another step's).
  pruning_stats& operator+=(const pruning_stats& o) noexcept {
    evaluations += o.evaluations;
    pruned_evaluations += o.pruned_evaluations;
    pairs += o.pairs;
    dense_pairs += o.dense_pairs;
    return *this;
  }
  /// The share of the training points touched, `pairs / dense_pairs` (1 before any evaluation).
  [[nodiscard]] double touched_share() const noexcept {
    return dense_pairs == 0 ? 1.0 : static_cast<double>(pairs) / static_cast<double>(dense_pairs);
  }
};

/// One pass over the points recorded by closed_form_field::record_pruning_passes: its time
/// (the least and largest of its queries' times: equal within a fixed-grid stage) and its
/// counts.
struct pruning_pass {
  double t_min = 0;               ///< the least of the queries' times
  double t_max = 0;               ///< the largest of the queries' times
  std::uint64_t pairs = 0;        ///< (query, point) pairs evaluated
  std::uint64_t dense_pairs = 0;  ///< pairs the dense pass evaluates
};

/// The counts of the passes @p passes in each step of the grid @p times (increasing, or
/// decreasing for a backward solve): entry n sums the passes whose time lies in step n, from
/// `t_n` included to `t_{n+1}` excluded in the grid's direction (the last step includes its
/// end). With a fixed-grid solve that is the work of the evaluations at the times of step n;
/// a stage at `t_n + h` falls on the next step, beside that step's first evaluation at the
/// same time. A pass's time is its queries' earliest in the grid's direction; passes outside
/// the grid are left out; `touched_share()` of a step without passes is 1.
[[nodiscard]] inline std::vector<pruning_stats> pruning_by_step(const std::vector<pruning_pass>& passes,
                                                                const std::vector<double>& times) {
  const std::size_t N = times.size() < 2 ? 0 : times.size() - 1;
  std::vector<pruning_stats> out(N);
  if (N == 0) return out;
  const bool up = times.back() > times.front();
  for (const pruning_pass& p : passes) {
    const double t = up ? p.t_min : p.t_max;
    if (up ? (t < times.front() || t > times.back()) : (t > times.front() || t < times.back())) continue;
    // The last node at or before t in the grid's direction starts its step (a binary search:
    // long grids record a pass per stage); the far end belongs to the last step.
    const auto after = up ? std::upper_bound(times.begin(), times.end(), t)
                          : std::upper_bound(times.begin(), times.end(), t, std::greater<double>());
    const std::size_t n = std::min(static_cast<std::size_t>(after - times.begin()) - 1, N - 1);
    out[n] += {1, 0, p.pairs, p.dense_pairs};
  }
  return out;
}

/// How a closed-form field evaluates: memory, threads and products. The options of both
/// closed-form fields (kinflow::empirical_options, kinflow::gaussian_mixture_options) derive
/// from it, so these four members are declared here once and read `opt.threads` on either.
/// (A designated initializer names them inside the base's braces:
/// `empirical_options<double>{{.threads = 1}}`.)
struct closed_form_settings {
  /// Scratch memory one evaluation may allocate beyond its inputs and outputs, in bytes
  /// (at least 64 KiB). Default 32 MiB. Matrix-product packing buffers of Eigen (used for
  /// large d; a few hundred KiB, independent of N and B) come on top.
  std::size_t memory_budget = std::size_t{32} << 20;
  /// Worker threads: 0 = all hardware threads, 1 = the calling thread only.
  unsigned threads = 0;
  /// How squared distances are formed; see kinflow::distance_method.
  distance_method distances = distance_method::automatic;
  /// Which library computes the matrix products of the product-based distances (d ≥ 5);
  /// see kinflow::matrix_products.
  matrix_products products = matrix_products::automatic;
  /// Certified pruning of the points (see kinflow::pruning_mode). Default automatic.
  pruning_mode pruning = pruning_mode::automatic;
  /// Pruning: the mass a query may leave out, relative to the mass it finds
  /// (0 < pruning_eps ≤ 0.5; default 1e-12).
  double pruning_eps = 1e-12;
};

/// The closed-form posterior engine over a set of points `y_1 … y_n` (d x n), with optional
/// per-point log priors `log π_i` and variances `s_i²`: streams a batch of samples over the
/// points and hands each sample's posterior statistics to a finishing step.
///
/// Meant for field implementers; users call the fields. Evaluation is const and may run
/// concurrently from several threads.
///
/// @tparam Scalar float or double
/// @tparam Dim    d fixed at compile time or Eigen::Dynamic
template <class Scalar, int Dim = Eigen::Dynamic>
  requires real_scalar<Scalar>
class posterior_engine {
public:
  /// The batch type of samples and points.
  using batch_type = batch<Scalar, Dim>;
  /// Per-point values (log priors, variances).
  using vector_type = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;

  /// An engine over @p points (already checked by the field) with the settings @p settings.
  /// @throws kinflow::invalid_argument for a memory budget below 64 KiB or unavailable BLAS.
  posterior_engine(detail::field_points<Scalar, Dim> points, const closed_form_settings& settings)
      : y_(std::move(points)), settings_(settings) {
    detail::require(settings_.memory_budget >= (std::size_t{64} << 10), "memory_budget",
                    settings_.memory_budget, "expected at least 65536 bytes");
    detail::require(settings_.pruning_eps > 0 && settings_.pruning_eps <= 0.5, "pruning_eps",
                    settings_.pruning_eps, "expected 0 < pruning_eps <= 0.5");
    blas_ = detail::resolve_products(settings_.products, "products");
    sq_norm_ = detail::column_sq_norms<Scalar, Dim>(y_.view());
    max_norm_ = std::sqrt(sq_norm_.maxCoeff());
  }

  /// Gives the points log priors @p log_prior (n entries, or empty when all are equal) and
  /// variances @p spread (n entries `s_i²`, or empty for one variance per sample).
  void set_point_parameters(vector_type log_prior, vector_type spread) {
    log_prior_ = std::move(log_prior);
    spread_ = std::move(spread);
    min_spread_ = spread_.size() == 0 ? Scalar(0) : spread_.minCoeff();
    prune_ = std::make_shared<prune_holder>();  // the index carries the old parameters
  }

  /// The counts of pairs evaluated so far (shared by copies of this engine).
  [[nodiscard]] pruning_stats pruning_statistics() const noexcept {
    return {counts_->evaluations.load(), counts_->pruned_evaluations.load(), counts_->pairs.load(),
            counts_->dense_pairs.load()};
  }
  /// Sets the counts of pruning_statistics() to zero (and clears the recorded passes).
  void reset_pruning_statistics() const noexcept {
    counts_->evaluations = 0;
    counts_->pruned_evaluations = 0;
    counts_->pairs = 0;
    counts_->dense_pairs = 0;
    const std::lock_guard<std::mutex> lock(log_->mutex);
    log_->passes.clear();
  }
  /// Starts (or stops) recording every pass's time and counts (pruning_passes()); off by
  /// default. Shared by copies of this engine.
  void record_pruning_passes(bool on) const noexcept { log_->on = on; }
  /// The passes recorded so far, in the order they finished.
  [[nodiscard]] std::vector<pruning_pass> pruning_passes() const {
    const std::lock_guard<std::mutex> lock(log_->mutex);
    return log_->passes;
  }

  /// Dimension d.
  [[nodiscard]] Eigen::Index dim() const noexcept { return y_.rows(); }
  /// Number of points n.
  [[nodiscard]] Eigen::Index size() const noexcept { return y_.cols(); }
  /// The points (d x n).
  [[nodiscard]] Eigen::Map<const batch_type> points() const { return y_.view(); }
  /// True when the engine references the caller's matrix rather than a copy.
  [[nodiscard]] bool holds_reference() const noexcept { return y_.is_reference(); }
  /// The settings in use.
  [[nodiscard]] const closed_form_settings& settings() const noexcept { return settings_; }

  /// Throws kinflow::dimension_mismatch unless X has d rows.
  void check(const batch_type& X) const {
    detail::require_dimension("rows of the sample batch X (dimension d)", X.rows(), dim());
  }

  /// Streams every column of X over the points: `finish(j, column)` once per column, from
  /// worker threads, with the normalised statistics of @p request; `params(j)` gives column
  /// j's logit parameters. `finish` may write column j of an output that aliases X.
  template <class Params, class Finish>
  void stream(const Params& params, const batch_type& X, posterior_request request,
              const Finish& finish) const {
    const Eigen::Index d = dim();
    const bool mean = request.mean;
    run(params, X, request, [&](Eigen::Index j, const detail::posterior_raw<Scalar>& raw) {
      finish(j, detail::normalise(raw, d, mean));
    });
  }

  /// The partial state of every column of X over the points into @p out (resized).
  template <class Params>
  void accumulate(const Params& params, const batch_type& X, posterior_request request,
                  posterior_state<Scalar>& out) const {
    out = posterior_state<Scalar>(dim(), X.cols(), request);
    const Eigen::Index d = dim();
    run(params, X, request, [&](Eigen::Index j, const detail::posterior_raw<Scalar>& raw) {
      Scalar* r = out.record(j);
      r[0] = raw.max;
      r[1] = raw.sum;
      r[2] = raw.coef;
      r[3] = raw.m2;
      std::copy(raw.weighted, raw.weighted + d, r + posterior_state<Scalar>::header_size);
    });
  }

  /// Normalised statistics of every query of @p state: `finish(j, column)` in order.
  template <class Finish>
  static void finish_state(const posterior_state<Scalar>& state, const Finish& finish) {
    const Eigen::Index d = state.dim();
    // A plain buffer, copied into (normalise() scales it in place): an Eigen vector assigned
    // in the loop makes GCC 12 report a false use-after-free under ThreadSanitizer.
    std::vector<Scalar> weighted(static_cast<std::size_t>(d));
    for (Eigen::Index j = 0; j < state.size(); ++j) {
      const Scalar* sum = state.record(j) + posterior_state<Scalar>::header_size;
      std::copy(sum, sum + d, weighted.begin());
      const detail::posterior_raw<Scalar> raw{state.max_logit(j), state.weight_sum(j),
                                              state.coef_sum(j), state.deviation_sum(j),
                                              weighted.data()};
      finish(j, detail::normalise(raw, d, state.request().mean));
    }
  }

  /// The normalised posterior weights of every column of X into the n x B matrix @p W
  /// (resized), with direct distances.
  template <class Params>
  void weights(const Params& params, const batch_type& X,
               Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>& W) const {
    check(X);
    W.resize(size(), X.cols());
    detail::posterior_weight_matrix<Scalar, Dim>(view(), X, params, settings_.memory_budget,
                                                 settings_.threads, W);
  }

private:
  [[nodiscard]] detail::posterior_points<Scalar, Dim> view() const {
    return {y_.view(),
            sq_norm_.data(),
            max_norm_,
            log_prior_.size() == 0 ? nullptr : log_prior_.data(),
            spread_.size() == 0 ? nullptr : spread_.data(),
            spread_.size() == 0 ? Scalar(0) : min_spread_};
  }

  /// Each column's parameters, and what takes each column's statistics: references of one
  /// type, so the passes below are compiled once per scalar type and dimension.
  using params_ref = detail::function_ref<detail::posterior_params<Scalar>(Eigen::Index)>;
  using sink_ref = detail::function_ref<void(Eigen::Index, const detail::posterior_raw<Scalar>&)>;

  void run(params_ref params, const batch_type& X, posterior_request request, sink_ref sink) const {
    check(X);
    auto plan = detail::make_posterior_plan<Scalar>(dim(), size(), X.cols(), settings_.memory_budget,
                                                    settings_.threads, settings_.distances,
                                                    request.trace);
    plan.blas = blas_;
    const auto pairs = static_cast<std::uint64_t>(size()) * static_cast<std::uint64_t>(X.cols());
    counts_->evaluations += 1;
    counts_->dense_pairs += pairs;
    if (may_prune(params, X)) {
      detail::prune_counters mine;  // this pass's, added to the engine's below
      const bool pruned = detail::pruned_stream<Scalar, Dim, posterior_state<Scalar>>(
          index(), view(), X, params, request, plan, settings_.memory_budget,
          static_cast<Scalar>(settings_.pruning_eps), settings_.pruning == pruning_mode::on, mine, sink);
      if (pruned) {
        counts_->pruned_evaluations += mine.pruned_evaluations.load();
        counts_->pairs += mine.pairs.load();
        record(params, X.cols(), mine.pairs.load(), pairs);
        return;
      }
    }
    counts_->pairs += pairs;
    detail::posterior_stream<Scalar, Dim>(view(), X, params, request, plan, sink);
    record(params, X.cols(), pairs, pairs);
  }

  /// Appends a pass to the log when recording.
  void record(params_ref params, Eigen::Index B, std::uint64_t touched, std::uint64_t dense) const {
    if (!log_->on || B == 0) return;
    pruning_pass p{static_cast<double>(params(0).t), static_cast<double>(params(0).t), touched, dense};
    for (Eigen::Index j = 1; j < B; ++j) {
      const auto t = static_cast<double>(params(j).t);
      p.t_min = std::min(p.t_min, t);
      p.t_max = std::max(p.t_max, t);
    }
    const std::lock_guard<std::mutex> lock(log_->mutex);
    log_->passes.push_back(p);
  }

  /// False where pruning is off, or (automatic) where no query's logits can differ by
  /// enough to leave any point out: `t·2R·(2‖x‖ + 4|t|R) / (2v) < log(n/ε) + 1` for every
  /// column (R = max ‖y‖, shared variance v, equal priors), or n is below four leaves.
  [[nodiscard]] bool may_prune(params_ref params, const batch_type& X) const {
    if (settings_.pruning == pruning_mode::off || X.cols() == 0) return false;
    if (settings_.pruning == pruning_mode::on) return true;
    if (size() < 4 * detail::prune_leaf_size) return false;
    if (spread_.size() != 0 || log_prior_.size() != 0) return true;
    const Scalar need = std::log(static_cast<Scalar>(size())) - static_cast<Scalar>(std::log(settings_.pruning_eps)) + 1;
    const Scalar R = max_norm_;
    for (Eigen::Index j = 0; j < X.cols(); ++j) {
      const detail::posterior_params<Scalar> par = params(j);
      const Scalar t = std::abs(par.t);
      const Scalar spread = t * 2 * R * (2 * X.col(j).norm() + 4 * t * R) / (2 * par.a);
      if (!(spread < need)) return true;
    }
    return false;
  }

  /// The pruning index, built by the first call (thread-safe).
  [[nodiscard]] const detail::prune_index<Scalar, Dim>& index() const {
    std::call_once(prune_->once, [this] {
      prune_->index = std::make_unique<const detail::prune_index<Scalar, Dim>>(
          detail::build_prune_index<Scalar, Dim>(view()));
    });
    return *prune_->index;
  }

  struct prune_holder {
    std::once_flag once;
    std::unique_ptr<const detail::prune_index<Scalar, Dim>> index;
  };

  detail::field_points<Scalar, Dim> y_;
  closed_form_settings settings_;
  bool blas_ = false;  // products through BLAS (resolved from settings_.products)
  vector_type sq_norm_;
  Scalar max_norm_ = 0;
  vector_type log_prior_;  // empty when all priors are equal
  vector_type spread_;     // s_i², empty for one variance per sample
  Scalar min_spread_ = 0;
  std::shared_ptr<prune_holder> prune_ = std::make_shared<prune_holder>();  // shared by copies
  std::shared_ptr<detail::prune_counters> counts_ = std::make_shared<detail::prune_counters>();
  struct pass_log {
    std::atomic<bool> on{false};
    std::mutex mutex;
    std::vector<pruning_pass> passes;
  };
  std::shared_ptr<pass_log> log_ = std::make_shared<pass_log>();  // shared by copies
};

}  // namespace kinflow
