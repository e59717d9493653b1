#pragma once
/// @file
/// @brief What kinflow's command-line programs measure on a run's samples: the finite-sample
/// filter (a sample whose coordinates or energy left the finite numbers is left out of
/// every summary), memorization against the training set
/// (include/kinflow/metrics/memorization.hpp), distances and sliced W2 to held-out data
/// (include/kinflow/metrics/nearest_neighbors.hpp, wasserstein.hpp), and quantiles.

#include <kinflow/integrators/result.hpp>
#include <kinflow/metrics/memorization.hpp>
#include <kinflow/metrics/nearest_neighbors.hpp>
#include <kinflow/metrics/wasserstein.hpp>

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "command_line.hpp"
#include "output.hpp"

namespace kinflow_cli {

/// The columns of @p X whose coordinates are all finite, in order.
template <class Derived>
[[nodiscard]] std::vector<Eigen::Index> finite_samples(const Eigen::MatrixBase<Derived>& X) {
  std::vector<Eigen::Index> ok;
  for (Eigen::Index i = 0; i < X.cols(); ++i)
    if (X.col(i).allFinite()) ok.push_back(i);
  return ok;
}

/// The columns of @p X whose coordinates and @p energy (one value per column) are all
/// finite, in order.
template <class DerivedX, class DerivedE>
[[nodiscard]] std::vector<Eigen::Index> finite_samples(const Eigen::MatrixBase<DerivedX>& X,
                                                       const Eigen::MatrixBase<DerivedE>& energy) {
  std::vector<Eigen::Index> ok;
  for (Eigen::Index i = 0; i < X.cols(); ++i)
    if (X.col(i).allFinite() && std::isfinite(static_cast<double>(energy(i)))) ok.push_back(i);
  return ok;
}

/// The data samples are measured against: the training set and held-out data of the
/// same distribution (none for a training set read from a file), each with its
/// nearest-neighbour index.
struct references {
  Eigen::MatrixXd train;   ///< d × N training set
  Eigen::MatrixXd heldout; ///< d × M held-out data (M = 0: none)
  std::optional<kinflow::nearest_neighbor_index<double>> train_index;   ///< of train (N ≥ 1)
  std::optional<kinflow::nearest_neighbor_index<double>> heldout_index; ///< of heldout (M ≥ 1)

  /// No training set, no held-out data.
  references() = default;
  /// The training set @p train_set and held-out data @p heldout_set (0 columns: none),
  /// each indexed.
  references(Eigen::MatrixXd train_set, Eigen::MatrixXd heldout_set)
      : train(std::move(train_set)), heldout(std::move(heldout_set)) {
    if (train.cols() > 0) train_index.emplace(train);
    if (heldout.cols() > 0) heldout_index.emplace(heldout);
  }

  /// True when memorization can be measured (d1/d2 needs 2 training points).
  [[nodiscard]] bool has_memorization() const { return train.cols() >= 2; }
  /// True when there is held-out data.
  [[nodiscard]] bool has_heldout() const { return heldout.cols() > 0; }
};

/// The memorization of every sample of a batch: NaN distances and not memorized for the
/// samples left out (not finite).
struct memorization_columns {
  Eigen::VectorXd nn_dist;     ///< d1, distance to the nearest training point
  Eigen::VectorXd nn_ratio;    ///< d1/d2 (kinflow::nearest_neighbor_ratio)
  std::vector<char> memorized; ///< 1 for a copy (kinflow::is_memorized), else 0
};

/// Spreads @p mem, measured on the columns @p measured of a batch of @p B samples, over
/// all B of them.
[[nodiscard]] inline memorization_columns spread(const kinflow::memorization_result& mem,
                                                 const std::vector<Eigen::Index>& measured, Eigen::Index B) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  memorization_columns c{Eigen::VectorXd::Constant(B, nan), Eigen::VectorXd::Constant(B, nan),
                         std::vector<char>(static_cast<std::size_t>(B), 0)};
  for (std::size_t j = 0; j < measured.size() && static_cast<Eigen::Index>(j) < mem.d1.size(); ++j) {
    const auto jj = static_cast<Eigen::Index>(j);
    c.nn_dist(measured[j]) = mem.d1(jj);
    c.nn_ratio(measured[j]) = mem.ratio(jj);
    c.memorized[static_cast<std::size_t>(measured[j])] = mem.memorized(jj) ? 1 : 0;
  }
  return c;
}

/// Adds the columns nn_dist, nn_ratio and memorized (1 or 0) of @p c, which must outlive
/// @p table.
inline sample_table& add_memorization_columns(sample_table& table, const memorization_columns& c) {
  table.column("nn_dist", [&c](std::ostream& o, Eigen::Index i) { o << c.nn_dist(i); });
  table.column("nn_ratio", [&c](std::ostream& o, Eigen::Index i) { o << c.nn_ratio(i); });
  return table.column("memorized", [&c](std::ostream& o, Eigen::Index i) {
    o << (c.memorized[static_cast<std::size_t>(i)] ? 1 : 0);
  });
}

