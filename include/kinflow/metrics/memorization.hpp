#pragma once
/// @file
/// @brief Memorization (docs/math.md §10.1): the fraction F_mem of generated samples that are
/// copies of training points, with a bootstrap confidence interval; and the generalisation
/// gap, distance to the training set against distance to held-out data.
///
/// A sample x is a **copy** when, with `d1 ≤ d2` its distances to the two nearest training
/// points,
///
///     d1 / d2 < 1/3                      (memorization_options::ratio_threshold)
///
/// i.e. it is much closer to one training point than to any other (the rule of the
/// reference code). When `d1 = 0` the ratio is taken as 0 (a sample on a training point is
/// a copy, also when that point is duplicated and d2 = 0 too).
///
///     F_mem = (1/B) Σ_b 1[d1_b / d2_b < threshold]
///
/// The confidence interval is the bootstrap percentile interval: F_mem recomputed on
/// `bootstrap_resamples` resamples of the B samples drawn with replacement (seeded,
/// random_stream), and its `(1 - confidence)/2` and `(1 + confidence)/2` quantiles (linear
/// interpolation between order statistics).

#include "kinflow/core/batch.hpp"
#include "kinflow/core/errors.hpp"
#include "kinflow/data/random.hpp"
#include "kinflow/metrics/nearest_neighbors.hpp"

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace kinflow {

/// Options of memorization().
struct memorization_options {
  double ratio_threshold = 1.0 / 3.0; ///< a sample is a copy when d1/d2 < this (in (0, 1])
  int bootstrap_resamples = 1000;     ///< resamples for the CI (0: no CI, low = high = F_mem)
  double confidence = 0.95;           ///< level of the percentile CI, in (0, 1)
  std::uint64_t seed = 0;             ///< seed of the bootstrap resampling
};

/// The nearest-neighbour ratio of a sample, `d1 / d2` with `d1 ≤ d2` its distances to the
/// two nearest training points, taken as 0 when `d1 = 0` (a sample on a training point, also
/// one that is duplicated so that d2 = 0 too).
[[nodiscard]] inline double nearest_neighbor_ratio(double d1, double d2) noexcept {
  return d1 == 0 ? 0.0 : d1 / d2;
}

/// The copy rule: true when a sample of nearest-neighbour ratio @p nn_ratio
/// (nearest_neighbor_ratio()) is a copy of a training point, `nn_ratio < threshold`
/// (memorization_options::ratio_threshold, 1/3 by default). A NaN ratio (a sample that is
/// not finite) is not a copy.
[[nodiscard]] inline bool is_memorized(double nn_ratio,
                                       const memorization_options& options = {}) noexcept {
  return nn_ratio < options.ratio_threshold;
}

/// A fraction with its bootstrap percentile confidence interval.
struct fraction_ci {
  double estimate = 0; ///< the fraction on the full sample
  double low = 0;      ///< lower end of the CI
  double high = 0;     ///< upper end of the CI
};

/// Result of memorization(): per-sample nearest-neighbour distances and copy flags, and
/// F_mem with its CI.
struct memorization_result {
  double fraction = 0;   ///< F_mem, fraction of samples with d1/d2 < threshold
  double ci_low = 0;     ///< lower end of the bootstrap CI of F_mem
  double ci_high = 0;    ///< upper end of the bootstrap CI of F_mem
  per_sample<double> d1; ///< distance to the nearest training point
  per_sample<double> d2; ///< distance to the second nearest training point
  per_sample<double> ratio; ///< d1/d2 (0 when d1 = 0)
  Eigen::Matrix<Eigen::Index, Eigen::Dynamic, 1> nearest; ///< column of the nearest training point
  Eigen::Array<bool, Eigen::Dynamic, 1> memorized;         ///< ratio < threshold
};

/// Bootstrap percentile CI of the fraction of true entries of @p flags: the fraction on
/// @p resamples resamples drawn with replacement (random_stream(seed)), and the quantiles
/// (1 ∓ confidence)/2 of those fractions.
/// @throws kinflow::invalid_argument if flags is empty, resamples < 0, or confidence is
///   not in (0, 1).
[[nodiscard]] inline fraction_ci bootstrap_fraction(const Eigen::Array<bool, Eigen::Dynamic, 1>& flags,
                                                    int resamples = 1000, double confidence = 0.95,
                                                    std::uint64_t seed = 0) {
  detail::require(flags.size() >= 1, "flags.size()", flags.size(),
                  "expected at least 1 sample for a fraction");
  detail::require(resamples >= 0, "bootstrap_resamples", resamples, "expected >= 0");
  detail::require(confidence > 0 && confidence < 1, "confidence", confidence,
                  "expected a level in (0, 1)");
  const auto n = static_cast<std::uint64_t>(flags.size());
  fraction_ci ci;
  ci.estimate = static_cast<double>(flags.count()) / static_cast<double>(n);
  ci.low = ci.high = ci.estimate;
  if (resamples == 0) return ci;
  random_stream rng(seed);
  std::vector<double> f(static_cast<std::size_t>(resamples));
  for (auto& fb : f) {
    std::uint64_t hits = 0;
    for (std::uint64_t i = 0; i < n; ++i) hits += flags(static_cast<Eigen::Index>(rng.index(n))) ? 1u : 0u;
    fb = static_cast<double>(hits) / static_cast<double>(n);
  }
  std::sort(f.begin(), f.end());
  // Quantile with linear interpolation between order statistics (numpy's default).
  auto quantile = [&](double p) {
    const double h = p * static_cast<double>(f.size() - 1);
    const auto lo = static_cast<std::size_t>(std::floor(h));
    const std::size_t hi = std::min(lo + 1, f.size() - 1);
    return f[lo] + (h - static_cast<double>(lo)) * (f[hi] - f[lo]);
  };
  ci.low = quantile((1 - confidence) / 2);
  ci.high = quantile((1 + confidence) / 2);
  return ci;
}

/// F_mem of @p samples (`d × B`) with respect to a training set already indexed in
/// @p training (at least 2 points), with its bootstrap CI (see the file comment).
/// @throws kinflow::invalid_argument if there are no samples, fewer than 2 training
///   points, or options out of range; kinflow::dimension_mismatch if dimensions differ.
template <class Scalar, int Dim, class Derived>
[[nodiscard]] memorization_result memorization(const Eigen::MatrixBase<Derived>& samples,
                                               const nearest_neighbor_index<Scalar, Dim>& training,
                                               const memorization_options& options = {}) {
  detail::require(options.ratio_threshold > 0 && options.ratio_threshold <= 1,
                  "memorization_options::ratio_threshold", options.ratio_threshold,
                  "expected a value in (0, 1]");
  detail::require(training.size() >= 2, "training.size()", training.size(),
                  "expected at least 2 training points (d1/d2 needs two neighbours)");
  detail::require(samples.cols() >= 1, "samples.cols()", samples.cols(),
                  "expected at least 1 sample");
  const auto nn = training.query(samples, 2);
  const Eigen::Index b = samples.cols();
  memorization_result r;
  r.d1 = nn.distances.row(0).transpose().template cast<double>();
  r.d2 = nn.distances.row(1).transpose().template cast<double>();
  r.nearest = nn.indices.row(0).transpose();
  r.ratio.resize(b);
  r.memorized.resize(b);
  for (Eigen::Index i = 0; i < b; ++i) {
    r.ratio(i) = nearest_neighbor_ratio(r.d1(i), r.d2(i));
    r.memorized(i) = is_memorized(r.ratio(i), options);
  }
  const fraction_ci ci = bootstrap_fraction(r.memorized, options.bootstrap_resamples,
                                            options.confidence, options.seed);
  r.fraction = ci.estimate;
  r.ci_low = ci.low;
  r.ci_high = ci.high;
  return r;
}

/// F_mem of @p samples (`d × B`) with respect to the training set @p training (`d × N`,
/// N ≥ 2), building the nearest-neighbour index on the way.
template <class DerivedS, class DerivedT>
[[nodiscard]] memorization_result memorization(const Eigen::MatrixBase<DerivedS>& samples,
                                               const Eigen::MatrixBase<DerivedT>& training,
                                               const memorization_options& options = {}) {
  const nearest_neighbor_index<typename DerivedT::Scalar, DerivedT::RowsAtCompileTime> index(
      training);
  return memorization(samples, index, options);
}

/// Result of generalization_gap().
struct generalization_gap_result {
  per_sample<double> distance_training; ///< nearest distance of each sample to the training set
  per_sample<double> distance_held_out; ///< nearest distance of each sample to held-out data
  double mean_distance_training = 0;    ///< mean of distance_training
  double mean_distance_held_out = 0;    ///< mean of distance_held_out
  double gap = 0; ///< mean_distance_held_out - mean_distance_training
};

/// Generalisation gap of generated @p samples: their mean nearest-neighbour distance to
/// @p held_out data (drawn from the same distribution as the training set but not trained
/// on) minus that to the @p training set,
///
///     gap = mean_b min_j ‖x_b - z_j‖ - mean_b min_i ‖x_b - y_i‖.
///
/// A model that reproduces training points has a gap near the held-out spacing; one that
/// samples the distribution has a gap near 0 (compare sets of equal size, since the
/// nearest distance shrinks as a set grows).
template <class DerivedS, class DerivedT, class DerivedH>
[[nodiscard]] generalization_gap_result generalization_gap(
    const Eigen::MatrixBase<DerivedS>& samples, const Eigen::MatrixBase<DerivedT>& training,
    const Eigen::MatrixBase<DerivedH>& held_out) {
  detail::require(samples.cols() >= 1, "samples.cols()", samples.cols(),
                  "expected at least 1 sample");
  generalization_gap_result r;
  r.distance_training = nearest_distances(samples, training).template cast<double>();
  r.distance_held_out = nearest_distances(samples, held_out).template cast<double>();
  r.mean_distance_training = r.distance_training.mean();
  r.mean_distance_held_out = r.distance_held_out.mean();
  r.gap = r.mean_distance_held_out - r.mean_distance_training;
  return r;
}

}  // namespace kinflow
