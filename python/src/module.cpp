// The extension module kinflow._kinflow: error translation, sample(), and the other parts'
// registration. The public API (docstrings, the result type) is python/kinflow/__init__.py.
#include "common.hpp"

#include <algorithm>
#include <cmath>
#include <tuple>

namespace kinflow_py {

py::object make_result(py::dict attributes) { return attributes; }

namespace {

/// A grid by name (kinflow::parse_grid_spec) and keyword parameters; errors as ValueError
/// naming `grid`.
kinflow::grid_spec parse_grid(const std::string& name, const py::dict& params) {
  try {
    // Keyword parameters may stand for all the numbers: "shift" with shift=2.5.
    const bool keywords_only = !params.empty() && name.find(':') == std::string::npos;
    kinflow::grid_spec spec;
    if (keywords_only) {
      spec.kind = kinflow::parse_grid_kind(name);
      if (kinflow::grid_parameters_required(spec.kind))
        for (const auto n : kinflow::grid_parameter_names(spec.kind))
          if (!params.contains(std::string(n)))
            throw py::value_error("grid: '" + name + "' needs its parameter " + std::string(n) + "=, or '" + name +
                                  ":...' in the name");
    } else {
      spec = kinflow::parse_grid_spec(name);
    }
    for (const auto& [key, value] : params) {
      const auto k = py::str(key).cast<std::string>();
      if (!py::isinstance<py::float_>(value) && !py::isinstance<py::int_>(value))
        throw py::type_error("grid: parameter " + k + " expected a real number, got " +
                             std::string(py::str(py::type::handle_of(value).attr("__name__"))));
      kinflow::set_grid_parameter(spec, k, value.cast<double>());
    }
    kinflow::validate(spec);
    return spec;
  } catch (const kinflow::invalid_argument& e) {
    throw py::value_error("grid: " + std::string(e.what()).substr(std::string("kinflow: ").size()));
  }
}

py::array_t<double> grid(const std::string& name, long steps, const py::dict& params) {
  if (steps < 1 || steps > 10000000)
    throw py::value_error("steps: expected a number of steps in [1, 10000000], got " + std::to_string(steps));
  const kinflow::grid_spec spec = parse_grid(name, params);
  if (spec.needs_pilot())
    throw py::value_error("grid: '" + name + "' is built from a pilot run of a field; pass it to "
                          "kinflow.sample(field, x0, grid='" + name + "')");
  const auto g = kinflow::make_grid(spec, static_cast<std::size_t>(steps));
  return py::array_t<double>(static_cast<py::ssize_t>(g.times().size()), g.times().data());
}

/// The stochastic solvers' options (None: the default, and the only value for the other
/// solvers); errors as ValueError naming the parameter.
void parse_stochastic(sample_settings& s, const py::object& diffusion, const py::object& diffusion_norm,
                      const py::object& noise_seed, const py::object& last_step_size, const py::object& churn) {
  if (!s.stochastic()) {
    for (const auto& [name, value] : {std::pair{"diffusion", &diffusion}, std::pair{"diffusion_norm", &diffusion_norm},
                                      std::pair{"noise_seed", &noise_seed}, std::pair{"last_step_size", &last_step_size},
                                      std::pair{"churn", &churn}})
      if (!value->is_none())
        throw py::value_error(std::string(name) + ": applies to the stochastic solvers (sde-euler, sde-heun, "
                              "renoise-euler), not " + s.solve.method);
    return;
  }
  if (s.solve.likelihood.enabled)
    throw py::value_error("likelihood: the log-likelihood is not defined for a stochastic solve (" + s.solve.method +
                          "); use an ODE solver");
  const double norm = diffusion_norm.is_none() ? 1.0 : diffusion_norm.cast<double>();
  if (!(std::isfinite(norm) && norm >= 0))
    throw py::value_error("diffusion_norm: expected a finite norm >= 0 (0 is the probability-flow ODE), got " +
                          kinflow::detail::to_text(norm));
  try {
    s.solve.stochastic.diffusion = kinflow::parse_diffusion(diffusion.is_none() ? "sbdm" : diffusion.cast<std::string>(), norm);
  } catch (const kinflow::invalid_argument& e) {
    throw py::value_error(std::string(e.what()).substr(std::string("kinflow: ").size()));
  }
  if (!noise_seed.is_none()) s.solve.stochastic.noise_seed = noise_seed.cast<std::uint64_t>();
  if (!last_step_size.is_none()) {
    const double h = last_step_size.cast<double>();
    if (!(h > 0 && h < 1))
      throw py::value_error("last_step_size: expected a size in (0, 1), got " + kinflow::detail::to_text(h));
    if (s.solve.last_step == kinflow::last_step_rule::method)
      throw py::value_error("last_step_size: applies to last_step='mean' or 'euler', not 'none'");
    s.solve.stochastic.last_step_size = h;
  }
  if (!churn.is_none()) {
    s.solve.stochastic.churn = churn.cast<double>();
    if (!(s.solve.stochastic.churn >= 0 && s.solve.stochastic.churn <= 1))
      throw py::value_error("churn: expected a churn in [0, 1], got " + kinflow::detail::to_text(s.solve.stochastic.churn));
  }
  if (s.solve.method == "renoise-euler" && (!diffusion.is_none() || !diffusion_norm.is_none()))
    throw py::value_error("diffusion: applies to sde-euler and sde-heun; renoise-euler's noise is set by churn");
  if (s.solve.method != "renoise-euler" && s.solve.last_step == kinflow::last_step_rule::method &&
      !s.solve.stochastic.diffusion.vanishes_at_end())
    throw py::value_error("last_step: expected 'mean' or 'euler' with diffusion " + s.solve.stochastic.diffusion.text() +
                          ", which does not vanish at t = 1 where the score is singular");
}

/// A grid given as times (sample(grid=array)): at least 2, each in [0, 1], strictly
/// increasing or strictly decreasing (a backward solve); errors name grid[i].
std::vector<double> parse_grid_times(const py::object& grid) {
  std::vector<double> t;
  try {
    t = grid.cast<std::vector<double>>();
  } catch (const py::cast_error&) {
    throw py::type_error("grid: expected a name (str) or a 1-D sequence of times, got " +
                         std::string(py::str(py::type::handle_of(grid).attr("__name__"))));
  }
  if (t.size() < 2)
    throw py::value_error("grid: expected at least 2 times (1 step), got " + std::to_string(t.size()));
  auto at = [](std::size_t i) { return "grid[" + std::to_string(i) + "]: "; };
  for (std::size_t i = 0; i < t.size(); ++i)
    if (!(t[i] >= 0 && t[i] <= 1))
      throw py::value_error(at(i) + "expected a time in [0, 1], got " + kinflow::detail::to_text(t[i]));
  const bool up = t[1] > t[0];
  for (std::size_t i = 1; i < t.size(); ++i)
    if (up ? !(t[i] > t[i - 1]) : !(t[i] < t[i - 1]))
      throw py::value_error(at(i) + "expected strictly " + (up ? "increasing" : "decreasing") + " times, got " +
                            kinflow::detail::to_text(t[i]) + " after " + kinflow::detail::to_text(t[i - 1]));
  return t;
}

sample_settings parse_settings(const std::string& solver, long steps, const py::object& grid, py::object kts,
                               const std::string& kpe, double tau, double rtol, double atol, bool likelihood,
                               bool trajectories, const std::string& last_step, const std::string& start) {
  sample_settings s;
  if (!kinflow::is_fixed_step_method(solver) && !kinflow::is_adaptive_method(solver) &&
      !kinflow::is_stochastic_method(solver))
    throw py::value_error("solver: expected one of euler, midpoint, heun, ralston, rk3, rk4 (Runge-Kutta, fixed "
                          "grid), ab2, ab3, dpmpp2m, dpmpp3m, dpmpp3m_exact, unipc (multistep, fixed grid), dopri5, "
                          "bs32, tsit5 (adaptive), sde-euler, sde-heun, renoise-euler (stochastic), got '" + solver +
                          "'");
  s.solve.method = solver;
  if (steps < 1 || steps > 10000000)
    throw py::value_error("steps: expected a number of steps in [1, 10000000], got " + std::to_string(steps));
  s.solve.steps = static_cast<std::size_t>(steps);
  if (py::isinstance<py::str>(grid)) {
    const auto name = grid.cast<std::string>();
    s.solve.grid = parse_grid(name, py::dict());
    if (s.adaptive() && s.solve.grid.kind != kinflow::grid_kind::uniform)
      throw py::value_error("grid: applies to the fixed-step solvers; " + solver +
                            " chooses its own steps (got grid='" + name + "')");
  } else {
    if (s.adaptive())
      throw py::value_error("grid: an array of times applies to the fixed-step solvers; " + solver +
                            " chooses its own steps");
    s.solve.times = parse_grid_times(grid);
    s.solve.steps = s.solve.times.size() - 1;
    if (kinflow::is_stochastic_method(solver) && s.solve.times.back() < s.solve.times.front())
      throw py::value_error("grid: the stochastic solvers integrate forward (increasing times), got a decreasing grid");
  }
  if (s.adaptive() && trajectories)
    throw py::value_error("trajectories: recorded on the fixed-step solvers' grids only (Runge-Kutta and "
                          "multistep), not with " + solver);
  if (!kts.is_none()) {
    if (!py::isinstance<kts_holder>(kts))
      throw py::type_error("kts: expected a kinflow.KTS or None, got " +
                           std::string(py::str(py::type::handle_of(kts).attr("__name__"))));
    s.kts = kts.cast<kts_holder&>().options;
    s.has_kts = true;
  }
  s.solve.quadrature = kinflow::parse_kpe_quadrature(kpe);
  if (!(tau >= 0 && tau <= 1)) throw py::value_error("tau: expected a split time in [0, 1], got " + kinflow::detail::to_text(tau));
  s.solve.tau = tau;
  if (!(rtol >= 1e-15 && rtol <= 1)) throw py::value_error("rtol: expected a tolerance in [1e-15, 1], got " + kinflow::detail::to_text(rtol));
  if (!(atol >= 0 && atol <= 1)) throw py::value_error("atol: expected a tolerance in [0, 1], got " + kinflow::detail::to_text(atol));
  s.solve.rtol = rtol;
  s.solve.atol = atol;
  s.solve.likelihood.enabled = likelihood;
  s.trajectories = trajectories;
  s.solve.last_step = kinflow::parse_last_step_rule(last_step);
  if (s.adaptive() && last_step != "method" && last_step != "none")
    throw py::value_error("last_step: applies to the fixed-step solvers; " + solver + " chooses its own steps");
  s.solve.start = kinflow::parse_multistep_start(start);
  if (start != "lower" && !kinflow::is_multistep_method(solver))
    throw py::value_error("start: applies to the multistep solvers (ab2, ab3, dpmpp2m, dpmpp3m, dpmpp3m_exact, "
                          "unipc), not " + solver);
  return s;
}

/// The adaptive solvers' span t0, t1 (None: 0 and 1) and the likelihood's divergence
/// options (None: automatic, 1 probe, seed 0); errors as ValueError naming the parameter.
void parse_span_and_divergence(sample_settings& s, const py::object& t0, const py::object& t1,
                               const py::object& divergence, const py::object& probes, const py::object& probe_seed) {
  for (const auto& [name, value, slot] : {std::tuple{"t0", &t0, &s.solve.t0}, std::tuple{"t1", &t1, &s.solve.t1}}) {
    if (value->is_none()) continue;
    if (!s.adaptive())
      throw py::value_error(std::string(name) + ": applies to the adaptive solvers (dopri5, bs32, tsit5); " +
                            "the fixed-step solvers take grid=<array of times>, got solver " + s.solve.method);
    const double t = value->cast<double>();
    if (!(t >= 0 && t <= 1))
      throw py::value_error(std::string(name) + ": expected a time in [0, 1], got " + kinflow::detail::to_text(t));
    *slot = t;
  }
  if (s.solve.t0 == s.solve.t1)
    throw py::value_error("t1: expected a time != t0 = " + kinflow::detail::to_text(s.solve.t0) + ", got " +
                          kinflow::detail::to_text(s.solve.t1));
  if (s.solve.likelihood.enabled && !((s.solve.t0 == 0 && s.solve.t1 == 1) || (s.solve.t0 == 1 && s.solve.t1 == 0)))
    throw py::value_error("likelihood: needs the whole span, t0 = 0 and t1 = 1 (or t0 = 1 and t1 = 0 for given "
                          "points), got t0 = " + kinflow::detail::to_text(s.solve.t0) + ", t1 = " +
                          kinflow::detail::to_text(s.solve.t1));
  if (!s.solve.likelihood.enabled)
    for (const auto& [name, value] : {std::pair{"divergence", &divergence}, std::pair{"probes", &probes},
                                      std::pair{"probe_seed", &probe_seed}})
      if (!value->is_none())
        throw py::value_error(std::string(name) + ": applies with likelihood=True (the divergence the "
                              "log-likelihood integrates)");
  if (!divergence.is_none()) s.solve.likelihood.divergence.method = kinflow::parse_divergence_method(divergence.cast<std::string>());
  if (!probes.is_none()) {
    const long p = probes.cast<long>();
    if (p < 1 || p > 1000)
      throw py::value_error("probes: expected Hutchinson probes per stage and sample in [1, 1000], got " +
                            std::to_string(p));
    s.solve.likelihood.divergence.hutchinson.probes = static_cast<int>(p);
  }
  if (!probe_seed.is_none()) s.solve.likelihood.divergence.hutchinson.seed = probe_seed.cast<std::uint64_t>();
}

/// profile=None | "per_sample" | "mean": the per-step energy profile.
void parse_profile(sample_settings& s, const py::object& profile) {
  if (profile.is_none()) return;
  const auto p = profile.cast<std::string>();
  if (p == "per_sample")
    s.solve.profile = kinflow::kpe_profile::per_sample;
  else if (p == "mean")
    s.solve.profile = kinflow::kpe_profile::batch_mean;
  else
    throw py::value_error("profile: expected None, 'per_sample' ([B, steps]) or 'mean' ([steps]), got '" + p + "'");
  if (s.adaptive())
    throw py::value_error("profile: the per-step energy is recorded on the fixed grids (Runge-Kutta, multistep, "
                          "stochastic), not with " + s.solve.method + ", whose steps differ per sample");
}

/// along=[g, ...]: a list or tuple of callables g(t, X, V) -> [B].
void parse_along(sample_settings& s, const py::object& along) {
  if (along.is_none()) return;
  if (!py::isinstance<py::list>(along) && !py::isinstance<py::tuple>(along))
    throw py::type_error("along: expected None or a list of callables g(t, X, V) -> [B], got " +
                         std::string(py::str(py::type::handle_of(along).attr("__name__"))) +
                         (PyCallable_Check(along.ptr()) ? " (put a single integrand in a list: along=[g])" : ""));
  const py::sequence seq = along;
  for (std::size_t k = 0; k < seq.size(); ++k) {
    const py::object g = seq[k];
    if (!PyCallable_Check(g.ptr()))
      throw py::type_error("along[" + std::to_string(k) + "]: expected a callable g(t, X, V) -> [B], got " +
                           std::string(py::str(py::type::handle_of(g).attr("__name__"))));
    s.along.push_back(g);
  }
}

py::object sample(py::object field, py::handle x0, const std::string& solver, long steps, const py::object& grid,
                  py::object kts, const std::string& kpe, double tau, double rtol, double atol, bool likelihood,
                  bool trajectories, const std::string& last_step, const std::string& start, py::object diffusion,
                  py::object diffusion_norm, py::object noise_seed, py::object last_step_size, py::object churn,
                  py::object t0, py::object t1, py::object divergence, py::object probes, py::object probe_seed,
                  py::object profile, py::object callback, py::object classes, py::object cfg,
                  py::object cfg_window, py::object cfg_zero_star, py::object cfg_schedule, py::object along) {
  sample_settings s =
      parse_settings(solver, steps, grid, kts, kpe, tau, rtol, atol, likelihood, trajectories, last_step, start);
  parse_stochastic(s, diffusion, diffusion_norm, noise_seed, last_step_size, churn);
  parse_span_and_divergence(s, t0, t1, divergence, probes, probe_seed);
  parse_profile(s, profile);
  if (!callback.is_none()) {
    if (!PyCallable_Check(callback.ptr()))
      throw py::type_error("callback: expected None or a callable callback(step, t, X, V[, sample=i]), got " +
                           std::string(py::str(py::type::handle_of(callback).attr("__name__"))));
    s.callback = callback;
  }
  parse_guidance(s, classes, cfg, cfg_window, cfg_zero_star, cfg_schedule);
  parse_along(s, along);
  if (s.classes) {
    if (py::isinstance<empirical_holder>(field)) return sample_conditional(field.cast<empirical_holder&>(), x0, s);
    if (py::isinstance<mlp_holder>(field)) return sample_mlp_conditional(field.cast<mlp_holder&>(), x0, s);
    if (py::isinstance<mixture_holder>(field)) return sample_conditional(field.cast<mixture_holder&>(), x0, s);
    if (!py::isinstance<mixture_holder>(field) && !py::isinstance<mlp_holder>(field) && PyCallable_Check(field.ptr()))
      return sample_python_conditional(field, x0, s);
    throw py::value_error("classes: a conditional field is an EmpiricalField or smoothed_empirical with labels, a "
                          "class-conditional MLPField or a callable f(t, X, c), not a " + std::string(py::str(py::type::handle_of(field).attr("__name__"))));
  }
  if (py::isinstance<empirical_holder>(field)) return sample_empirical(field.cast<empirical_holder&>(), x0, s);
  if (py::isinstance<mixture_holder>(field)) return sample_mixture(field.cast<mixture_holder&>(), x0, s);
  if (py::isinstance<mlp_holder>(field)) return sample_mlp(field.cast<mlp_holder&>(), x0, s);
  if (PyCallable_Check(field.ptr())) return sample_python(field, x0, s);
  throw py::type_error("field: expected a kinflow field or a callable f(t, X) -> [B, d], got " +
                       std::string(py::str(py::type::handle_of(field).attr("__name__"))));
}

}  // namespace

}  // namespace kinflow_py