/// The memorization of every sample of @p X against the training set of @p ref (which
/// must have 2 points or more), without the bootstrap: samples with non-finite
/// coordinates get NaN distances.
template <class Derived>
[[nodiscard]] memorization_columns memorization_per_sample(const Eigen::MatrixBase<Derived>& X,
                                                           const references& ref) {
  const std::vector<Eigen::Index> ok = finite_samples(X);
  kinflow::memorization_result mem;
  if (!ok.empty()) {
    kinflow::memorization_options o;
    o.bootstrap_resamples = 0;
    mem = kinflow::memorization(X(Eigen::all, ok).template cast<double>(), *ref.train_index, o);
  }
  return spread(mem, ok, X.cols());
}

/// How summarize() measures.
struct summary_options {
  std::uint64_t seed = 0;                        ///< seed of the bootstrap CI of F_mem
  kinflow::sliced_wasserstein_options sliced{};  ///< directions of the sliced W2
  std::size_t min_samples = 1;                   ///< fewer finite samples: nothing measured
};

/// A run's summary over its finite samples (NaN where not measured).
struct sample_summary {
  std::vector<Eigen::Index> finite;     ///< the columns measured, in order
  long not_finite = 0;                  ///< samples left out
  double kpe_mean = std::numeric_limits<double>::quiet_NaN();       ///< mean KPE
  double kpe_early_mean = std::numeric_limits<double>::quiet_NaN(); ///< mean KPE on [0, τ]
  double kpe_late_mean = std::numeric_limits<double>::quiet_NaN();  ///< mean KPE on [τ, 1]
  bool has_memorization = false;        ///< memorization measured (mem, f_mem, nn_train_mean)
  kinflow::memorization_result mem;     ///< per finite sample, in the order of finite
  double f_mem = std::numeric_limits<double>::quiet_NaN();          ///< F_mem
  double f_mem_lo = std::numeric_limits<double>::quiet_NaN();       ///< lower end of its 95% CI
  double f_mem_hi = std::numeric_limits<double>::quiet_NaN();       ///< upper end of its 95% CI
  double nn_train_mean = std::numeric_limits<double>::quiet_NaN();  ///< mean d1 to the training set
  bool has_heldout = false;             ///< held-out metrics measured
  double nn_heldout_mean = std::numeric_limits<double>::quiet_NaN();///< mean distance to held-out data
  double sliced_w2 = std::numeric_limits<double>::quiet_NaN();      ///< sliced W2 to held-out data
};

/// Summarizes the samples @p X of the solve @p r: the finite-sample filter, the mean
/// energies, memorization against the training set (with 2 points or more) and the
/// distances to held-out data (when there is any), all over the finite samples.
template <class Derived, class Scalar>
[[nodiscard]] sample_summary summarize(const Eigen::MatrixBase<Derived>& X, const kinflow::solve_result<Scalar>& r,
                                       const references& ref, const summary_options& o = {}) {
  sample_summary m;
  m.finite = finite_samples(X, r.kpe.total);
  m.not_finite = static_cast<long>(X.cols()) - static_cast<long>(m.finite.size());
  if (m.finite.empty() || m.finite.size() < o.min_samples) {
    m.finite.clear();
    return m;
  }
  const Eigen::MatrixXd Xf = X(Eigen::all, m.finite).template cast<double>();
  // (gathered into vectors first: their means are then summed in the same order for
  // every caller)
  const Eigen::VectorXd e = r.kpe.total(m.finite).template cast<double>();
  const Eigen::VectorXd ee = r.kpe.early(m.finite).template cast<double>();
  const Eigen::VectorXd el = r.kpe.late(m.finite).template cast<double>();
  m.kpe_mean = e.mean(), m.kpe_early_mean = ee.mean(), m.kpe_late_mean = el.mean();
  if (ref.has_memorization()) {
    kinflow::memorization_options mo;
    mo.seed = o.seed;
    m.mem = kinflow::memorization(Xf, *ref.train_index, mo);
    m.has_memorization = true;
    m.f_mem = m.mem.fraction, m.f_mem_lo = m.mem.ci_low, m.f_mem_hi = m.mem.ci_high;
    m.nn_train_mean = m.mem.d1.mean();
  }
  if (ref.has_heldout()) {
    m.has_heldout = true;
    m.nn_heldout_mean = ref.heldout_index->nearest_distance(Xf).mean();
    m.sliced_w2 = kinflow::sliced_wasserstein2(Xf, ref.heldout, o.sliced);
  }
  return m;
}

/// The rule of memorization_options @p o as summaries print it: `d1/d2 < 1/3`.
[[nodiscard]] inline std::string memorization_rule(const kinflow::memorization_options& o = {}) {
  return "d1/d2 < " + (o.ratio_threshold == 1.0 / 3.0 ? std::string("1/3") : number_text(o.ratio_threshold));
}

/// The @p q-quantile of @p v with linear interpolation between order statistics (numpy's
/// default); 0 for an empty @p v.
[[nodiscard]] inline double quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const auto hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

}  // namespace kinflow_cli
