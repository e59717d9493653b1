#pragma once
/// @file
/// @brief Private: the solve core every front door shares — fixed grids (Runge–Kutta,
/// multistep, stochastic) and per-sample adaptive steps alike.
///
/// What a solve needs besides its step loop: the field's evaluator and a reference to it of
/// one type whatever the field (kinflow/detail/batch_callable.hpp), the integrals carried
/// beside the state (the kinetic path energy, the log-likelihood with its divergence, a
/// user's own: kinflow/integrators/quadrature.hpp), and the end: counters, statuses, the
/// energy, the integrals and the likelihood in the result. The step loops reach it through
/// solve_sums, which does not depend on the field, so they are compiled once per scalar
/// type, dimension and method.

#include <Eigen/Core>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>

#include "kinflow/core/batch.hpp"
#include "kinflow/core/concepts.hpp"
#include "kinflow/core/field_evaluator.hpp"
#include "kinflow/detail/batch_callable.hpp"
#include "kinflow/energy/kpe.hpp"
#include "kinflow/integrators/likelihood.hpp"
#include "kinflow/integrators/quadrature.hpp"
#include "kinflow/integrators/result.hpp"

namespace kinflow::detail {

/// The energy settings of the accumulator: those of the solve on a fixed grid, off where
/// every sample takes its own steps (the energy channel carries the sums there).
[[nodiscard]] inline kpe_options accumulated_energy(const kpe_options& o, bool fixed_grid) {
  kpe_options a = o;
  if (!fixed_grid) a.enabled = false;
  return a;
}

/// What the step loops add to: the energy accumulator (fixed grids: the energy per step and
/// column block), the channels (energy, likelihood, the user's integrals) and the
/// evaluations the integrands cost. Of one type whatever the field, so that the loops are
/// compiled once for all fields.
template <class Scalar, int Dim, class Integrals>
struct solve_sums {
  using channels_type = decltype(make_channels<Scalar, divergence_integrand<Scalar, Dim>>(
      std::declval<const kpe_options&>(), 0.0, std::declval<const Integrals&>()));

  /// `steps` is the number of steps of a fixed grid; 0 for a solve whose samples take
  /// their own steps, where the energy channel alone carries the energy.
  solve_sums(const kpe_options& o, double tau, Eigen::Index samples, std::size_t steps, const Integrals& integrals)
      : kpe(accumulated_energy(o, steps > 0), tau, samples, steps),
        channels(make_channels<Scalar, divergence_integrand<Scalar, Dim>>(o, tau, integrals)) {}

  kpe_accumulator<Scalar> kpe;  ///< fixed grids: the energies, per step and column block
  channels_type channels;       ///< the energy's, the likelihood's and the user's integrals
  std::int64_t extra_nfe = 0;   ///< evaluations the integrands cost each sample (the same for all)
};

/// The `steps` of a solve_core whose samples take their own steps (adaptive solves).
inline constexpr std::size_t per_sample_steps = static_cast<std::size_t>(-1);

/// The setup and the end of a solve from `t0` to `t1`, shared by every front door: the
/// field's evaluator and its batched reference, the sums the step loops add to, the
/// likelihood's divergence, and the result with counters and statuses. `steps` is the
/// number of steps of a fixed grid, or detail::per_sample_steps for an adaptive solve.
template <class Field, class Scalar, int Dim, class Integrals>
class solve_core : public solve_sums<Scalar, Dim, Integrals> {
  using sums_type = solve_sums<Scalar, Dim, Integrals>;

public:
  using sums_type::channels;
  using sums_type::extra_nfe;
  using sums_type::kpe;

