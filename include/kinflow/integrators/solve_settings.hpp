#pragma once
/// @file
/// @brief A solve described by value -- the method by name, its grid, the energy, likelihood
/// and stochastic options -- and kinflow::solve_with, which runs it.
///
/// This is the one mapping from such settings onto kinflow::integrate and
/// kinflow::integrate_adaptive that the kinflow-sample program and the Python package share,
/// so that the same settings give the same numbers in both. Each front end parses and
/// checks its own spelling of the settings (flags, keyword arguments) and fills a
/// solve_settings; solve_with picks the method, builds the grid (a pilot grid from a pilot
/// run), sets the options and runs the solve with the caller's integrals and observer.
///
/// @code
///   kinflow::solve_settings s;
///   s.method = "dpmpp2m";
///   s.steps = 20;
///   s.grid = kinflow::parse_grid_spec("cosine");
///   auto out = kinflow::solve_with(field, s, X, kinflow::along());
///   out.result.kpe.total;   // per sample
/// @endcode

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <Eigen/Core>

#include "kinflow/core/batch.hpp"
#include "kinflow/core/errors.hpp"
#include "kinflow/integrators/adaptive.hpp"
#include "kinflow/integrators/explicit_rk.hpp"
#include "kinflow/integrators/methods.hpp"
#include "kinflow/integrators/multistep.hpp"
#include "kinflow/integrators/pilot_grid.hpp"
#include "kinflow/integrators/stochastic.hpp"
#include "kinflow/schedules/grid_spec.hpp"

namespace kinflow {

/// The last-step rule by name: "method" or "none" (the method's own step), "euler", or
/// "denoise" or "mean" (the jump to t = 1).
/// @throws kinflow::invalid_argument naming @p param and the names otherwise.
[[nodiscard]] inline last_step_rule parse_last_step_rule(std::string_view name, std::string_view param = "last_step") {
  if (name == "method" || name == "none") return last_step_rule::method;
  if (name == "euler") return last_step_rule::euler;
  if (name == "denoise" || name == "mean") return last_step_rule::denoise;
  throw invalid_argument(detail::invalid_message(param, "'" + std::string(name) + "'",
                                                 "expected 'method' (or 'none'), 'euler' or 'denoise' (or 'mean')"));
}

/// A multistep method's start by name: "lower" (lower order while the history is short) or
/// "rk" (Runge–Kutta steps of its order).
/// @throws kinflow::invalid_argument naming @p param otherwise.
[[nodiscard]] inline multistep_start parse_multistep_start(std::string_view name, std::string_view param = "start") {
  if (name == "lower") return multistep_start::lower_order;
  if (name == "rk") return multistep_start::runge_kutta;
  throw invalid_argument(detail::invalid_message(
      param, "'" + std::string(name) + "'", "expected 'lower' (as published) or 'rk' (Runge-Kutta start steps)"));
}

/// The energy's quadrature by name: "stage" (the integrator's stages) or "left" (the left
/// Riemann sum).
/// @throws kinflow::invalid_argument naming @p param otherwise.
[[nodiscard]] inline kpe_quadrature parse_kpe_quadrature(std::string_view name, std::string_view param = "kpe") {
  if (name == "stage") return kpe_quadrature::stage;
  if (name == "left") return kpe_quadrature::left_riemann;
  throw invalid_argument(detail::invalid_message(
      param, "'" + std::string(name) + "'",
      "expected 'stage' (the integrator's stages) or 'left' (left Riemann sum)"));
}

/// The likelihood's divergence by name: "auto" (exact where the field has it, else
/// Hutchinson's estimate), "exact" or "hutchinson".
/// @throws kinflow::invalid_argument naming @p param otherwise.
[[nodiscard]] inline divergence_method parse_divergence_method(std::string_view name,
                                                               std::string_view param = "divergence") {
  if (name == "auto") return divergence_method::automatic;
  if (name == "exact") return divergence_method::exact;
  if (name == "hutchinson") return divergence_method::hutchinson;
  throw invalid_argument(detail::invalid_message(
      param, "'" + std::string(name) + "'",
      "expected 'auto' (exact when the field has it, else Hutchinson's estimate), 'exact' or 'hutchinson'"));
}

/// Every setting of one solve, by value (see the file comment). The defaults are a
/// 100-step uniform Euler solve from 0 to 1 with the energy split at 0.6.
struct solve_settings {
  /// The method: a fixed-grid (kinflow::fixed_step_method_names, multistep_method_names),
  /// adaptive (adaptive_method_names) or stochastic (kinflow::stochastic_method_names) name.
  std::string method = "euler";
  /// The named grid of the fixed-grid and stochastic methods.
  grid_spec grid{};
  /// The named grid's steps.
  std::size_t steps = 100;
  /// Or the grid's times themselves (then `grid` and `steps` are unused): increasing, or
  /// decreasing for a backward solve.
  std::vector<double> times{};
  /// Pilot grids (grid_spec::needs_pilot): the pilot runs on the first this many samples
  /// of the batch, unless solve_with is given the pilot samples.
  Eigen::Index pilot_columns = 256;
  /// The energy's split into early and late. Unset: the switch time of a field shaped by a
  /// gain that is not the identity (kinflow::shaped), else kinflow::default_kpe_tau. Adaptive
  /// steps end there too, so that the parts are exactly the energy of each side.
  std::optional<double> tau{};
  kpe_quadrature quadrature = kpe_quadrature::stage;  ///< the energy's quadrature
  kpe_profile profile = kpe_profile::none;            ///< the per-step energy (fixed grids)
  likelihood_options likelihood{};                    ///< the log-likelihood beside the state
  last_step_rule last_step = last_step_rule::method;  ///< fixed grids' last step
  multistep_start start = multistep_start::lower_order;  ///< multistep methods' first steps
  double rtol = 1e-5;  ///< adaptive methods' relative tolerance
  double atol = 1e-5;  ///< adaptive methods' absolute tolerance
  double t0 = 0;       ///< adaptive methods' start (the span may run either way)
  double t1 = 1;       ///< adaptive methods' end
  /// The stochastic methods' own options (diffusion, noise seed, last-step size, churn,
  /// first sample); solve_with sets their energy, likelihood, last-step and progress
  /// members from the settings above.
  stochastic_options stochastic{};
  progress_callback progress{};  ///< called with the share of the work done

