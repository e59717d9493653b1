// kinflow._kinflow.read_idx: the C++ IDX reader (kinflow/data/idx.hpp, with its own gzip
// decoder) behind kinflow.read_idx and kinflow.datasets.fashion_mnist, so that Python and the
// command-line programs read the same files the same way. The public API and its docstrings
// are python/kinflow/__init__.py.
#include "common.hpp"

#include <cstring>
#include <string>

namespace kinflow_py {

namespace {

/// The NumPy dtype of an IDX element type, in the machine's byte order (as idx_array holds it).
py::dtype idx_dtype(kinflow::idx_type type) {
  switch (type) {
    case kinflow::idx_type::u8: return py::dtype::of<std::uint8_t>();
    case kinflow::idx_type::i8: return py::dtype::of<std::int8_t>();
    case kinflow::idx_type::i16: return py::dtype::of<std::int16_t>();
    case kinflow::idx_type::i32: return py::dtype::of<std::int32_t>();
    case kinflow::idx_type::f32: return py::dtype::of<float>();
    case kinflow::idx_type::f64: return py::dtype::of<double>();
  }
  return py::dtype::of<std::uint8_t>();
}

/// The array of the IDX file @p path (its first @p max_items items; 0: all) with the
/// file's shape and element type.
py::array read_idx(const std::string& path, long long max_items) {
  if (max_items < 0)
    throw py::value_error("max_items: expected None (every item) or a count >= 1, got " + std::to_string(max_items));
  kinflow::idx_array a;
  {
    py::gil_scoped_release release;
    a = kinflow::read_idx(path, max_items == 0 ? kinflow::idx_all : static_cast<std::size_t>(max_items));
  }
  std::vector<py::ssize_t> shape(a.shape.begin(), a.shape.end());
  py::array out(idx_dtype(a.type), shape);
  if (!a.bytes.empty()) std::memcpy(out.mutable_data(), a.bytes.data(), a.bytes.size());
  return out;
}

}  // namespace

void init_data(py::module_& m) {
  m.def("read_idx", &read_idx, py::arg("path"), py::arg("max_items") = 0);
  m.def(
      "read_labels",
      [](const std::string& path) {
        kinflow::class_labels labels;
        {
          py::gil_scoped_release release;
          labels = kinflow::read_labels(path);
        }
        return vector_array(labels);
      },
      py::arg("path"));
  m.def(
      "make_labelled_dataset",
      [](const std::string& name, long n, std::uint64_t seed) {
        if (n < 0) throw py::value_error("n: expected a number of points >= 0, got " + std::to_string(n));
        kinflow::labelled_dataset<double> set;
        {
          py::gil_scoped_release release;
          set = kinflow::make_labelled_dataset<double>(name, n, seed);
        }
        return py::make_tuple(rows_of(set.points), vector_array(set.labels), set.classes);
      },
      py::arg("name"), py::arg("n"), py::arg("seed") = 0);
}

}  // namespace kinflow_py
