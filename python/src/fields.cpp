// The field classes of the Python package: EmpiricalField, GaussianMixture (also what
// smoothed_empirical returns), the MLP of load_mlp, and KTS. Each field keeps the precision
// of the arrays it was built from (float32 or float64); queries are converted to it once.
#include "common.hpp"

namespace kinflow_py {

namespace {

template <class Holder, class Fn>
auto visit_field(const Holder& h, Fn&& fn) {
  return with_field(h, [&](auto& f) { return fn(std::as_const(f)); });
}

/// velocity(t, X) -> [B, d] for any field of a holder.
template <class Holder>
py::array velocity(const Holder& h, double t, py::handle X) {
  return visit_field(h, [&](const auto& f) -> py::array {
    using Scalar = typename std::decay_t<decltype(f)>::scalar_type;
    const dyn_batch<Scalar> x = batch_of<Scalar>(X, "X", static_cast<py::ssize_t>(f.dim()));
    dyn_batch<Scalar> v(x.rows(), x.cols());
    {
      py::gil_scoped_release release;
      f(static_cast<Scalar>(t), x, v);
    }
    return rows_of(v);
  });
}

template <class Holder>
py::array log_density(const Holder& h, double t, py::handle X) {
  return visit_field(h, [&](const auto& f) -> py::array {
    using Scalar = typename std::decay_t<decltype(f)>::scalar_type;
    const dyn_batch<Scalar> x = batch_of<Scalar>(X, "X", static_cast<py::ssize_t>(f.dim()));
    kinflow::per_sample<Scalar> out;
    {
      py::gil_scoped_release release;
      out = f.log_density(static_cast<Scalar>(t), x);
    }
    return vector_array(out);
  });
}

template <class Holder>
py::array posterior_weights(const Holder& h, double t, py::handle X) {
  return visit_field(h, [&](const auto& f) -> py::array {
    using Scalar = typename std::decay_t<decltype(f)>::scalar_type;
    const dyn_batch<Scalar> x = batch_of<Scalar>(X, "X", static_cast<py::ssize_t>(f.dim()));
    Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> W;
    {
      py::gil_scoped_release release;
      f.posterior_weights(static_cast<Scalar>(t), x, W);
    }
    return rows_of(W);  // N x B column-major is [B, N]
  });
}

template <class Holder>
py::array divergence(const Holder& h, double t, py::handle X) {
  return visit_field(h, [&](const auto& f) -> py::array {
    using Scalar = typename std::decay_t<decltype(f)>::scalar_type;
    const dyn_batch<Scalar> x = batch_of<Scalar>(X, "X", static_cast<py::ssize_t>(f.dim()));
    kinflow::per_sample<Scalar> D;
    {
      py::gil_scoped_release release;
      f.divergence(static_cast<Scalar>(t), x, D);
    }
    return vector_array(D);
  });
}

/// A [B, d + 4] array of posterior-state records ([M, W, C, Q, S_1..S_d] per query, mean and
/// trace gathered) as a kinflow::posterior_state of dimension d.
template <class Scalar>
kinflow::posterior_state<Scalar> state_of(py::handle records, Eigen::Index d, const char* name) {
  const dyn_batch<Scalar> r =
      batch_of<Scalar>(records, name, static_cast<py::ssize_t>(kinflow::posterior_state<Scalar>::record_size(d)));
  kinflow::posterior_state<Scalar> out(d, r.cols(), {true, true});
  std::copy_n(r.data(), r.size(), out.data());
  return out;
}

/// The state of @p records (see state_of) for finishing: every record must cover at least
/// one point. An empty record (the merged state of a class no shard has a point of) has no
/// velocity, density or divergence; ValueError naming the row.
template <class Scalar>
kinflow::posterior_state<Scalar> finishable_state_of(py::handle records, Eigen::Index d) {
  auto state = state_of<Scalar>(records, d, "state");
  for (Eigen::Index j = 0; j < state.size(); ++j)
    if (!(state.weight_sum(j) > 0))
      throw py::value_error("state[" + std::to_string(j) +
                            "]: expected a record over at least one point, got an empty one (weight sum " +
                            std::to_string(static_cast<double>(state.weight_sum(j))) +
                            "; its class has no point in any shard)");
  return state;
}

/// partial_state(t, X) -> [B, d + 4]: the field's partial posterior state of X at time t.
py::array partial_state(const empirical_holder& h, double t, py::handle X) {
  return visit_field(h, [&](const auto& f) -> py::array {
    using Scalar = typename std::decay_t<decltype(f)>::scalar_type;
    const dyn_batch<Scalar> x = batch_of<Scalar>(X, "X", static_cast<py::ssize_t>(f.dim()));
    kinflow::posterior_state<Scalar> state;
    {
      py::gil_scoped_release release;
      state = f.partial_state(static_cast<Scalar>(t), x, {true, true});
    }
    return records_of(state);
  });
}

/// velocity_from(t, X, state) -> [B, d].
py::array velocity_from(const empirical_holder& h, double t, py::handle X, py::handle records) {
  return visit_field(h, [&](const auto& f) -> py::array {
    using Scalar = typename std::decay_t<decltype(f)>::scalar_type;
    const dyn_batch<Scalar> x = batch_of<Scalar>(X, "X", static_cast<py::ssize_t>(f.dim()));
    const auto state = finishable_state_of<Scalar>(records, f.dim());
    dyn_batch<Scalar> v;
    f.velocity_from(static_cast<Scalar>(t), x, state, v);
    return rows_of(v);
  });
}

/// log_density_from(t, state, n) -> [B]: log p_t with the normalisation of n points (the
/// whole training set the state was merged over; None: this field's own).
py::array log_density_from(const empirical_holder& h, double t, py::handle records, const py::object& n) {
  return visit_field(h, [&](const auto& f) -> py::array {
    using Scalar = typename std::decay_t<decltype(f)>::scalar_type;
    const auto state = finishable_state_of<Scalar>(records, f.dim());
    kinflow::per_sample<Scalar> out = f.log_density_from(static_cast<Scalar>(t), state);
    if (!n.is_none()) {
      const long total = n.cast<long>();
      if (total < 1) throw py::value_error("n: expected the number of points the state covers, >= 1, got " +
                                           std::to_string(total));
      // log_density_from normalises by this field's N: trade it for n.
      out.array() += static_cast<Scalar>(std::log(static_cast<double>(f.size())) - std::log(static_cast<double>(total)));
    }
    return vector_array(out);
  });
}

/// divergence_from(t, state) -> [B].
py::array divergence_from(const empirical_holder& h, double t, py::handle records) {
  return visit_field(h, [&](const auto& f) -> py::array {
    using Scalar = typename std::decay_t<decltype(f)>::scalar_type;
    const auto state = finishable_state_of<Scalar>(records, f.dim());
    return vector_array(f.divergence_from(static_cast<Scalar>(t), state));
  });
}

/// merge_states([a, b, ...]) -> the records of the union, merged left to right; the
/// precision of the first.
template <class Scalar>
py::array merge_list(const py::list& states) {
  const auto first = py::array::ensure(states[0]);
  if (!first || first.ndim() != 2 || first.shape(1) < 5)
    throw py::value_error("states[0]: expected a [B, d + 4] array of posterior-state records (d >= 1)");
  const Eigen::Index d = static_cast<Eigen::Index>(first.shape(1)) - 4;
  auto merged = state_of<Scalar>(states[0], d, "states[0]");
  for (std::size_t i = 1; i < states.size(); ++i) {
    const std::string name = "states[" + std::to_string(i) + "]";
    const auto next = state_of<Scalar>(states[i], d, name.c_str());
    if (next.size() != merged.size())
      throw py::value_error(name + ": expected " + std::to_string(merged.size()) + " records (one per query), got " +
                            std::to_string(next.size()));
    merged.merge(next);
  }
  return records_of(merged);
}

py::array merge_states(const py::list& states) {
  if (states.empty()) throw py::value_error("states: expected at least one state to merge");
  return is_float32(states[0]) ? merge_list<float>(states) : merge_list<double>(states);
}

template <class Holder>
std::string dtype_name(const Holder& h) {
  return h.is_float() ? "float32" : "float64";
}

kinflow::kts_form parse_form(const std::string& name, const char* param) {
  if (name == "linear") return kinflow::kts_form::linear;
  if (name == "constant") return kinflow::kts_form::constant;
  if (name == "exponential") return kinflow::kts_form::exponential;
  throw py::value_error(std::string(param) + ": expected 'linear', 'constant' or 'exponential', got '" + name + "'");
}

unsigned thread_count(long threads) {
  if (threads < 0) throw py::value_error("threads: expected 0 (all cores) or a count >= 1, got " + std::to_string(threads));
  return static_cast<unsigned>(threads);
}

kinflow::pruning_mode pruning_of(const std::string& name) {
  if (name == "auto") return kinflow::pruning_mode::automatic;
  if (name == "on") return kinflow::pruning_mode::on;
  if (name == "off") return kinflow::pruning_mode::off;
  throw py::value_error("pruning: expected 'auto', 'on' or 'off', got '" + name + "'");
}

/// The closed-form settings shared by both fields' constructors.
template <class Options>
void set_closed_form(Options& o, long threads, const std::string& pruning, double pruning_eps) {
  o.threads = thread_count(threads);
  o.pruning = pruning_of(pruning);
  o.pruning_eps = pruning_eps;
}

/// Calls fn on the holder's field and, for a labelled one, on its class-conditional field:
/// the pruning counts of a field given labels are those of both (the conditional one runs
/// the solves with classes).
template <class Holder, class Fn>
void visit_parts(const Holder& h, Fn&& fn) {
  visit_field(h, fn);
  if constexpr (requires { h.conditional; })
    std::visit(
        [&](const auto& c) {
          if constexpr (!std::is_same_v<std::decay_t<decltype(c)>, std::monostate>) fn(std::as_const(*c));
        },
        h.conditional);
}

/// `field.pruning_statistics(times=None)` as a dict; with the times of a grid, also the
/// counts per step of the passes recorded (record_pruning_passes(True)).
template <class Holder>
py::dict pruning_statistics(const Holder& h, const py::object& times) {
  kinflow::pruning_stats p;
  visit_parts(h, [&p](const auto& f) { p += f.pruning_statistics(); });
  py::dict out;
  out["evaluations"] = p.evaluations;
  out["pruned_evaluations"] = p.pruned_evaluations;
  out["pairs"] = p.pairs;
  out["dense_pairs"] = p.dense_pairs;
  out["touched_share"] = p.touched_share();
  if (times.is_none()) return out;
  std::vector<double> grid;
  try {
    grid = times.cast<std::vector<double>>();
  } catch (const py::cast_error&) {
    throw py::type_error("times: expected a 1-D sequence of the grid's times");
  }
  if (grid.size() < 2)
    throw py::value_error("times: expected the grid's times, at least 2, got " + std::to_string(grid.size()));
  std::vector<kinflow::pruning_pass> passes;
  visit_parts(h, [&passes](const auto& f) {
    const std::vector<kinflow::pruning_pass> q = f.pruning_passes();
    passes.insert(passes.end(), q.begin(), q.end());
  });
  if (passes.empty() && p.evaluations > 0)
    throw py::value_error("times: no pass was recorded; call field.record_pruning_passes(True) before the solve");
  const std::vector<kinflow::pruning_stats> steps = kinflow::pruning_by_step(passes, grid);
  py::array_t<double> share(static_cast<py::ssize_t>(steps.size()));
  py::array_t<std::uint64_t> pairs(static_cast<py::ssize_t>(steps.size())), dense(static_cast<py::ssize_t>(steps.size()));
  for (std::size_t n = 0; n < steps.size(); ++n) {
    share.mutable_at(static_cast<py::ssize_t>(n)) = steps[n].touched_share();
    pairs.mutable_at(static_cast<py::ssize_t>(n)) = steps[n].pairs;
    dense.mutable_at(static_cast<py::ssize_t>(n)) = steps[n].dense_pairs;
  }
  out["touched_share_by_step"] = share;
  out["pairs_by_step"] = pairs;
  out["dense_pairs_by_step"] = dense;
  return out;
}

template <class Holder>
void reset_pruning_statistics(const Holder& h) {
  visit_parts(h, [](const auto& f) { f.reset_pruning_statistics(); });
}

template <class Holder>
void record_pruning_passes(const Holder& h, bool on) {
  visit_parts(h, [on](const auto& f) { f.record_pruning_passes(on); });
}


template <class Scalar>
std::shared_ptr<mixture_t<Scalar>> make_mixture(py::handle means, py::handle stds, py::handle weights, long threads) {
  const dyn_batch<Scalar> mu = batch_of<Scalar>(means, "means");
  const auto s = vector_of<Scalar>(stds, "stds");
  const auto w = vector_of<Scalar>(weights, "weights");
  kinflow::gaussian_mixture_options<Scalar> o;
  o.threads = thread_count(threads);
  return std::make_shared<mixture_t<Scalar>>(w, mu, s, o);
}

template <class Scalar>
std::shared_ptr<mixture_t<Scalar>> make_smoothed(py::handle Y, double s, long threads, const std::string& pruning,
                                                 double pruning_eps) {
  const dyn_batch<Scalar> y = batch_of<Scalar>(Y, "Y");
  kinflow::gaussian_mixture_options<Scalar> o;
  set_closed_form(o, threads, pruning, pruning_eps);
  return std::make_shared<mixture_t<Scalar>>(kinflow::smoothed_empirical(y, static_cast<Scalar>(s), o));
}

}  // namespace

void init_fields(py::module_& m) {
  // --- EmpiricalField
  py::class_<empirical_holder>(m, "EmpiricalField")
      .def(py::init([](py::handle Y, double sigma_min, long threads, const std::string& pruning, double pruning_eps,
                       py::object labels, py::object classes) {
             empirical_holder h;
             h.kind = "EmpiricalField";
             kinflow::closed_form_settings settings;
             set_closed_form(settings, threads, pruning, pruning_eps);
             if (is_float32(Y)) {
               kinflow::empirical_options<float> o;
               static_cast<kinflow::closed_form_settings&>(o) = settings;
               o.sigma_min = static_cast<float>(sigma_min);
               h.field = std::make_shared<empirical_t<float>>(batch_of<float>(Y, "Y"), o);
             } else {
               kinflow::empirical_options<double> o;
               static_cast<kinflow::closed_form_settings&>(o) = settings;
               o.sigma_min = sigma_min;
               h.field = std::make_shared<empirical_t<double>>(batch_of<double>(Y, "Y"), o);
             }
             if (!labels.is_none())
               attach_labels(h, Y, labels, classes, sigma_min, settings);
             else if (!classes.is_none())
               throw py::value_error("classes: the number of classes of labels=...; give labels too");
             return h;
           }),
           py::arg("Y"), py::arg("sigma_min") = 0.0, py::arg("threads") = 0, py::arg("pruning") = "auto",
           py::arg("pruning_eps") = 1e-12, py::arg("labels") = py::none(), py::arg("classes") = py::none())
      .def("pruning_statistics", &pruning_statistics<empirical_holder>, py::arg("times") = py::none())
      .def("reset_pruning_statistics", &reset_pruning_statistics<empirical_holder>)
      .def("record_pruning_passes", &record_pruning_passes<empirical_holder>, py::arg("on") = true)
      .def("velocity", &velocity<empirical_holder>, py::arg("t"), py::arg("X"))
      .def("log_density", &log_density<empirical_holder>, py::arg("t"), py::arg("X"))
      .def("posterior_weights", &posterior_weights<empirical_holder>, py::arg("t"), py::arg("X"))
      .def("divergence", &divergence<empirical_holder>, py::arg("t"), py::arg("X"))
      .def("__call__", &velocity<empirical_holder>, py::arg("t"), py::arg("X"))
      .def("partial_state", &partial_state, py::arg("t"), py::arg("X"))
      .def("velocity_from", &velocity_from, py::arg("t"), py::arg("X"), py::arg("state"))
      .def("log_density_from", &log_density_from, py::arg("t"), py::arg("state"), py::arg("n") = py::none())
      .def("divergence_from", &divergence_from, py::arg("t"), py::arg("state"))
      .def_property_readonly("dim", &empirical_holder::dim)
      .def_property_readonly("size", [](const empirical_holder& h) {
        return visit_field(h, [](const auto& f) { return static_cast<Eigen::Index>(f.size()); });
      })
      .def_property_readonly("dtype", [](const empirical_holder& h) {
        return py::module_::import("numpy").attr("dtype")(dtype_name(h));
      })
      .def_property_readonly("sigma_min", [](const empirical_holder& h) {
        return visit_field(h, [](const auto& f) { return static_cast<double>(f.options().sigma_min); });
      })
      .def("__repr__", [](const empirical_holder& h) {
        return "EmpiricalField(N=" + std::to_string(visit_field(h, [](const auto& f) { return f.size(); })) +
               ", d=" + std::to_string(h.dim()) + ", dtype=" + dtype_name(h) + ")";
      });

  // --- GaussianMixture (and smoothed_empirical)
  py::class_<mixture_holder>(m, "GaussianMixture")
      .def(py::init([](py::handle means, py::handle stds, py::handle weights, long threads) {
             mixture_holder h;
             h.kind = "GaussianMixture";
             if (is_float32(means)) h.field = make_mixture<float>(means, stds, weights, threads);
             else h.field = make_mixture<double>(means, stds, weights, threads);
             return h;
           }),
           py::arg("means"), py::arg("stds"), py::arg("weights"), py::arg("threads") = 0)
      .def("velocity", &velocity<mixture_holder>, py::arg("t"), py::arg("X"))
      .def("log_density", &log_density<mixture_holder>, py::arg("t"), py::arg("X"))
      .def("posterior_weights", &posterior_weights<mixture_holder>, py::arg("t"), py::arg("X"))
      .def("divergence", &divergence<mixture_holder>, py::arg("t"), py::arg("X"))
      .def("__call__", &velocity<mixture_holder>, py::arg("t"), py::arg("X"))
      .def("pruning_statistics", &pruning_statistics<mixture_holder>, py::arg("times") = py::none())
      .def("reset_pruning_statistics", &reset_pruning_statistics<mixture_holder>)
      .def("record_pruning_passes", &record_pruning_passes<mixture_holder>, py::arg("on") = true)
      .def_property_readonly("dim", &mixture_holder::dim)
      .def_property_readonly("size", [](const mixture_holder& h) {
        return visit_field(h, [](const auto& f) { return static_cast<Eigen::Index>(f.size()); });
      })
      .def_property_readonly("dtype", [](const mixture_holder& h) {
        return py::module_::import("numpy").attr("dtype")(dtype_name(h));
      })
      .def_property_readonly("weights", [](const mixture_holder& h) {
        return visit_field(h, [](const auto& f) -> py::array { return vector_array(f.weights()); });
      })
      .def_property_readonly("stds", [](const mixture_holder& h) {
        return visit_field(h, [](const auto& f) -> py::array { return vector_array(f.stds()); });
      })
      .def("__repr__", [](const mixture_holder& h) {
        return "GaussianMixture(K=" + std::to_string(visit_field(h, [](const auto& f) { return f.size(); })) +
               ", d=" + std::to_string(h.dim()) + ", dtype=" + dtype_name(h) + ")";
      });

  m.def("merge_states", &merge_states, py::arg("states"));

  m.def(
      "smoothed_empirical",
      [](py::handle Y, double s, long threads, const std::string& pruning, double pruning_eps, py::object labels,
         py::object classes) {
        mixture_holder h;
        h.kind = "GaussianMixture";
        if (is_float32(Y)) h.field = make_smoothed<float>(Y, s, threads, pruning, pruning_eps);
        else h.field = make_smoothed<double>(Y, s, threads, pruning, pruning_eps);
        if (!labels.is_none()) {
          kinflow::closed_form_settings settings;
          set_closed_form(settings, threads, pruning, pruning_eps);
          attach_labels(h, Y, labels, classes, s, settings);
        } else if (!classes.is_none()) {
          throw py::value_error("classes: the number of classes goes with labels=");
        }
        return h;
      },
      py::arg("Y"), py::arg("s"), py::arg("threads") = 0, py::arg("pruning") = "auto", py::arg("pruning_eps") = 1e-12,
      py::arg("labels") = py::none(), py::arg("classes") = py::none());

  // --- MLP models (.npz)
  // (velocity, divergence and __call__, which take classes=, are in conditional.cpp)
  py::class_<mlp_holder>(m, "MLPField")
      .def_property_readonly("dim", &mlp_holder::dim)
      .def_property_readonly("dtype", [](const mlp_holder& h) {
        return py::module_::import("numpy").attr("dtype")(dtype_name(h));
      })
      .def("__repr__", [](const mlp_holder& h) {
        return "MLPField(d=" + std::to_string(h.dim()) + ", dtype=" + dtype_name(h) + ")";
      });
  m.def(
      "load_mlp",
      [](const std::string& path, const std::string& dtype) {
        mlp_holder h;
        h.kind = "MLPField";
        if (dtype == "float32") h.field = std::make_shared<mlp_t<float>>(kinflow::load_mlp_field<float>(path));
        else if (dtype == "float64") h.field = std::make_shared<mlp_t<double>>(kinflow::load_mlp_field<double>(path));
        else throw py::value_error("dtype: expected 'float64' or 'float32', got '" + dtype + "'");
        return h;
      },
      py::arg("path"), py::arg("dtype") = "float64");

  // --- KTS
  py::class_<kts_holder>(m, "KTS")
      .def(py::init([](double alpha0, double beta0, double tau, double k, const std::string& early,
                       const std::string& late) {
             kts_holder h;
             h.options.alpha0 = alpha0;
             h.options.beta0 = beta0;
             h.options.tau = tau;
             h.options.k = k;
             h.options.early_form = parse_form(early, "early");
             h.options.late_form = parse_form(late, "late");
             (void)kinflow::kts_gain(h.options);  // validates: ValueError naming the parameter
             return h;
           }),
           py::arg("alpha0") = 0.0, py::arg("beta0") = 0.0, py::arg("tau") = 0.6, py::arg("k") = 3.0,
           py::arg("early") = "linear", py::arg("late") = "exponential")
      .def_property_readonly("alpha0", [](const kts_holder& h) { return h.options.alpha0; })
      .def_property_readonly("beta0", [](const kts_holder& h) { return h.options.beta0; })
      .def_property_readonly("tau", [](const kts_holder& h) { return h.options.tau; })
      .def_property_readonly("k", [](const kts_holder& h) { return h.options.k; })
      .def_property_readonly("early", [](const kts_holder& h) { return std::string(kinflow::to_string(h.options.early_form)); })
      .def_property_readonly("late", [](const kts_holder& h) { return std::string(kinflow::to_string(h.options.late_form)); })
      .def("eta", [](const kts_holder& h, double t) { return kinflow::kts_gain(h.options)(t); }, py::arg("t"))
      .def("integral", [](const kts_holder& h) { return kinflow::kts_gain(h.options).integral(); })
      .def("__repr__", [](const kts_holder& h) {
        const auto& o = h.options;
        return "KTS(alpha0=" + kinflow::detail::to_text(o.alpha0) + ", beta0=" + kinflow::detail::to_text(o.beta0) +
               ", tau=" + kinflow::detail::to_text(o.tau) + ", k=" + kinflow::detail::to_text(o.k) + ", early='" +
               kinflow::to_string(o.early_form) + "', late='" + kinflow::to_string(o.late_form) + "')";
      });
}

}  // namespace kinflow_py