  /// True when `method` names an adaptive method.
  [[nodiscard]] bool adaptive() const { return is_adaptive_method(method); }
  /// True when `method` names a stochastic method.
  [[nodiscard]] bool stochastic_method() const { return is_stochastic_method(method); }
};

/// What kinflow::solve_with returns.
template <class Scalar>
struct solve_settings_result {
  /// The solve's result; the drift and control energies are those of a stochastic method
  /// (empty otherwise).
  stochastic_result<Scalar> result;
  /// The times a fixed-grid or stochastic solve walked (with a stochastic last-step size H:
  /// the grid mapped onto [t_0, 1 − H], then 1); empty for an adaptive solve.
  std::vector<double> times;
};

namespace detail {

/// The energy and likelihood options every solve shares, from @p s for @p field.
template <class Field, class Options>
void set_solve_options(const Field& field, const solve_settings& s, Options& opt) {
  bool field_splits = false;  // a shaped field with a gain names its own split
  if constexpr (requires { field.gain().is_identity(); }) field_splits = !field.gain().is_identity();
  if (s.tau || !field_splits) {  // else the solve resolves the field's switch time itself
    const double tau = s.tau.value_or(default_kpe_tau);
    opt.kpe.tau = tau;
    if constexpr (requires { opt.breakpoints; })
      if (tau > 0 && tau < 1) opt.breakpoints = {tau};
  }
  opt.kpe.quadrature = s.quadrature;
  opt.kpe.profile = s.profile;
  opt.likelihood = s.likelihood;
  opt.progress = s.progress;
}

}  // namespace detail

/// Runs the solve @p s describes on @p field from the batch @p X (overwritten by the final
/// states), carrying @p integrals (a kinflow::along bundle, possibly empty) and, when
/// @p observer is not null, calling it after every step (fixed-grid, multistep and
/// stochastic views; the accepted steps' adaptive views too when it takes them). Without an
/// observer a fixed grid may be integrated in cache-sized tiles. @p pilot: the samples of a
/// pilot grid's pilot run (null: the first settings.pilot_columns columns of X).
/// Each method is compiled once per field, integrals and observer type, whatever the name.
/// @throws kinflow::invalid_argument for an unknown method (naming "method") and whatever
///         the grid builders and solves throw for invalid settings.
template <class Field, class Scalar, int Dim, class Integrals, class Observer = no_observer>
solve_settings_result<Scalar> solve_with(Field& field, const solve_settings& s, batch<Scalar, Dim>& X,
                                         const Integrals& integrals, Observer* observer = nullptr,
                                         const batch<Scalar, Dim>* pilot = nullptr) {
  constexpr bool observing = !std::is_same_v<Observer, no_observer>;
  solve_settings_result<Scalar> out;
  auto grid_for = [&](const auto& method) {
    if (!s.times.empty()) return time_grid<double>(s.times);
    if (!s.grid.needs_pilot()) return make_grid<double>(s.grid, s.steps);
    const batch<Scalar, Dim> first = X.leftCols(std::min<Eigen::Index>(X.cols(), s.pilot_columns));
    return make_grid(s.grid, s.steps, field, method, pilot != nullptr ? *pilot : first);
  };
  auto fixed = [&](const auto& method) {
    const time_grid<double> grid = grid_for(method);
    out.times = grid.times();
    fixed_step_options opt;
    detail::set_solve_options(field, s, opt);
    opt.last_step = s.last_step;
    opt.start = s.start;
    auto& result = static_cast<solve_result<Scalar>&>(out.result);
    if constexpr (observing)
      if (observer != nullptr) {
        result = integrate(field, method, grid, X, opt, integrals, *observer);
        return;
      }
    result = integrate(field, method, grid, X, opt, integrals);
  };
  auto adaptive = [&](const auto& method) {
    adaptive_options opt;
    opt.rtol = s.rtol;
    opt.atol = s.atol;
    detail::set_solve_options(field, s, opt);
    using view = adaptive_step_view<Scalar, Dim, std::remove_cvref_t<decltype(method)>::stages>;
    auto& result = static_cast<solve_result<Scalar>&>(out.result);
    if constexpr (observing && std::invocable<Observer&, const view&>) {
      // One compiled solve whether or not an observer is given: a relay that skips a null one.
      auto relay = [observer](const view& v) {
        if (observer != nullptr) (*observer)(v);
      };
      result = integrate_adaptive(field, method, s.t0, s.t1, X, opt, integrals, relay);
    } else {
      result = integrate_adaptive(field, method, s.t0, s.t1, X, opt, integrals);
    }
  };
  if (s.stochastic_method()) {
    const stochastic_method method = stochastic_method_by_name(s.method, "method");
    const time_grid<double> grid = grid_for(euler);  // pilot grids: an Euler pilot of the ODE
    stochastic_options opt = s.stochastic;
    detail::set_solve_options(field, s, opt);
    opt.last_step = s.last_step;
    out.times = grid.times();
    if (opt.last_step_size) {  // the grid mapped onto [t0, 1 − H], then one step to 1
      const double H = *opt.last_step_size, a = grid[0], b = grid[grid.steps()];
      for (double& t : out.times) t = a + (t - a) * (1 - H - a) / (b - a);
      out.times.back() = 1 - H;
      out.times.push_back(1);
    }
    if constexpr (observing)
      if (observer != nullptr) {
        out.result = integrate(field, method, grid, X, opt, integrals, *observer);
        return out;
      }
    out.result = integrate(field, method, grid, X, opt, integrals);
    return out;
  }
  visit_method(s.method, fixed, adaptive, "method");
  return out;
}

}  // namespace kinflow
