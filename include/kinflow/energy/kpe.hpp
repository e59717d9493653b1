#pragma once
/// @file
/// @brief Kinetic Path Energy (KPE): `E = ½ ∫ ‖ṽ(x(t), t)‖² dt` per sample, accumulated
/// beside the state from the stage velocities the integrator already computed.
///
/// `ṽ` is the velocity actually integrated (with Kinetic Trajectory Shaping, `η(t)·v`).
/// The norm is the plain Euclidean norm over all d coordinates.
///
/// Two quadratures:
///  - kpe_quadrature::stage (default): the integrator itself applied to the augmented
///    system `(x, E)` with `E' = ½‖ṽ‖²`, i.e. `E += |h| Σ_j b_j ½‖k_j‖²`. Zero extra field
///    evaluations and the integrator's order of accuracy.
///  - kpe_quadrature::left_riemann: `E += ½ |h| ‖ṽ(x_n, t_n)‖²` from the first stage only,
///    as the paper's reference script does (first order).
///
/// Early/late split: a step over `[t_n, t_{n+1}]` counts as early when its lower end
/// `min(t_n, t_{n+1}) < τ`. Integrating forward that is its start time; on a uniform grid
/// with integer τN it equals the reference split `n < floor(τN)`. τ is the caller's
/// `kpe_options::tau` when set; otherwise the field's own switch time when it has one (a
/// field shaped by a KTS gain: the gain's τ, see kinflow/fields/shaped.hpp), else 0.6,
/// the paper's split.

#include <Eigen/Core>
#include <array>
#include <cmath>
#include <cstddef>
#include <optional>

#include "kinflow/core/batch.hpp"
#include "kinflow/core/concepts.hpp"
#include "kinflow/core/errors.hpp"

namespace kinflow {

/// The early/late split of the paper (τ = 0.6), used when neither the caller nor the
/// field names another.
inline constexpr double default_kpe_tau = 0.6;

/// Quadrature used for the kinetic path energy.
enum class kpe_quadrature {
  stage,        ///< stage-consistent (the integrator's own weights), the default
  left_riemann  ///< first stage only, as the paper's reference script
};

/// Which per-step energy profile to record.
enum class kpe_profile {
  none,        ///< no profile
  per_sample,  ///< B x N matrix: column n holds each sample's energy increment of step n
  batch_mean   ///< N x 1 vector: the batch mean of the increments of each step
};

/// Options of the kinetic path energy accumulator.
struct kpe_options {
  bool enabled = true;                              ///< accumulate KPE at all
  kpe_quadrature quadrature = kpe_quadrature::stage;  ///< quadrature rule
  /// Early/late split: a step is early when its lower end is < tau. Unset (the default):
  /// the field's switch time when it has one (kinflow::field_with_switch_time), else
  /// kinflow::default_kpe_tau.
  std::optional<double> tau{};
  kpe_profile profile = kpe_profile::none;  ///< per-step profile (fixed-step integration only)
  /// Adaptive integration only: include the energy in the error norm, so step sizes
  /// also control the energy's local error.
  bool in_error_norm = false;
};

/// Per-sample kinetic path energies of one solve.
template <class Scalar>
struct kinetic_energy {
  per_sample<Scalar> total;  ///< `E = ½ ∫ ‖ṽ‖² dt`
  per_sample<Scalar> early;  ///< contribution of the early steps (lower end < τ)
  per_sample<Scalar> late;   ///< contribution of the late steps; `total = early + late`
  /// Per-step increments: B x N (kpe_profile::per_sample), N x 1 (batch_mean), or empty.
  Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> profile;
  double tau = default_kpe_tau;  ///< the split used
};

namespace detail {

/// The one early/late rule of every solve: a step over `[t0, t1]` (either direction)
/// counts as early when its lower end is below τ.
template <class T>
[[nodiscard]] constexpr bool kpe_step_is_early(T t0, T t1, double tau) noexcept {
  return static_cast<double>(t0 < t1 ? t0 : t1) < tau;
}

/// The weight of stage j's `½‖k_j‖²` in a step's energy, per unit of `|h|`: the method's
/// own `b_j` (kpe_quadrature::stage), or 1 for the first stage and 0 for the others
/// (kpe_quadrature::left_riemann). Every kernel and driver takes its weights from here.
template <std::size_t S>
[[nodiscard]] constexpr long double kpe_stage_weight(const std::array<long double, S>& b, std::size_t j,
                                                     bool left_riemann) noexcept {
  return left_riemann ? (j == 0 ? 1.0L : 0.0L) : b[j];
}

inline void validate_kpe_options(const kpe_options& o) {
  if (o.tau) require(std::isfinite(*o.tau), "kpe.tau", *o.tau, "expected a finite time");
}

/// The split time of a solve of `field`: the caller's, else the field's switch time, else
/// default_kpe_tau.
template <class Field>
double resolve_kpe_tau(const kpe_options& o, const Field& field) {
  if (o.tau) return *o.tau;
  if constexpr (field_with_switch_time<Field>) {
    if (const std::optional<double> s = field.switch_time()) return *s;
  }
  return default_kpe_tau;
}

/// Collects KPE for a fixed-step solve of a batch: the integrator computes each step's
/// increments (kinflow/integrators/quadrature.hpp) and commits them per step and block of
/// columns (it may walk the batch in column tiles); this splits them early/late and keeps
/// the profile.
template <class Scalar>
class kpe_accumulator {
public:
  /// Accumulates for `samples` columns over `steps` steps, splitting at `tau`.
  kpe_accumulator(const kpe_options& opt, double tau, Eigen::Index samples, std::size_t steps)
      : opt_(opt), tau_(tau) {
    validate_kpe_options(opt);
    if (!opt_.enabled) return;
    samples_ = samples;
    result_.tau = tau;
    result_.total.setZero(samples);
    result_.early.setZero(samples);
    result_.late.setZero(samples);
    increment_.setZero(samples);
    const auto n = static_cast<Eigen::Index>(steps);
    if (opt_.profile == kpe_profile::per_sample) result_.profile.setZero(samples, n);
    if (opt_.profile == kpe_profile::batch_mean) result_.profile.setZero(n, 1);
  }

