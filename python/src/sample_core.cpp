// kinflow.sample()'s solves, compiled once for all fields: the settings run by
// kinflow::solve_with (the mapping the kinflow-sample program uses too, so results agree
// with it), with KTS, the guidance energy parts and the user's integrals, and the result as
// NumPy arrays.
#include "sample_impl.hpp"

#include <algorithm>
#include <chrono>
#include <optional>

namespace kinflow_py {

namespace {

/// The observer of a solve that keeps every state (frame k + 1 of `frames` is the state
/// after step k; frame 0, x0, is stored by make_observer) and calls the user's
/// callback(step, t, X, V) after every step, with X the state after the step ([B, d]) and V
/// its stage velocities ([stages, B, d]; one for the multistep and stochastic solvers and
/// for a last step taken with Euler). One type for both, so that they add a single
/// instantiation of each solve. The adaptive solvers call the callback after every accepted
/// step of every sample: callback(step, t, X [1, d], V [stages, 1, d], sample=i), `step`
/// counting that sample's accepted steps.
template <class Scalar>
struct step_observer {
  std::vector<Scalar>* frames = nullptr;  // null: no frames
  std::size_t n = 0;                      // numbers per frame
  const py::object* callback = nullptr;   // null: no callback
  std::vector<long>* accepted = nullptr;  // adaptive solves: accepted steps per sample so far

  template <std::size_t S>
  void operator()(const kinflow::adaptive_step_view<Scalar, Eigen::Dynamic, S>& v) const {
    if (!callback) return;
    auto& count = (*accepted)[static_cast<std::size_t>(v.sample)];
    py::gil_scoped_acquire gil;
    const auto d = static_cast<py::ssize_t>(v.state.rows());
    py::array_t<Scalar> X({py::ssize_t{1}, d}), V({static_cast<py::ssize_t>(S), py::ssize_t{1}, d});
    const auto x = v.x();
    for (py::ssize_t r = 0; r < d; ++r) X.mutable_at(0, r) = x(r);
    for (std::size_t j = 0; j < S; ++j) {
      const auto k = v.k(j);
      for (py::ssize_t r = 0; r < d; ++r) V.mutable_at(static_cast<py::ssize_t>(j), 0, r) = k(r);
    }
    (*callback)(count++, static_cast<double>(v.t), X, V, py::arg("sample") = static_cast<long>(v.sample));
  }

