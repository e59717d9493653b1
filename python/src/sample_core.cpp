// kinflow.sample()'s solves, compiled once for all fields: the solver, grid, KTS and KPE
// settings mapped onto kinflow::integrate / kinflow::integrate_adaptive (the same mapping as
// the kinflow-sample program, so results agree with it), and the result as NumPy arrays.
#include "sample_impl.hpp"

#include <algorithm>
#include <chrono>
#include <optional>

namespace kinflow_py {

namespace {

template <class Options>
void set_path_options(Options& opt, const sample_settings& s) {
  opt.kpe.tau = s.tau;
  if (kinflow::kts_gain(s.kts).is_identity()) {
    // Adaptive steps end at the split too, so that early and late are exactly the energy of
    // [0, tau] and [tau, 1] (a shaped field makes its tau a breakpoint by itself).
    if constexpr (requires { opt.breakpoints; })
      if (s.tau > 0 && s.tau < 1) opt.breakpoints = {s.tau};
  }
  opt.kpe.quadrature = s.kpe == "left" ? kinflow::kpe_quadrature::left_riemann : kinflow::kpe_quadrature::stage;
  opt.kpe.profile = s.profile;
  opt.likelihood.enabled = s.likelihood;
  opt.likelihood.divergence = s.divergence;
}

template <class Scalar>
struct solve_output {
  kinflow::solve_result<Scalar> result;
  std::optional<kinflow::stochastic_result<Scalar>> sde;  // the stochastic solvers' energies
  std::vector<Scalar> trajectory;  // [steps + 1, B, d] when asked
  std::size_t frames = 0;
};

/// The grid of s.times, or the one s.grid names (a pilot grid's pilot runs on up to 256 of
/// the samples).
template <class Scalar, class Field, class Method>
kinflow::time_grid<double> make_grid(Field& field, const Method& method,
                                     const sample_settings& s, const dyn_batch<Scalar>& X) {
  if (!s.times.empty()) return kinflow::time_grid<double>(s.times);
  const dyn_batch<Scalar> pilot = X.leftCols(std::min<Eigen::Index>(X.cols(), s.grid.needs_pilot() ? 256 : 0));
  return kinflow::make_grid(s.grid, static_cast<std::size_t>(s.steps), field, method, pilot);
}

/// The observer of a solve that keeps every state (frame k + 1 of `frames` is the state
/// after step k) and calls the user's callback(step, t, X, V) after every step, with X the
/// state after the step ([B, d]) and V its stage velocities ([stages, B, d]; one for the
/// multistep and stochastic solvers and for a last step taken with Euler). One type for both,
/// so that they add a single instantiation of each solve.
template <class Scalar>
struct step_observer {
  std::vector<Scalar>* frames = nullptr;  // null: no frames
  std::size_t n = 0;                      // numbers per frame
  const py::object* callback = nullptr;   // null: no callback

  template <class View>
  void operator()(const View& view) const {
    if (frames)
      std::copy_n(view.x.data(), n, frames->begin() + static_cast<std::ptrdiff_t>((view.step + 1) * n));
    if (callback) call(view);
  }

