#pragma once
/// @file
/// @brief kinflow-sample's stochastic samplers (docs/cli.md): the options `--diffusion`,
/// `--diffusion-norm`, `--last-step-size`, `--noise-seed`, `--churn`, their checks, the
/// library options they make, and the energy columns and summary entries of a stochastic run.

#include <kinflow/integrators/stochastic.hpp>

#include <Eigen/Core>
#include <cstdint>
#include <string>

#include "command_line.hpp"
#include "output.hpp"

namespace kinflow_cli {

/// The stochastic samplers' settings of a command line.
struct stochastic_settings {
  std::string diffusion = "sbdm";  ///< a form, kinflow::parse_diffusion's text
  double norm = 1;                 ///< --diffusion-norm
  double last_step_size = 0;       ///< --last-step-size H (0: the grid's own last step)
  long noise_seed = -1;            ///< --noise-seed (-1: --seed's)
  double churn = 1;                ///< renoise-euler's η
  kinflow::diffusion_coefficient coefficient{};  ///< the parsed diffusion
};

/// True for the names of the stochastic solvers.
[[nodiscard]] inline bool is_stochastic(const std::string& solver) { return kinflow::is_stochastic_method(solver); }

/// Adds the stochastic samplers' options to @p cl (a section of their own).
inline void add_stochastic_options(command_line& cl, stochastic_settings& st) {
  cl.section("Stochastic samplers (--solver sde-euler, sde-heun, renoise-euler; docs/math.md section 11)")
      .value("--diffusion", "FORM",
             "w(t) = g(t)^2 / 2 of dx = [v + w grad log p] dt + g dW: " + join(kinflow::diffusion_form_names, " ") +
                 " (constant:G for w = G), SiT's forms",
             custom(
                 [&st](const std::string& flag, const std::string& v) {
                   try {
                     st.coefficient = kinflow::parse_diffusion(v, 1, flag);
                   } catch (const kinflow::invalid_argument& e) {
                     usage_error(std::string(e.what()).substr(std::string("kinflow: ").size()));
                   }
                   st.diffusion = v;
                 },
                 st.diffusion))
      .value("--diffusion-norm", "G", "multiplies the diffusion form (0: the ODE)",
             number(st.norm, at_least(0)))
      .value("--last-step-size", "H",
             "with --last-step mean or euler: the grid mapped onto [0, 1 - H] and one more step from 1 - H to 1 "
             "(SiT's last_step_size); default: the grid's own last step",
             number(st.last_step_size, interval{.lo = 0, .hi = 1, .lo_open = true, .hi_open = true}), "")
      .value("--noise-seed", "S", "seed of every sample's noise stream (default: --seed)",
             integer(st.noise_seed, 0), "")
      .value("--churn", "C", "renoise-euler: share of fresh noise in the re-noised part (1: diffusers' stochastic "
             "sampling, 0: Euler)",
             number(st.churn, closed(0, 1)));
}

/// The usage errors of the stochastic options: given without a stochastic solver, the
/// likelihood with one, a last-step size without a last-step rule, no rule for a
/// diffusion that does not vanish at t = 1 (the grids of kinflow-sample end there).
inline void check_stochastic(const command_line& cl, const stochastic_settings& st, const std::string& solver,
                             const std::string& last_step, bool likelihood) {
  const bool sde = is_stochastic(solver);
  for (const char* flag : {"--diffusion", "--diffusion-norm", "--last-step-size", "--noise-seed", "--churn"})
    if (cl.given(flag) && !sde)
      usage_error(std::string(flag) + " applies to the stochastic solvers (sde-euler sde-heun renoise-euler), not " +
                  solver);
  if (!sde) return;
  if (likelihood)
    usage_error("--likelihood: the log-likelihood is not defined for a stochastic solve (" + solver +
                "); use an ODE solver");
  if (cl.given("--last-step-size") && (last_step == "none" || last_step == "method"))
    usage_error("--last-step-size applies to --last-step mean or euler, not " + last_step);
  if ((cl.given("--diffusion") || cl.given("--diffusion-norm")) && solver == "renoise-euler")
    usage_error("--diffusion applies to sde-euler and sde-heun; renoise-euler's noise is set by --churn");
  kinflow::diffusion_coefficient d = st.coefficient;
  d.norm = st.norm;
  if (solver != "renoise-euler" && (last_step == "none" || last_step == "method") && !d.vanishes_at_end())
    usage_error("--last-step: expected mean or euler with --diffusion " + d.text() +
                ", which does not vanish at t = 1 where the score is singular");
}

/// The library's options of a stochastic solve from the command line's.
inline kinflow::stochastic_options stochastic_options_of(const stochastic_settings& st, long seed) {
  kinflow::stochastic_options o;
  o.diffusion = st.coefficient;
  o.diffusion.norm = st.norm;
  o.noise_seed = static_cast<std::uint64_t>(st.noise_seed >= 0 ? st.noise_seed : seed);
  if (st.last_step_size > 0) o.last_step_size = st.last_step_size;
  o.churn = st.churn;
  return o;
}

/// The drift and control energies of a stochastic run (empty for an ODE run).
template <class Scalar>
struct path_energies {
  kinflow::kinetic_energy<Scalar> drift, control;
  [[nodiscard]] bool present() const { return drift.total.size() > 0; }
};

/// Adds the columns drift_energy, drift_energy_early, drift_energy_late and the same for
/// control_energy, when @p e holds them.
template <class Scalar>
void add_path_energy_columns(sample_table& t, const path_energies<Scalar>& e) {
  if (!e.present()) return;
  t.column("drift_energy", [&e](std::ostream& o, Eigen::Index i) { o << e.drift.total(i); })
      .column("drift_energy_early", [&e](std::ostream& o, Eigen::Index i) { o << e.drift.early(i); })
      .column("drift_energy_late", [&e](std::ostream& o, Eigen::Index i) { o << e.drift.late(i); })
      .column("control_energy", [&e](std::ostream& o, Eigen::Index i) { o << e.control.total(i); })
      .column("control_energy_early", [&e](std::ostream& o, Eigen::Index i) { o << e.control.early(i); })
      .column("control_energy_late", [&e](std::ostream& o, Eigen::Index i) { o << e.control.late(i); });
}

/// The summary's "stochastic" object: the settings and the energies' means.
template <class Scalar>
[[nodiscard]] json_object stochastic_summary(const stochastic_settings& st, long seed, const path_energies<Scalar>& e) {
  const kinflow::stochastic_options o = stochastic_options_of(st, seed);
  auto means = [](const kinflow::kinetic_energy<Scalar>& k) {
    return json_object()
        .number("mean", k.total.template cast<double>().mean())
        .number("early_mean", k.early.template cast<double>().mean())
        .number("late_mean", k.late.template cast<double>().mean());
  };
  json_object j;
  j.text("diffusion", o.diffusion.text())
      .number("diffusion_norm", o.diffusion.norm)
      .number("last_step_size", st.last_step_size)
      .integer("noise_seed", static_cast<long long>(o.noise_seed))
      .number("churn", st.churn);
  if (e.present()) j.object("drift_energy", means(e.drift)).object("control_energy", means(e.control));
  return j;
}

}  // namespace kinflow_cli
