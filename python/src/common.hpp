// Shared pieces of the kinflow Python bindings: array conversion between NumPy's [B, d]
// (one row per sample, C order) and kinflow's d x B column-major batches, the field
// holders, and the sampling settings.
//
// A C-contiguous [B, d] array has the memory layout of a column-major d x B matrix, so the
// conversion is a map (no copy) where the C++ side accepts an Eigen expression, and one copy
// per call where it needs its own batch; never one per step for C++ fields.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <kinflow/kinflow.hpp>

#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace kinflow_py {

namespace py = pybind11;

template <class Scalar>
using dyn_batch = kinflow::batch<Scalar, Eigen::Dynamic>;
template <class Scalar>
using const_map = Eigen::Map<const Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>>;

/// "(3, 2)" for a shape.
inline std::string shape_text(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) {
    if (i) s += ", ";
    s += std::to_string(a.shape(i));
  }
  if (a.ndim() == 1) s += ",";
  return s + ")";
}

/// np.asarray(obj), with torch tensors (anything with .detach/.numpy) brought to NumPy first;
/// TypeError unless the result is numeric.
inline py::array as_numeric_array(py::handle obj, const char* name) {
  py::object o = py::reinterpret_borrow<py::object>(obj);
  if (!py::isinstance<py::array>(o)) {
    if (py::hasattr(o, "detach") && py::hasattr(o, "numpy")) {
      o = o.attr("detach")();
      if (py::hasattr(o, "cpu")) o = o.attr("cpu")();
      o = o.attr("numpy")();
    }
  }
  if (o.is_none() || py::isinstance<py::str>(o) || py::isinstance<py::bytes>(o))
    throw py::type_error(std::string(name) + ": expected an array of numbers, got " +
                         std::string(py::str(py::type::handle_of(o).attr("__name__"))));
  py::array a = py::module_::import("numpy").attr("asarray")(o);
  const char kind = a.dtype().kind();
  if (kind != 'f' && kind != 'i' && kind != 'u' && kind != 'b')
    throw py::type_error(std::string(name) + ": expected an array of numbers, got dtype " +
                         std::string(py::str(a.dtype())));
  return a;
}

/// True when @p obj is (or holds) float32 data.
inline bool is_float32(py::handle obj) {
  if (py::isinstance<py::array>(obj)) return py::reinterpret_borrow<py::array>(obj).dtype().kind() == 'f' &&
                                              py::reinterpret_borrow<py::array>(obj).dtype().itemsize() == 4;
  if (py::hasattr(obj, "dtype")) {
    const std::string s = py::str(obj.attr("dtype"));
    return s == "float32" || s == "torch.float32";
  }
  return false;
}

/// A 2-D [rows, cols] array of Scalar, C-contiguous (converted if needed, once).
template <class Scalar>
py::array_t<Scalar, py::array::c_style | py::array::forcecast> rows_array(py::handle obj, const char* name,
                                                                            py::ssize_t cols = -1) {
  py::array a = as_numeric_array(obj, name);
  if (a.ndim() != 2)
    throw py::value_error(std::string(name) + ": expected a 2-D array [B, d] (one row per sample), got shape " +
                          shape_text(a));
  if (cols >= 0 && a.shape(1) != cols)
    throw py::value_error(std::string(name) + ": expected " + std::to_string(cols) +
                          " columns (the dimension d), got shape " + shape_text(a));
  return py::array_t<Scalar, py::array::c_style | py::array::forcecast>::ensure(a);
}

/// The d x B column-major view of a C-contiguous [B, d] array (no copy).
template <class Scalar>
const_map<Scalar> as_map(const py::array_t<Scalar, py::array::c_style | py::array::forcecast>& a) {
  return const_map<Scalar>(a.data(), a.shape(1), a.shape(0));
}

/// A 1-D array of Scalar.
template <class Scalar>
Eigen::Matrix<Scalar, Eigen::Dynamic, 1> vector_of(py::handle obj, const char* name) {
  py::array a = as_numeric_array(obj, name);
  if (a.ndim() != 1)
    throw py::value_error(std::string(name) + ": expected a 1-D array, got shape " + shape_text(a));
  auto c = py::array_t<Scalar, py::array::c_style | py::array::forcecast>::ensure(a);
  return Eigen::Map<const Eigen::Matrix<Scalar, Eigen::Dynamic, 1>>(c.data(), c.shape(0));
}