  solve_core(Field& field, double t0, double t1, std::size_t steps, const batch<Scalar, Dim>& X,
             const kpe_options& energy, const likelihood_options& likelihood_settings, const Integrals& integrals)
      : sums_type(energy, resolve_kpe_tau(energy, field), X.cols(),
                  steps == per_sample_steps ? 0 : steps, integrals),
        evaluator_(field, X.rows()),
        tau_(resolve_kpe_tau(energy, field)),
        forward_(t1 > t0) {
    if constexpr (field_with_switch_time<Field>) switch_time_ = std::as_const(field).switch_time();
    auto& likelihood = std::get<1>(channels);
    if (likelihood_settings.enabled) {
      require_likelihood_span(t0, t1);
      enable_likelihood(likelihood, divergence_, field, X.rows(), likelihood_settings);
      if (forward_) log_n0_ = standard_normal_log_density(X);
    }
    // The running integrals of the channels carried (the energy's are the accumulator's):
    // per-sample arrays are allocated only where they are used, as each costs page faults.
    bool energy_channel = true;
    for_each_in(channels, [&](auto& c) {
      if (!std::exchange(energy_channel, false) && c.enabled) c.value.setZero(X.cols());
    });
  }

  /// The field, through a reference of one type whatever the field's: with the likelihood
  /// on and a field that computes velocity and divergence in one pass, the evaluation that
  /// keeps the divergence for the stage's integrand (detail::stage_velocity).
  [[nodiscard]] batched_velocity_ref<Scalar, Dim> velocity() noexcept {
    return stage_velocity(evaluator_, divergence_);
  }
  /// The part the step loops add to (of one type whatever the field).
  [[nodiscard]] sums_type& sums() noexcept { return *this; }
  /// The split time of the energy.
  [[nodiscard]] double tau() const noexcept { return tau_; }
  /// The field's own switch time (kinflow::field_with_switch_time), if it has one.
  [[nodiscard]] std::optional<double> switch_time() const noexcept { return switch_time_; }
  /// True when the log-likelihood is carried.
  [[nodiscard]] bool likelihood_enabled() const noexcept { return std::get<1>(channels).enabled; }

  /// The result of a fixed-grid solve that ended with state `X`, which cost `nfe`
  /// evaluations of the field per sample (the integrands' own evaluations, extra_nfe, are
  /// added here), over `steps` steps.
  solve_result<Scalar> finish(const batch<Scalar, Dim>& X, std::int64_t nfe, std::size_t steps) {
    const Eigen::Index B = X.cols();
    solve_result<Scalar> result;
    result.status.assign(static_cast<std::size_t>(B), solve_status::success);
    result.nfe.setConstant(B, nfe + extra_nfe);
    result.accepted.setConstant(B, static_cast<std::int64_t>(steps));
    result.rejected.setZero(B);
    if (kpe.enabled()) result.kpe = std::move(kpe.result());
    for_each_user_channel(channels, [&](auto& user) { result.integrals.push_back(std::move(user.value)); });
    finish_likelihood(X, result);
    for (Eigen::Index i = 0; i < B; ++i) {
      bool finite = X.col(i).allFinite();
      if (kpe.enabled()) finite = finite && std::isfinite(result.kpe.total(i));
      if (likelihood_enabled()) finite = finite && std::isfinite(result.log_likelihood(i));
      if (!finite) result.status[static_cast<std::size_t>(i)] = solve_status::non_finite;
    }
    return result;
  }

  /// The result of a solve whose samples took their own steps: `result` holds the loop's
  /// counters and statuses; the energy, the integrals and the likelihood come from the
  /// channels.
  solve_result<Scalar> finish(const batch<Scalar, Dim>& X, solve_result<Scalar>&& result) {
    finish_channels(channels, result);
    finish_likelihood(X, result);
    return std::move(result);
  }

private:
  void finish_likelihood(const batch<Scalar, Dim>& X, solve_result<Scalar>& result) const {
    if (likelihood_enabled()) detail::finish_likelihood(std::get<1>(channels), forward_, log_n0_, X, result);
  }

  field_evaluator<Field, Scalar, Dim> evaluator_;
  double tau_;
  bool forward_;
  std::optional<double> switch_time_;
  std::optional<divergence_evaluator<Field, Scalar, Dim>> divergence_;
  per_sample<Scalar> log_n0_;
};

}  // namespace kinflow::detail
