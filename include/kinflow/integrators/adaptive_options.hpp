#pragma once
/// @file
/// @brief Options of adaptive integration and what its observers see (kinflow/integrators/adaptive.hpp).

#include <Eigen/Core>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "kinflow/core/batch.hpp"
#include "kinflow/core/errors.hpp"
#include "kinflow/energy/kpe.hpp"
#include "kinflow/integrators/controller.hpp"
#include "kinflow/integrators/likelihood.hpp"
#include "kinflow/integrators/progress.hpp"
#include "kinflow/integrators/tableau.hpp"

namespace kinflow {

/// Options of adaptive integration. Defaults follow the reference sampler's RK45 path.
struct adaptive_options {
  double rtol = 1e-5;  ///< relative tolerance, > 0
  double atol = 1e-5;  ///< absolute tolerance, >= 0
  /// Smallest step; a sample whose step falls below it stops with dt_underflow.
  /// 0 means automatic: 16 ulps of the current time.
  double dt_min = 0;
  double dt_max = std::numeric_limits<double>::infinity();  ///< largest step, > 0
  double dt_initial = 0;  ///< first step; 0 means Hairer's heuristic per sample
  std::int64_t max_steps = 100000;  ///< attempted (accepted + rejected) steps per sample
  /// Times strictly between t0 and t1 where every sample's step must end exactly, so that
  /// steps never straddle a kink of the field. A field's own switch time (the τ of a
  /// shaped field, kinflow::field_with_switch_time) is added to these by itself.
  /// Times outside (t0, t1) are ignored; order does not matter.
  std::vector<double> breakpoints{};
  /// Safety factor of the default I controller, in (0, 1]. A controller passed to
  /// integrate_adaptive explicitly carries its own.
  double safety = 0.9;
  double factor_min = 0.2;          ///< smallest step-size ratio of the default I controller, in (0, 1)
  double factor_max = 10.0;         ///< largest step-size ratio of the default I controller, > 1
  kpe_options kpe{};                ///< kinetic path energy (profiles are fixed-step only)
  /// The log-likelihood of every sample (kinflow/integrators/likelihood.hpp), off by default.
  likelihood_options likelihood{};
  /// Called with the share of the work done after every step of the batch
  /// (kinflow/integrators/progress.hpp); a callback that throws stops the solve.
  progress_callback progress{};
};

/// What an observer of an adaptive solve sees after each accepted step of one sample.
template <class Scalar, int Dim, std::size_t S>
struct adaptive_step_view {
  Eigen::Index sample;  ///< the sample's column in the batch
  Scalar t;             ///< start of the step
  Scalar dt;            ///< signed step size
  const batch<Scalar, Dim>& state;               ///< the whole batch (this sample updated)
  const std::array<batch<Scalar, Dim>, S>& stages;  ///< stage velocities of unfinished samples
  Eigen::Index column;                           ///< this sample's column within `stages`
  const embedded_tableau<S>& method;             ///< the method (weights `b`, nodes `c`)

  /// The sample's state after the step.
  [[nodiscard]] auto x() const { return state.col(sample); }
  /// The sample's stage velocity `k_j` of this step.
  [[nodiscard]] auto k(std::size_t j) const { return stages[j].col(column); }
};

namespace detail {

inline void validate(const adaptive_options& o) {
  require(std::isfinite(o.rtol) && o.rtol > 0, "rtol", o.rtol, "expected a finite value > 0");
  require(std::isfinite(o.atol) && o.atol >= 0, "atol", o.atol, "expected a finite value >= 0");
  require(std::isfinite(o.dt_min) && o.dt_min >= 0, "dt_min", o.dt_min, "expected a finite value >= 0");
  require(o.dt_max > 0 && o.dt_max > o.dt_min, "dt_max", o.dt_max, "expected a value > 0 and > dt_min");
  require(std::isfinite(o.dt_initial) && o.dt_initial >= 0, "dt_initial", o.dt_initial,
          "expected a finite value >= 0 (0 selects the automatic initial step)");
  require(o.max_steps >= 1, "max_steps", o.max_steps, "expected at least 1");
  i_controller{o.safety, o.factor_min, o.factor_max}.validate();
  for (std::size_t i = 0; i < o.breakpoints.size(); ++i)
    require(std::isfinite(o.breakpoints[i]), "breakpoints[" + std::to_string(i) + "]",
            o.breakpoints[i], "expected a finite time");
  validate_kpe_options(o.kpe);
  require(o.kpe.profile == kpe_profile::none, "kpe.profile", "per-step profile",
          "expected kpe_profile::none: per-step profiles exist for fixed-step integration only");
}

}  // namespace detail
}  // namespace kinflow
