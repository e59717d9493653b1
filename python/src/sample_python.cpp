// kinflow.sample() with any Python callable f(t, X) -> [B, d] as the field (a NumPy
// function, a torch.nn.Module's wrapper, a lambda). The solve runs with the GIL released;
// each field evaluation takes it back, hands the batch to Python as a [B, d] array and
// checks the answer's shape. An exception raised by the callable (KeyboardInterrupt from
// Ctrl-C included: signals are checked before every call) ends the solve and propagates.
#include "sample_impl.hpp"

namespace kinflow_py {

namespace {

/// The field's answer @p r for the batch X, checked to be [B, d], into V.
template <class Scalar>
void returned_batch(const py::object& r, const dyn_batch<Scalar>& X, dyn_batch<Scalar>& V) {
  const auto B = static_cast<py::ssize_t>(X.cols()), d = static_cast<py::ssize_t>(X.rows());
  py::array a = as_numeric_array(r, "the field's return value");
  if (a.ndim() != 2 || a.shape(0) != B || a.shape(1) != d)
    throw py::value_error("the field returned an array of shape " + shape_text(a) + ", expected (" +
                          std::to_string(B) + ", " + std::to_string(d) + ") = [B, d] like its input X");
  auto c = py::array_t<Scalar, py::array::c_style | py::array::forcecast>::ensure(a);
  V.resize(X.rows(), X.cols());
  if (V.size() > 0) std::memcpy(V.data(), c.data(), sizeof(Scalar) * static_cast<std::size_t>(V.size()));
}

template <class Scalar>
struct python_field {
  const py::object* f;  // a pointer: copies of the field never touch reference counts

  void operator()(Scalar t, const dyn_batch<Scalar>& X, dyn_batch<Scalar>& V) const {
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
    const auto B = static_cast<py::ssize_t>(X.cols()), d = static_cast<py::ssize_t>(X.rows());
    py::array_t<Scalar> x({B, d});
    if (X.size() > 0) std::memcpy(x.mutable_data(), X.data(), sizeof(Scalar) * static_cast<std::size_t>(X.size()));
    returned_batch((*f)(static_cast<double>(t), x), X, V);
  }
};

/// A Python callable f(t, X, c) -> [B, d] as a batched conditional field: `c` is the int64
/// array [B] of the classes of X's rows (-1: unconditional).
template <class Scalar>
struct python_conditional_field {
  const py::object* f;

  void operator()(Scalar t, const dyn_batch<Scalar>& X, const kinflow::class_labels& C, dyn_batch<Scalar>& V) const {
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
    const auto B = static_cast<py::ssize_t>(X.cols()), d = static_cast<py::ssize_t>(X.rows());
    py::array_t<Scalar> x({B, d});
    if (X.size() > 0) std::memcpy(x.mutable_data(), X.data(), sizeof(Scalar) * static_cast<std::size_t>(X.size()));
    py::array_t<long long> c(B);
    for (py::ssize_t j = 0; j < B; ++j) c.mutable_at(j) = static_cast<long long>(C(j));
    returned_batch((*f)(static_cast<double>(t), x, c), X, V);
  }
};

template <class Scalar>
py::object sample_callable_conditional(py::object f, py::handle x0, const sample_settings& given) {
  dyn_batch<Scalar> X = batch_of<Scalar>(x0, "x0");
  return run_guided<Scalar>(
      kinflow::guided(python_conditional_field<Scalar>{&f}, classes_for(given, X.cols()), given.guidance), given, X);
}

template <class Scalar>
py::object sample_callable(py::object f, py::handle x0, const sample_settings& s) {
  dyn_batch<Scalar> X = batch_of<Scalar>(x0, "x0");
  python_field<Scalar> field{&f};
  // The GIL is released around the solve; python_field takes it for every call.
  py::object out = run_sample<Scalar>(field, s, X, true);
  return out;
}

}  // namespace

py::object sample_python_conditional(py::object f, py::handle x0, const sample_settings& s) {
  if (is_float32(x0)) return sample_callable_conditional<float>(std::move(f), x0, s);
  return sample_callable_conditional<double>(std::move(f), x0, s);
}

py::object sample_python(py::object f, py::handle x0, const sample_settings& s) {
  if (is_float32(x0)) return sample_callable<float>(std::move(f), x0, s);
  return sample_callable<double>(std::move(f), x0, s);
}

}  // namespace kinflow_py
