// Conditions and guidance in the Python package: EmpiricalField(Y, labels=...) with the
// exact class-conditional field beside the field of all points, its class-aware methods, and
// sample(field, x0, classes=..., cfg=..., cfg_window=..., cfg_zero_star=..., cfg_schedule=...)
// through kinflow::guided (kinflow/fields/guidance.hpp), the energy parts included.
#include "sample_impl.hpp"

#include <cmath>

namespace kinflow_py {

namespace {

/// A 1-D integer array (or sequence) as class_labels: @p name in messages; @p lowest the
/// smallest value allowed (0 for training labels, -1 for the samples' classes).
kinflow::class_labels labels_of(py::handle obj, const char* name, Eigen::Index lowest) {
  const py::array a = as_numeric_array(obj, name);
  if (a.ndim() != 1)
    throw py::value_error(std::string(name) + ": expected a 1-D array of integers, got shape " + shape_text(a));
  const auto kind = a.dtype().kind();
  if (kind != 'i' && kind != 'u' && kind != 'b')
    throw py::value_error(std::string(name) + ": expected integers, got dtype " +
                          std::string(py::str(a.dtype())));
  const auto v = py::array_t<long long, py::array::c_style | py::array::forcecast>::ensure(a);
  kinflow::class_labels out(static_cast<Eigen::Index>(v.size()));
  for (py::ssize_t i = 0; i < v.size(); ++i) {
    if (v.data()[i] < lowest)
      throw py::value_error(std::string(name) + "[" + std::to_string(i) + "] = " + std::to_string(v.data()[i]) +
                            " is invalid; expected a class >= " + std::to_string(lowest) +
                            (lowest < 0 ? " (-1: unconditional)" : ""));
    out(static_cast<Eigen::Index>(i)) = static_cast<Eigen::Index>(v.data()[i]);
  }
  return out;
}

/// Calls fn(conditional field) of a labelled EmpiricalField or smoothed GaussianMixture;
/// ValueError naming @p what otherwise.
template <class Holder, class Fn>
decltype(auto) with_conditional(const Holder& h, const char* what, Fn&& fn) {
  if (!h.labelled())
    throw py::value_error(std::string(what) + ": this " + h.kind + " has no labels; build it with " +
                          (h.kind == "EmpiricalField" ? "EmpiricalField(Y, labels=...)"
                                                      : "smoothed_empirical(Y, s, labels=...)"));
  return std::visit(
      [&](const auto& f) -> decltype(auto) {
        if constexpr (std::is_same_v<std::decay_t<decltype(f)>, std::monostate>) {
          throw py::value_error("no labels");
          return fn(*std::get<1>(h.conditional));  // unreachable; fixes the return type
        } else {
          return fn(std::as_const(*f));
        }
      },
      h.conditional);
}

/// velocity(t, X, classes) -> [B, d]: the field of each sample's class (-1: all points).
template <class Holder>
py::array velocity_of_class(const Holder& h, double t, py::handle X, py::handle classes) {
  return with_conditional(h, "classes", [&](const auto& f) -> py::array {
    using Scalar = typename std::decay_t<decltype(f)>::scalar_type;
    const dyn_batch<Scalar> x = batch_of<Scalar>(X, "X", static_cast<py::ssize_t>(f.dim()));
    const kinflow::class_labels C = labels_of(classes, "classes", -1);
    dyn_batch<Scalar> v;
    {
      py::gil_scoped_release release;
      f(static_cast<Scalar>(t), x, C, v);
    }
    return rows_of(v);
  });
}

/// (v_u [B, d], v_c [B, d]) of the conditional field @p f at the rows of X.
template <class F>
py::tuple pair_of(const F& f, double t, py::handle X, py::handle classes) {
  using Scalar = typename F::scalar_type;
  const dyn_batch<Scalar> x = batch_of<Scalar>(X, "X", static_cast<py::ssize_t>(f.dim()));
  const kinflow::class_labels C = labels_of(classes, "classes", -1);
  dyn_batch<Scalar> u, vc;
  {
    py::gil_scoped_release release;
    f.velocity_pair(static_cast<Scalar>(t), x, C, u, vc);
  }
  return py::make_tuple(rows_of(u), rows_of(vc));
}

/// velocity_pair(t, X, classes) -> (v_u [B, d], v_c [B, d]) from one pass.
template <class Holder>
py::tuple velocity_pair(const Holder& h, double t, py::handle X, py::handle classes) {
  return with_conditional(h, "velocity_pair", [&](const auto& f) { return pair_of(f, t, X, classes); });
}

/// log_density(t, X, classes) -> [B]: log p_t(x | c).
template <class Holder>
py::array log_density_of_class(const Holder& h, double t, py::handle X, py::handle classes) {
  return with_conditional(h, "classes", [&](const auto& f) -> py::array {
    using Scalar = typename std::decay_t<decltype(f)>::scalar_type;
    const dyn_batch<Scalar> x = batch_of<Scalar>(X, "X", static_cast<py::ssize_t>(f.dim()));
    const kinflow::class_labels C = labels_of(classes, "classes", -1);
    kinflow::per_sample<Scalar> out;
    {
      py::gil_scoped_release release;
      out = f.log_density(static_cast<Scalar>(t), x, C);
    }
    return vector_array(out);
  });
}

/// divergence(t, X, classes) -> [B]: the exact divergence of each sample's class field.
template <class Holder>
py::array divergence_of_class(const Holder& h, double t, py::handle X, py::handle classes) {
  return with_conditional(h, "classes", [&](const auto& f) -> py::array {
    using Scalar = typename std::decay_t<decltype(f)>::scalar_type;
    const dyn_batch<Scalar> x = batch_of<Scalar>(X, "X", static_cast<py::ssize_t>(f.dim()));
    const kinflow::class_labels C = labels_of(classes, "classes", -1);
    kinflow::per_sample<Scalar> D;
    {
      py::gil_scoped_release release;
      f.divergence(static_cast<Scalar>(t), x, C, D);
    }
    return vector_array(D);
  });
}

/// partial_states(t, X, classes, unconditional=True) -> (state_u [B, d + 4], state_c [B, d + 4]):
/// this shard's partial posterior states of X over all its points and over each row's class
/// (all points for -1; an empty record where the shard has no point of the class), from one
/// pass; with unconditional=False, state_u only for the rows of class -1 (each class then
/// streams only its own rows).
py::tuple partial_states(const empirical_holder& h, double t, py::handle X, py::handle classes, bool unconditional) {
  return with_conditional(h, "partial_states", [&](const auto& f) -> py::tuple {
    using Scalar = typename std::decay_t<decltype(f)>::scalar_type;
    const dyn_batch<Scalar> x = batch_of<Scalar>(X, "X", static_cast<py::ssize_t>(f.dim()));
    const kinflow::class_labels C = labels_of(classes, "classes", -1);
    if (C.size() != x.cols())
      throw py::value_error("classes: expected one class per row of X (" + std::to_string(x.cols()) + "), got " +
                            std::to_string(C.size()));
    std::pair<kinflow::posterior_state<Scalar>, kinflow::posterior_state<Scalar>> states;
    {
      py::gil_scoped_release release;
      states = f.partial_states(static_cast<Scalar>(t), x, C, {true, true}, unconditional);
    }
    return py::make_tuple(records_of(states.first), records_of(states.second));
  });
}

template <class Scalar>
std::shared_ptr<conditional_t<Scalar>> make_conditional(py::handle Y, const kinflow::class_labels& labels,
                                                        Eigen::Index classes, double sigma_min,
                                                        const kinflow::closed_form_settings& settings) {
  kinflow::empirical_options<Scalar> o;
  static_cast<kinflow::closed_form_settings&>(o) = settings;
  o.sigma_min = static_cast<Scalar>(sigma_min);
  return std::make_shared<conditional_t<Scalar>>(batch_of<Scalar>(Y, "Y"), labels, o, classes);
}

/// The classes of a query of a class-conditional MLP: None -> the null class for every row.
kinflow::class_labels mlp_classes(py::handle classes, Eigen::Index B) {
  if (classes.is_none()) return kinflow::class_labels::Constant(B, kinflow::null_class);
  return labels_of(classes, "classes", -1);
}

/// MLPField.velocity(t, X, classes=None) -> [B, d].
py::array mlp_velocity(const mlp_holder& h, double t, py::handle X, py::handle classes) {
  return with_field(h, [&](const auto& f) -> py::array {
    using Scalar = typename std::decay_t<decltype(f)>::scalar_type;
    const dyn_batch<Scalar> x = batch_of<Scalar>(X, "X", static_cast<py::ssize_t>(f.dim()));
    const kinflow::class_labels C = mlp_classes(classes, x.cols());
    dyn_batch<Scalar> v(x.rows(), x.cols());
    {
      py::gil_scoped_release release;
      f(static_cast<Scalar>(t), x, C, v);
    }
    return rows_of(v);
  });
}

/// MLPField.divergence(t, X, classes=None) -> [B] (exact).
py::array mlp_divergence(const mlp_holder& h, double t, py::handle X, py::handle classes) {
  return with_field(h, [&](const auto& f) -> py::array {
    using Scalar = typename std::decay_t<decltype(f)>::scalar_type;
    const dyn_batch<Scalar> x = batch_of<Scalar>(X, "X", static_cast<py::ssize_t>(f.dim()));
    const kinflow::class_labels C = mlp_classes(classes, x.cols());
    kinflow::per_sample<Scalar> D;
    {
      py::gil_scoped_release release;
      f.divergence(static_cast<Scalar>(t), x, C, D);
    }
    return vector_array(D);
  });
}

/// MLPField.velocity_pair(t, X, classes) -> (v_u, v_c).
py::tuple mlp_velocity_pair(const mlp_holder& h, double t, py::handle X, py::handle classes) {
  return with_field(h, [&](const auto& f) { return pair_of(f, t, X, classes); });
}

/// The number of classes= argument: None -> -1 (the largest label + 1).
Eigen::Index classes_argument(const py::object& classes) {
  if (classes.is_none()) return -1;
  const long K = classes.cast<long>();
  if (K < 1) throw py::value_error("classes: expected the number of classes, >= 1, or None, got " + std::to_string(K));
  return K;
}

template <class Scalar>
std::shared_ptr<smoothed_conditional_t<Scalar>> make_smoothed_conditional(py::handle Y, const kinflow::class_labels& labels,
                                                                          Eigen::Index classes, double s,
                                                                          const kinflow::closed_form_settings& settings) {
  kinflow::gaussian_mixture_options<Scalar> o;
  static_cast<kinflow::closed_form_settings&>(o) = settings;
  return std::make_shared<smoothed_conditional_t<Scalar>>(batch_of<Scalar>(Y, "Y"), labels, static_cast<Scalar>(s), o,
                                                          classes);
}

/// Reads labels= and classes= into @p h and builds its conditional field with
/// make(Scalar{}, K), in the holder's precision.
template <class Holder, class Make>
void attach(Holder& h, py::handle labels, const py::object& classes, const Make& make) {
  h.labels = labels_of(labels, "labels", 0);
  const Eigen::Index K = classes_argument(classes);
  if (h.is_float())
    h.conditional = make(float{}, K);
  else
    h.conditional = make(double{}, K);
}

}  // namespace

void attach_labels(mixture_holder& h, py::handle Y, py::handle labels, const py::object& classes, double s,
                   const kinflow::closed_form_settings& settings) {
  attach(h, labels, classes, [&](auto scalar, Eigen::Index K) {
    return make_smoothed_conditional<decltype(scalar)>(Y, h.labels, K, s, settings);
  });
}

void attach_labels(empirical_holder& h, py::handle Y, py::handle labels, const py::object& classes, double sigma_min,
                   const kinflow::closed_form_settings& settings) {
  attach(h, labels, classes, [&](auto scalar, Eigen::Index K) {
    return make_conditional<decltype(scalar)>(Y, h.labels, K, sigma_min, settings);
  });
}

kinflow::class_labels classes_for(const sample_settings& s, Eigen::Index B) {
  if (!s.classes) return {};
  if (s.classes_all) return kinflow::class_labels::Constant(B, (*s.classes)(0));
  if (s.classes->size() != B)
    throw py::value_error("classes: expected one class per sample of x0 (" + std::to_string(B) + "), got " +
                          std::to_string(s.classes->size()));
  return *s.classes;
}

void parse_guidance(sample_settings& s, const py::object& classes, const py::object& cfg, const py::object& window,
                    const py::object& zero_star, const py::object& schedule) {
  if (classes.is_none()) {
    for (const auto& [name, v] : {std::pair{"cfg", &cfg}, std::pair{"cfg_window", &window},
                                  std::pair{"cfg_zero_star", &zero_star}, std::pair{"cfg_schedule", &schedule}})
      if (!v->is_none())
        throw py::value_error(std::string(name) + ": guidance needs the samples' classes: sample(..., classes=...)");
    return;
  }
  if (py::isinstance<py::int_>(classes)) {
    const long c = classes.cast<long>();
    if (c < -1) throw py::value_error("classes: expected a class >= 0, or -1 (unconditional), got " + std::to_string(c));
    s.classes = kinflow::class_labels::Constant(1, c);
    s.classes_all = true;
  } else {
    s.classes = labels_of(classes, "classes", -1);
  }
  if (!cfg.is_none()) s.guidance.scale = cfg.cast<double>();
  if (!window.is_none()) {
    const auto w = window.cast<std::vector<double>>();
    if (w.size() != 2) throw py::value_error("cfg_window: expected a pair (start, end), got " + std::to_string(w.size()) + " numbers");
    s.guidance.window_start = w[0];
    s.guidance.window_end = w[1];
  }
  if (!schedule.is_none()) {
    if (!PyCallable_Check(schedule.ptr())) throw py::type_error("cfg_schedule: expected a callable w(t) -> float");
    s.guidance.schedule = [schedule](double t) {
      py::gil_scoped_acquire gil;
      return schedule(t).cast<double>();
    };
  }
  if (!zero_star.is_none()) {
    s.zero_star = zero_star.cast<long>();
    if (s.zero_star < 0) throw py::value_error("cfg_zero_star: expected a number of steps K >= 0, got " + std::to_string(s.zero_star));
    if (s.adaptive()) throw py::value_error("cfg_zero_star: counts the steps of a fixed grid, not of " + s.solve.method);
    if (s.solve.likelihood.enabled)
      throw py::value_error("cfg_zero_star: its scale depends on x, so the guided field has no exact divergence; "
                            "likelihood=True needs divergence='hutchinson'");
    s.guidance.optimized_scale = true;
    if (s.zero_star > 0) {
      if (s.solve.times.empty() && s.solve.grid.needs_pilot())
        throw py::value_error("cfg_zero_star: counts the steps of a grid known before the solve, not of a pilot grid");
      const kinflow::time_grid<double> grid = s.solve.times.empty()
                                                   ? kinflow::make_grid<double>(s.solve.grid, s.solve.steps)
                                                   : kinflow::time_grid<double>(s.solve.times);
      if (static_cast<std::size_t>(s.zero_star) > grid.steps())
        throw py::value_error("cfg_zero_star: " + std::to_string(s.zero_star) + " steps, the grid has " +
                              std::to_string(grid.steps()));
      s.guidance.zero_until = kinflow::zero_start_time(grid, s.zero_star);
    }
  }
  s.guidance.validate();
}

namespace {

template <class Holder>
py::object sample_labelled(Holder& h, py::handle x0, const sample_settings& given) {
  return with_conditional(h, "classes", [&](const auto& f) -> py::object {
    using Scalar = typename std::decay_t<decltype(f)>::scalar_type;
    dyn_batch<Scalar> X = batch_of<Scalar>(x0, "x0", static_cast<py::ssize_t>(f.dim()));
    return run_guided<Scalar>(kinflow::guided(f, classes_for(given, X.cols()), given.guidance), given, X);
  });
}

/// The class-aware methods and the labels/classes properties of a labelled holder's class.
template <class Holder>
void add_class_methods(py::class_<Holder>& cls) {
  cls.def("velocity", &velocity_of_class<Holder>, py::arg("t"), py::arg("X"), py::arg("classes"))
      .def("__call__", &velocity_of_class<Holder>, py::arg("t"), py::arg("X"), py::arg("classes"))
      .def("velocity_pair", &velocity_pair<Holder>, py::arg("t"), py::arg("X"), py::arg("classes"))
      .def("log_density", &log_density_of_class<Holder>, py::arg("t"), py::arg("X"), py::arg("classes"))
      .def("divergence", &divergence_of_class<Holder>, py::arg("t"), py::arg("X"), py::arg("classes"))
      .def_property_readonly("labels",
                             [](const Holder& h) -> py::object {
                               return h.labelled() ? py::object(vector_array(h.labels)) : py::none();
                             })
      .def_property_readonly("classes", [](const Holder& h) -> py::object {
        if (!h.labelled()) return py::none();
        return with_conditional(h, "classes", [](const auto& f) { return py::int_(f.classes()); });
      });
}

}  // namespace

py::object sample_conditional(empirical_holder& h, py::handle x0, const sample_settings& given) {
  return sample_labelled(h, x0, given);
}

py::object sample_conditional(mixture_holder& h, py::handle x0, const sample_settings& given) {
  return sample_labelled(h, x0, given);
}

py::object sample_mlp_conditional(mlp_holder& h, py::handle x0, const sample_settings& given) {
  return with_field(h, [&](const auto& f) -> py::object {
    using Scalar = typename std::decay_t<decltype(f)>::scalar_type;
    if (f.classes() == 0)
      throw py::value_error("classes: this MLPField takes no class input (its .npz has no 'classes' array); "
                            "sample it without classes=, or train a class-conditional model");
    dyn_batch<Scalar> X = batch_of<Scalar>(x0, "x0", static_cast<py::ssize_t>(f.dim()));
    return run_guided<Scalar>(kinflow::guided(f, classes_for(given, X.cols()), given.guidance), given, X);
  });
}

void init_conditional(py::module_& m) {
  auto mlp = py::reinterpret_borrow<py::class_<mlp_holder>>(m.attr("MLPField"));
  mlp.def("velocity", &mlp_velocity, py::arg("t"), py::arg("X"), py::arg("classes") = py::none())
      .def("__call__", &mlp_velocity, py::arg("t"), py::arg("X"), py::arg("classes") = py::none())
      .def("divergence", &mlp_divergence, py::arg("t"), py::arg("X"), py::arg("classes") = py::none())
      .def("velocity_pair", &mlp_velocity_pair, py::arg("t"), py::arg("X"), py::arg("classes"))
      .def_property_readonly("classes", [](const mlp_holder& h) {
        return with_field(h, [](const auto& f) { return static_cast<long>(f.classes()); });
      });

  auto empirical = py::reinterpret_borrow<py::class_<empirical_holder>>(m.attr("EmpiricalField"));
  add_class_methods(empirical);
  empirical.def("partial_states", &partial_states, py::arg("t"), py::arg("X"), py::arg("classes"),
                py::arg("unconditional") = true);
  auto mixture = py::reinterpret_borrow<py::class_<mixture_holder>>(m.attr("GaussianMixture"));
  add_class_methods(mixture);
}

}  // namespace kinflow_py