  [[nodiscard]] bool enabled() const noexcept { return opt_.enabled; }
  /// The quadrature rule.
  [[nodiscard]] kpe_quadrature quadrature() const noexcept { return opt_.quadrature; }

  /// Scratch vector for callers that compute the increments themselves (entry i for
  /// column first + i), followed by commit().
  [[nodiscard]] per_sample<Scalar>& increments() noexcept { return increment_; }

  /// Adds the increments of step n over `[t0, t1]` for `cols` columns from `first`.
  void commit(std::size_t n, Scalar t0, Scalar t1, Eigen::Index first, Eigen::Index cols) {
    if (!opt_.enabled) return;
    auto inc = increment_.head(cols);
    phase(t0, t1).segment(first, cols) += inc;
    const auto step = static_cast<Eigen::Index>(n);
    if (opt_.profile == kpe_profile::per_sample) result_.profile.col(step).segment(first, cols) = inc;
    if (opt_.profile == kpe_profile::batch_mean && samples_ > 0)
      result_.profile(step, 0) += inc.sum() / static_cast<Scalar>(samples_);
  }

  /// True when the increments must go through increments()/commit() (a profile is
  /// recorded); otherwise callers may add them straight into phase().
  [[nodiscard]] bool wants_increments() const noexcept { return opt_.profile != kpe_profile::none; }

  /// The vector a step over `[t0, t1]` adds to: the early or the late energies. (The
  /// total is formed once at the end, so each step touches one vector.)
  [[nodiscard]] per_sample<Scalar>& phase(Scalar t0, Scalar t1) noexcept {
    return kpe_step_is_early(t0, t1, tau_) ? result_.early : result_.late;
  }

  /// The early energies so far (kernels that split the steps themselves add to these).
  [[nodiscard]] per_sample<Scalar>& early_values() noexcept { return result_.early; }
  /// The late energies so far.
  [[nodiscard]] per_sample<Scalar>& late_values() noexcept { return result_.late; }

  /// The energies: `total = early + late`.
  [[nodiscard]] kinetic_energy<Scalar>& result() noexcept {
    if (opt_.enabled) result_.total = result_.early + result_.late;
    return result_;
  }

private:
  kpe_options opt_;
  double tau_;
  Eigen::Index samples_ = 0;
  kinetic_energy<Scalar> result_;
  per_sample<Scalar> increment_;
};

}  // namespace detail
}  // namespace kinflow