/// The batch (d x B) of a [B, d] array, copied once.
template <class Scalar>
dyn_batch<Scalar> batch_of(py::handle obj, const char* name, py::ssize_t cols = -1) {
  auto a = rows_array<Scalar>(obj, name, cols);
  return as_map<Scalar>(a);
}

/// A [B, d] NumPy array of a d x B matrix (one copy).
template <class Derived>
py::array rows_of(const Eigen::MatrixBase<Derived>& M) {
  using Scalar = typename Derived::Scalar;
  const Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> m = M;
  py::array_t<Scalar> out({static_cast<py::ssize_t>(m.cols()), static_cast<py::ssize_t>(m.rows())});
  if (m.size() > 0) std::memcpy(out.mutable_data(), m.data(), sizeof(Scalar) * static_cast<std::size_t>(m.size()));
  return out;
}

/// A 1-D NumPy array of a vector.
template <class Derived>
py::array vector_array(const Eigen::MatrixBase<Derived>& v) {
  using Scalar = typename Derived::Scalar;
  py::array_t<Scalar> out(static_cast<py::ssize_t>(v.size()));
  for (Eigen::Index i = 0; i < v.size(); ++i) out.mutable_at(i) = v(i);
  return out;
}

/// A posterior state's records as a [B, d + 4] array ([M, W, C, Q, S_1..S_d] per query).
template <class Scalar>
py::array records_of(const kinflow::posterior_state<Scalar>& state) {
  const Eigen::Index rows = kinflow::posterior_state<Scalar>::record_size(state.dim());
  return rows_of(Eigen::Map<const Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>>(state.data(), rows,
                                                                                          state.size()));
}

// ---------------------------------------------------------------------------------------
// Fields

/// A closed-form or model field in one precision; the Python classes hold one of each kind.
template <class Scalar>
using empirical_t = kinflow::empirical_field<Scalar>;
template <class Scalar>
using mixture_t = kinflow::gaussian_mixture_field<Scalar>;
template <class Scalar>
using mlp_t = kinflow::mlp_field<Scalar>;

template <template <class> class F>
struct field_holder {
  std::variant<std::shared_ptr<F<double>>, std::shared_ptr<F<float>>> field;
  std::string kind;  // "EmpiricalField", ...
  bool is_float() const { return field.index() == 1; }
  Eigen::Index dim() const {
    return std::visit([](const auto& f) { return static_cast<Eigen::Index>(f->dim()); }, field);
  }
};

/// Fields whose evaluation writes buffers inside the object (kinflow::mlp_field: "copy it
/// per thread"). Every call from Python works on its own copy of such a field, so that
/// several Python threads may use one field object at once (the GIL is released while it
/// runs); the closed-form fields are evaluated in place, as they may be.
template <class F>
inline constexpr bool evaluates_in_buffers = false;
template <class Scalar>
inline constexpr bool evaluates_in_buffers<kinflow::mlp_field<Scalar>> = true;

/// Calls fn(field) with the holder's field, or with a copy of it for fields that evaluate
/// in their own buffers (see evaluates_in_buffers).
template <class Holder, class Fn>
decltype(auto) with_field(const Holder& h, Fn&& fn) {
  return std::visit(
      [&](const auto& f) -> decltype(auto) {
        using F = typename std::decay_t<decltype(f)>::element_type;
        if constexpr (evaluates_in_buffers<F>) {
          F local = *f;
          return fn(local);
        } else {
          return fn(*f);
        }
      },
      h.field);
}

/// The exact class-conditional field (EmpiricalField with labels).
template <class Scalar>
using conditional_t = kinflow::class_conditional_field<Scalar>;

/// The smoothed class-conditional field (smoothed_empirical with labels).
template <class Scalar>
using smoothed_conditional_t = kinflow::smoothed_class_conditional_field<Scalar>;

/// A field of all the points, and with labels also its class-conditional field C (a second
/// copy of the points, split by class; conditional.cpp).
template <template <class> class F, template <class> class C>
struct labelled_holder : field_holder<F> {
  std::variant<std::monostate, std::shared_ptr<C<double>>, std::shared_ptr<C<float>>> conditional;
  kinflow::class_labels labels;  // one per point; empty without labels
  bool labelled() const { return conditional.index() != 0; }
};
/// EmpiricalField (with labels: the exact class-conditional field).
using empirical_holder = labelled_holder<empirical_t, conditional_t>;
/// GaussianMixture (smoothed_empirical with labels: the smoothed class-conditional field).
using mixture_holder = labelled_holder<mixture_t, smoothed_conditional_t>;
using mlp_holder = field_holder<mlp_t>;