  template <class View>
  void call(const View& view) const {
    py::gil_scoped_acquire gil;
    const auto B = static_cast<py::ssize_t>(view.x.cols()), d = static_cast<py::ssize_t>(view.x.rows());
    std::vector<const Scalar*> stages;
    if constexpr (requires { view.k; }) {
      const std::size_t S = view.euler ? 1 : view.k.size();
      for (std::size_t j = 0; j < S; ++j) stages.push_back(view.k[j].data());
    } else {
      stages.push_back(view.v.data());
    }
    // A d x B column-major batch is a row-major [B, d] array.
    py::array_t<Scalar> V({static_cast<py::ssize_t>(stages.size()), B, d});
    for (std::size_t j = 0; j < stages.size(); ++j)
      std::copy_n(stages[j], B * d, V.mutable_data() + static_cast<py::ssize_t>(j) * B * d);
    py::array_t<Scalar> X({B, d});
    std::copy_n(view.x.data(), B * d, X.mutable_data());
    (*callback)(view.step, static_cast<double>(view.t), X, V);
  }
};

/// The observer of a solve with `frames` (sized for `count` states of X's shape, X the first)
/// and the settings' callback; either may be absent.
template <class Scalar>
step_observer<Scalar> make_observer(std::vector<Scalar>* frames, std::size_t count, const dyn_batch<Scalar>& X,
                                    const sample_settings& s) {
  step_observer<Scalar> o;
  o.n = static_cast<std::size_t>(X.size());
  if (frames) {
    frames->resize(count * o.n);
    std::copy_n(X.data(), o.n, frames->begin());
    o.frames = frames;
  }
  if (!s.callback.is_none()) o.callback = &s.callback;
  return o;
}

/// The integrals every solve carries: the guidance energy parts (zeros without guidance),
/// one type for all, so that each solve is compiled once.
template <class Scalar>
using integrals_t = decltype(kinflow::guidance_energy_refs<Scalar>(nullptr));

template <class Scalar, class Field, class Method>
kinflow::solve_result<Scalar> run_fixed(Field& field, const Method& method,
                                        const kinflow::time_grid<double>& grid, const sample_settings& s,
                                        dyn_batch<Scalar>& X, const kinflow::progress_callback& progress,
                                        std::vector<Scalar>* frames, const integrals_t<Scalar>& integrals) {
  kinflow::fixed_step_options opt;
  set_path_options(opt, s);
  opt.progress = progress;
  opt.last_step = s.last_step;
  opt.start = s.start;
  if (!frames && s.callback.is_none()) return kinflow::integrate(field, method, grid, X, opt, integrals);
  return kinflow::integrate(field, method, grid, X, opt, integrals, make_observer(frames, grid.times().size(), X, s));
}

/// A stochastic solve (sde-euler, sde-heun, renoise-euler) on the grid `grid`; with
/// `frames`, the states after every step (a last-step size adds one step).
template <class Scalar, class Field>
kinflow::stochastic_result<Scalar> run_stochastic(Field& field, const kinflow::time_grid<double>& grid,
                                                  const sample_settings& s, dyn_batch<Scalar>& X,
                                                  const kinflow::progress_callback& progress,
                                                  std::vector<Scalar>* frames, const integrals_t<Scalar>& integrals) {
  kinflow::stochastic_options opt = s.sde;
  set_path_options(opt, s);
  opt.progress = progress;
  opt.last_step = s.last_step;
  const kinflow::stochastic_method method = kinflow::stochastic_method_by_name(s.solver, "solver");
  if (!frames && s.callback.is_none()) return kinflow::integrate(field, method, grid, X, opt, integrals);
  const std::size_t count = grid.times().size() + (opt.last_step_size ? 1 : 0);
  return kinflow::integrate(field, method, grid, X, opt, integrals, make_observer(frames, count, X, s));
}

template <class Scalar, class Field, std::size_t S>
kinflow::solve_result<Scalar> run_adaptive(Field& field, const kinflow::embedded_tableau<S>& method,
                                           const sample_settings& s, dyn_batch<Scalar>& X,
                                           const kinflow::progress_callback& progress,
                                           const integrals_t<Scalar>& integrals) {
  kinflow::adaptive_options opt;
  opt.rtol = s.rtol;
  opt.atol = s.atol;
  set_path_options(opt, s);
  opt.progress = progress;
  return kinflow::integrate_adaptive(field, method, s.t0, s.t1, X, opt, integrals);
}

/// For solves that run without the GIL (C++ fields): a progress callback that, every tenth
/// of a second, takes the GIL and runs Python's signal handlers, so that Ctrl-C stops a long
/// sample() within about that time whatever the batch, the field or the solver. A pending
/// KeyboardInterrupt (or whatever a handler raises) ends the solve as py::error_already_set.
inline kinflow::progress_callback python_signal_check() {
  using clock = std::chrono::steady_clock;
  return [last = clock::now()](double) mutable {
    const auto now = clock::now();
    if (now - last < std::chrono::milliseconds(100)) return;
    last = now;
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
  };
}

}  // namespace

template <class Scalar, class Ref>
py::object run_sample_ref(Ref& inner, const sample_settings& s, dyn_batch<Scalar>& X, bool release_gil) {
  // KTS wraps every field; with alpha0 = beta0 = 0 the gain is the identity and the results
  // are bit-identical to the unshaped field's.
  const kinflow::kts_gain gain(s.kts);
  auto field = kinflow::shaped(inner, gain);
  const auto integrals = kinflow::guidance_energy_refs<Scalar>(s.parts<Scalar>(), &gain);
  solve_output<Scalar> out;
  // Python callables run Python code, which sees signals by itself.
  const kinflow::progress_callback progress = release_gil ? python_signal_check() : kinflow::progress_callback{};
  {
    std::optional<py::gil_scoped_release> release;
    if (release_gil) release.emplace();
    auto fixed = [&](const auto& method) {
      const kinflow::time_grid<double> grid = make_grid(field, method, s, X);
      out.frames = grid.times().size();
      out.result =
          run_fixed(field, method, grid, s, X, progress, s.trajectories ? &out.trajectory : nullptr, integrals);
    };
    auto adaptive = [&](const auto& method) { out.result = run_adaptive(field, method, s, X, progress, integrals); };
    if (s.stochastic()) {
      const kinflow::time_grid<double> grid = make_grid(field, kinflow::euler, s, X);  // pilots: an Euler ODE
      out.frames = grid.times().size() + (s.sde.last_step_size ? 1 : 0);
      out.sde = run_stochastic(field, grid, s, X, progress, s.trajectories ? &out.trajectory : nullptr, integrals);
      out.result = *out.sde;
    } else {
      kinflow::visit_method(s.solver, fixed, adaptive, "solver");
    }
  }
  const auto& r = out.result;
  py::dict a;
  a["x"] = rows_of(X);
  a["kpe"] = vector_array(r.kpe.total);
  a["kpe_early"] = vector_array(r.kpe.early);
  a["kpe_late"] = vector_array(r.kpe.late);
  a["kpe_tau"] = r.kpe.tau;
  a["nfe"] = vector_array(r.nfe);
  a["accepted"] = vector_array(r.accepted);
  a["rejected"] = vector_array(r.rejected);
  py::list status;
  for (auto st : r.status) status.append(py::str(std::string(kinflow::to_string(st))));
  a["status"] = status;
  a["log_likelihood"] = s.likelihood ? py::object(vector_array(r.log_likelihood)) : py::none();
  // Guided solves: the three parts of the KPE (docs/math.md 6.5); None otherwise.
  const bool guided = s.parts<Scalar>() != nullptr && r.integrals.size() == 3;
  const char* parts[3] = {"kpe_unconditional", "kpe_cross", "kpe_guidance"};
  for (std::size_t p = 0; p < 3; ++p)
    a[parts[p]] = guided ? py::object(vector_array(r.integrals[p])) : py::none();
  // The per-step energy increments: [B, steps] per sample (the B x steps matrix is copied
  // into row-major order), [steps] for the batch mean.
  if (s.profile == kinflow::kpe_profile::per_sample) {
    const auto& P = r.kpe.profile;
    py::array_t<Scalar> profile({static_cast<py::ssize_t>(P.rows()), static_cast<py::ssize_t>(P.cols())});
    Eigen::Map<Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(profile.mutable_data(), P.rows(),
                                                                                       P.cols()) = P;
    a["kpe_profile"] = profile;
  } else if (s.profile == kinflow::kpe_profile::batch_mean) {
    a["kpe_profile"] = vector_array(r.kpe.profile.col(0));
  } else {
    a["kpe_profile"] = py::none();
  }
  // The stochastic solvers' drift and control energies (None for the ODE solvers).
  for (const auto& [name, energy] : {std::pair{"drift_energy", out.sde ? &out.sde->drift_energy : nullptr},
                                     std::pair{"control_energy", out.sde ? &out.sde->control_energy : nullptr}}) {
    const std::string n(name);
    a[py::str(n)] = energy ? py::object(vector_array(energy->total)) : py::none();
    a[py::str(n + "_early")] = energy ? py::object(vector_array(energy->early)) : py::none();
    a[py::str(n + "_late")] = energy ? py::object(vector_array(energy->late)) : py::none();
  }
  if (s.trajectories) {
    py::array_t<Scalar> traj({static_cast<py::ssize_t>(out.frames), static_cast<py::ssize_t>(X.cols()),
                              static_cast<py::ssize_t>(X.rows())});
    std::copy(out.trajectory.begin(), out.trajectory.end(), traj.mutable_data());
    a["trajectory"] = traj;
  } else {
    a["trajectory"] = py::none();
  }
  return make_result(a);
}

template py::object run_sample_ref<float>(kinflow::field_ref<float>&, const sample_settings&, dyn_batch<float>&, bool);
template py::object run_sample_ref<double>(kinflow::field_ref<double>&, const sample_settings&, dyn_batch<double>&,
                                           bool);
template py::object run_sample_ref<float>(kinflow::exact_field_ref<float>&, const sample_settings&, dyn_batch<float>&,
                                          bool);
template py::object run_sample_ref<double>(kinflow::exact_field_ref<double>&, const sample_settings&,
                                           dyn_batch<double>&, bool);

}  // namespace kinflow_py