PYBIND11_MODULE(_kinflow, m) {
  namespace py = pybind11;
  using namespace kinflow_py;
  m.doc() = "kinflow's C++ core; use the kinflow package, not this module.";
  m.attr("__version__") = KINFLOW_VERSION_STRING;
#ifdef KINFLOW_PY_BUILD_INFO
  m.attr("build_info") = KINFLOW_PY_BUILD_INFO;
#else
  m.attr("build_info") = "unknown";
#endif

  // kinflow::invalid_argument (dimension_mismatch and model_file_error included) carries
  // a message naming the parameter and its valid range: a ValueError.
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const kinflow::invalid_argument& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    }
  });

  init_fields(m);
  init_conditional(m);
  init_metrics(m);
  init_data(m);
  m.def("sample", &sample, py::arg("field"), py::arg("x0"), py::arg("solver") = "euler", py::arg("steps") = 100,
        py::arg("grid") = "uniform", py::arg("kts") = py::none(), py::arg("kpe") = "stage", py::arg("tau") = 0.6,
        py::arg("rtol") = 1e-5, py::arg("atol") = 1e-5, py::arg("likelihood") = false,
        py::arg("trajectories") = false, py::arg("last_step") = "method", py::arg("start") = "lower",
        py::arg("diffusion") = py::none(), py::arg("diffusion_norm") = py::none(), py::arg("noise_seed") = py::none(),
        py::arg("last_step_size") = py::none(), py::arg("churn") = py::none(), py::arg("t0") = py::none(),
        py::arg("t1") = py::none(), py::arg("divergence") = py::none(), py::arg("probes") = py::none(),
        py::arg("probe_seed") = py::none(), py::arg("profile") = py::none(), py::arg("callback") = py::none(),
        py::arg("classes") = py::none(), py::arg("cfg") = py::none(), py::arg("cfg_window") = py::none(),
        py::arg("cfg_zero_star") = py::none(), py::arg("cfg_schedule") = py::none(), py::arg("along") = py::none());
  m.def("grid", &grid, py::arg("name"), py::arg("steps"), py::arg("params"));
}
