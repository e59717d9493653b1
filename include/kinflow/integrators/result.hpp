#pragma once
/// @file
/// @brief What a solve returns: per-sample status, counters and kinetic energies.

#include <Eigen/Core>
#include <algorithm>
#include <cstdint>
#include <string_view>
#include <vector>

#include "kinflow/energy/kpe.hpp"

namespace kinflow {

/// Outcome of one sample's solve. Trouble is reported here, never by aborting the batch.
enum class solve_status : std::uint8_t {
  success,            ///< reached the final time with finite state
  max_steps_reached,  ///< adaptive: gave up after `max_steps` attempted steps
  dt_underflow,       ///< adaptive: the step size fell below `dt_min`
  non_finite          ///< the state (or its velocity) became NaN/Inf, or started so
};

/// Name of a status, e.g. "success".
[[nodiscard]] constexpr std::string_view to_string(solve_status s) noexcept {
  switch (s) {
    case solve_status::success: return "success";
    case solve_status::max_steps_reached: return "max_steps_reached";
    case solve_status::dt_underflow: return "dt_underflow";
    case solve_status::non_finite: return "non_finite";
  }
  return "unknown";
}

/// The default observer of a solve: observes nothing, costs nothing.
struct no_observer {};

/// Per-sample counters (one entry per column of the batch).
using sample_counts = Eigen::Matrix<std::int64_t, Eigen::Dynamic, 1>;

/// Result of integrating a batch: the state itself is updated in place; this holds,
/// per sample, the status, the counters and the kinetic path energy.
template <class Scalar>
struct solve_result {
  std::vector<solve_status> status;  ///< per-sample outcome
  sample_counts nfe;                 ///< field evaluations spent on each sample
  sample_counts accepted;            ///< accepted steps per sample
  sample_counts rejected;            ///< rejected steps per sample (0 for fixed-step methods)
  kinetic_energy<Scalar> kpe;        ///< energies (empty vectors when KPE is disabled)
  /// Per-sample model log-likelihood `log p₁(x(1))` (natural log) when asked for
  /// (`options.likelihood.enabled`), else empty. See kinflow/integrators/likelihood.hpp.
  per_sample<Scalar> log_likelihood;
  /// The integrals of kinflow::along's integrands, in the order given (one entry per
  /// sample each): `∫_{t0}^{t1} g dt` along each sample's path.
  std::vector<per_sample<Scalar>> integrals;

  /// True when every sample reached the final time.
  [[nodiscard]] bool all_success() const {
    return std::all_of(status.begin(), status.end(),
                       [](solve_status s) { return s == solve_status::success; });
  }
  /// Number of samples with status @p s.
  [[nodiscard]] std::size_t count(solve_status s) const {
    return static_cast<std::size_t>(std::count(status.begin(), status.end(), s));
  }
};

}  // namespace kinflow