// ---------------------------------------------------------------------------------------
// Sampling

/// KTS parameters as the Python KTS object holds them (validated on construction).
struct kts_holder {
  kinflow::kts_options options;
};

/// Everything sample() takes besides the field and x0, parsed and validated.
struct sample_settings {
  /// The solve itself (method, grid, energy, likelihood, stochastic options), which
  /// kinflow::solve_with runs as the command line's does.
  kinflow::solve_settings solve{};
  kinflow::kts_options kts{};
  bool has_kts = false;
  /// callback(step, t, X, V) after every step of a fixed grid (None: no callback).
  py::object callback = py::none();
  /// along=[g, ...]: the user's integrands g(t, X, V) -> [B] (empty: none).
  std::vector<py::object> along;
  bool trajectories = false;
  /// sample(classes=...): one class per sample (or one for all, `classes_all`), and the
  /// guidance (cfg, cfg_window, cfg_zero_star, cfg_schedule; conditional.cpp).
  std::optional<kinflow::class_labels> classes;
  bool classes_all = false;
  kinflow::guidance_options guidance{};
  long zero_star = -1;  // CFG-Zero*'s zero start in steps of the grid; -1: off
  /// Guided solves: the guided field's energy parts, read by every solve's integrands (null:
  /// no guidance), in the field's precision.
  const kinflow::guidance_energy_ref<float>::source_type* parts_float = nullptr;
  const kinflow::guidance_energy_ref<double>::source_type* parts_double = nullptr;
  template <class Scalar>
  const typename kinflow::guidance_energy_ref<Scalar>::source_type* parts() const {
    if constexpr (std::is_same_v<Scalar, float>)
      return parts_float;
    else
      return parts_double;
  }
  bool adaptive() const { return solve.adaptive(); }
  bool stochastic() const { return solve.stochastic_method(); }
};

/// What sample() returns to Python (a plain object with attributes).
py::object make_result(py::dict attributes);

/// The solve itself, for one field type and precision; defined in sample_impl.hpp.
template <class Scalar, class Field>
py::object run_sample(Field& field, const sample_settings& s, dyn_batch<Scalar>& X, bool release_gil);

// Entry points per field kind (sample_*.cpp).
py::object sample_empirical(empirical_holder& h, py::handle x0, const sample_settings& s);
py::object sample_mixture(mixture_holder& h, py::handle x0, const sample_settings& s);
py::object sample_mlp(mlp_holder& h, py::handle x0, const sample_settings& s);
py::object sample_python(py::object f, py::handle x0, const sample_settings& s);
/// sample(classes=...) of a labelled EmpiricalField or smoothed GaussianMixture, guided (conditional.cpp).
py::object sample_conditional(empirical_holder& h, py::handle x0, const sample_settings& s);
py::object sample_conditional(mixture_holder& h, py::handle x0, const sample_settings& s);
/// sample(classes=...) of a Python callable f(t, X, c) (sample_python.cpp).
py::object sample_python_conditional(py::object f, py::handle x0, const sample_settings& s);
/// sample(classes=...) of a class-conditional MLPField, guided (conditional.cpp).
py::object sample_mlp_conditional(mlp_holder& h, py::handle x0, const sample_settings& s);
/// Reads sample()'s classes= and cfg* arguments into @p s (conditional.cpp).
void parse_guidance(sample_settings& s, const py::object& classes, const py::object& cfg, const py::object& window,
                    const py::object& zero_star, const py::object& schedule);
/// The classes of the B samples of a solve: s.classes, broadcast when one for all.
kinflow::class_labels classes_for(const sample_settings& s, Eigen::Index B);
/// Builds the class-conditional field of EmpiricalField(Y, labels=...) into @p h.
void attach_labels(empirical_holder& h, py::handle Y, py::handle labels, const py::object& classes, double sigma_min,
                   const kinflow::closed_form_settings& settings);
/// Builds the smoothed class-conditional field of smoothed_empirical(Y, s, labels=...) into @p h.
void attach_labels(mixture_holder& h, py::handle Y, py::handle labels, const py::object& classes, double s,
                   const kinflow::closed_form_settings& settings);
void init_conditional(py::module_& m);

void init_fields(py::module_& m);
void init_metrics(py::module_& m);
void init_data(py::module_& m);

}  // namespace kinflow_py