  template <class View>
    requires requires(const View& v) { v.x.data(); }
  void operator()(const View& view) const {
    if (frames) {
      const std::size_t end = (view.step + 2) * n;
      if (frames->size() < end) frames->resize(end);
      std::copy_n(view.x.data(), n, frames->begin() + static_cast<std::ptrdiff_t>(end - n));
    }
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

/// The observer of a solve with `frames` (x0 stored as the first) and the settings'
/// callback; either may be absent.
template <class Scalar>
step_observer<Scalar> make_observer(std::vector<Scalar>* frames, const dyn_batch<Scalar>& X,
                                    const sample_settings& s) {
  step_observer<Scalar> o;
  o.n = static_cast<std::size_t>(X.size());
  if (frames) {
    frames->assign(X.data(), X.data() + o.n);
    o.frames = frames;
  }
  if (!s.callback.is_none()) o.callback = &s.callback;
  return o;
}

/// A user's integrand of sample(along=[...]): g(t, X, V) -> [B], called with the rows'
/// stage times t [B], states X [B, d] and velocities V [B, d] (fresh arrays in the solve's
/// precision), the GIL taken for the call.
template <class Scalar>
struct python_integrand {
  const py::object* g = nullptr;
  std::size_t index = 0;  // its place in along=[...], for messages

  void operator()(const kinflow::sample_times<Scalar>& T, const dyn_batch<Scalar>& X, const dyn_batch<Scalar>& V,
                  kinflow::per_sample<Scalar>& G) const {
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
    const auto B = static_cast<py::ssize_t>(X.cols()), d = static_cast<py::ssize_t>(X.rows());
    py::array_t<Scalar> t(B), x({B, d}), v({B, d});
    std::copy_n(T.data(), B, t.mutable_data());
    std::copy_n(X.data(), B * d, x.mutable_data());  // a d x B batch is a row-major [B, d] array
    std::copy_n(V.data(), B * d, v.mutable_data());
    const std::string name = "along[" + std::to_string(index) + "]";
    const py::array r = as_numeric_array((*g)(t, x, v), (name + "'s return value").c_str());
    if (r.ndim() != 1 || r.shape(0) != B)
      throw py::value_error(name + " returned an array of shape " + shape_text(r) + ", expected (" +
                            std::to_string(B) + ",) = [B], one value per row of X");
    const auto c = py::array_t<Scalar, py::array::c_style | py::array::forcecast>::ensure(r);
    G.resize(B);
    std::copy_n(c.data(), B, G.data());
  }
};

/// The integrals every solve carries, one type for all so that each solve is compiled once:
/// the guidance energy parts (zeros without guidance), then the user's along=[...].
template <class Scalar>
auto make_integrals(const sample_settings& s, const kinflow::kts_gain* gain) {
  using part = kinflow::guidance_energy_ref<Scalar>;
  std::vector<python_integrand<Scalar>> user;
  for (std::size_t k = 0; k < s.along.size(); ++k) user.push_back({&s.along[k], k});
  return kinflow::along(part{s.parts<Scalar>(), gain, 0}, part{s.parts<Scalar>(), gain, 1},
                        part{s.parts<Scalar>(), gain, 2}, std::move(user));
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
  const auto integrals = make_integrals<Scalar>(s, &gain);
  // Python callables run Python code, which sees signals by itself.
  kinflow::solve_settings settings = s.solve;
  settings.progress = release_gil ? python_signal_check() : kinflow::progress_callback{};
  std::vector<Scalar> frames;
  std::vector<long> accepted(static_cast<std::size_t>(X.cols()), 0);
  const bool observed = s.trajectories || !s.callback.is_none();
  step_observer<Scalar> observer = make_observer(s.trajectories ? &frames : nullptr, X, s);
  observer.accepted = &accepted;
  kinflow::solve_settings_result<Scalar> out;
  {
    std::optional<py::gil_scoped_release> release;
    if (release_gil) release.emplace();
    out = kinflow::solve_with(field, settings, X, integrals, observed ? &observer : nullptr);
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
  a["log_likelihood"] = s.solve.likelihood.enabled ? py::object(vector_array(r.log_likelihood)) : py::none();
  // Guided solves: the three parts of the KPE (docs/math.md 6.5); None otherwise.
  const bool guided = s.parts<Scalar>() != nullptr && r.integrals.size() >= 3;
  const char* parts[3] = {"kpe_unconditional", "kpe_cross", "kpe_guidance"};
  for (std::size_t p = 0; p < 3; ++p)
    a[parts[p]] = guided ? py::object(vector_array(r.integrals[p])) : py::none();
  // along=[...]: [K, B], integral k of every sample (None without).
  if (s.along.empty()) {
    a["integrals"] = py::none();
  } else {
    const auto K = static_cast<py::ssize_t>(s.along.size()), B = static_cast<py::ssize_t>(X.cols());
    py::array_t<Scalar> values({K, B});
    for (py::ssize_t k = 0; k < K; ++k)
      std::copy_n(r.integrals[static_cast<std::size_t>(3 + k)].data(), B, values.mutable_data() + k * B);
    a["integrals"] = values;
  }
  // The per-step energy increments: [B, steps] per sample (the B x steps matrix is copied
  // into row-major order), [steps] for the batch mean.
  if (s.solve.profile == kinflow::kpe_profile::per_sample) {
    const auto& P = r.kpe.profile;
    py::array_t<Scalar> profile({static_cast<py::ssize_t>(P.rows()), static_cast<py::ssize_t>(P.cols())});
    Eigen::Map<Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(profile.mutable_data(), P.rows(),
                                                                                       P.cols()) = P;
    a["kpe_profile"] = profile;
  } else if (s.solve.profile == kinflow::kpe_profile::batch_mean) {
    a["kpe_profile"] = vector_array(r.kpe.profile.col(0));
  } else {
    a["kpe_profile"] = py::none();
  }
  // The stochastic solvers' drift and control energies (None for the ODE solvers).
  const bool sde = s.stochastic();
  for (const auto& [name, energy] : {std::pair{"drift_energy", sde ? &out.result.drift_energy : nullptr},
                                     std::pair{"control_energy", sde ? &out.result.control_energy : nullptr}}) {
    const std::string n(name);
    a[py::str(n)] = energy ? py::object(vector_array(energy->total)) : py::none();
    a[py::str(n + "_early")] = energy ? py::object(vector_array(energy->early)) : py::none();
    a[py::str(n + "_late")] = energy ? py::object(vector_array(energy->late)) : py::none();
  }
  if (s.trajectories) {
    py::array_t<Scalar> traj({static_cast<py::ssize_t>(frames.size() / static_cast<std::size_t>(X.size())),
                              static_cast<py::ssize_t>(X.cols()), static_cast<py::ssize_t>(X.rows())});
    std::copy(frames.begin(), frames.end(), traj.mutable_data());
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
