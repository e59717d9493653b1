// Metrics, toy datasets and seeded noise. Point sets come in as [n, d] arrays and are read
// in place as kinflow's d x n matrices (a copy only when the array is not C-contiguous
// float64); the C++ work runs with the GIL released.
#include "common.hpp"

namespace kinflow_py {

namespace {

using rows64 = py::array_t<double, py::array::c_style | py::array::forcecast>;

rows64 points(py::handle a, const char* name) { return rows_array<double>(a, name); }

std::vector<double> values_of(py::handle a, const char* name) {
  const auto v = vector_of<double>(a, name);
  return std::vector<double>(v.data(), v.data() + v.size());
}

}  // namespace

void init_metrics(py::module_& m) {
  m.def(
      "memorization",
      [](py::handle samples, py::handle train, double ratio, int bootstrap, std::uint64_t seed) {
        const rows64 s = points(samples, "samples"), t = points(train, "train");
        if (bootstrap < 0)
          throw py::value_error("bootstrap: expected a number of resamples >= 0, got " + std::to_string(bootstrap));
        kinflow::memorization_options o;
        o.ratio_threshold = ratio;
        o.bootstrap_resamples = bootstrap;
        o.seed = seed;
        kinflow::memorization_result r;
        {
          py::gil_scoped_release release;
          r = kinflow::memorization(as_map<double>(s), as_map<double>(t), o);
        }
        py::dict d;
        d["fraction"] = r.fraction;
        d["ci"] = py::make_tuple(r.ci_low, r.ci_high);
        d["nn_dist"] = vector_array(r.d1);
        d["nn_dist2"] = vector_array(r.d2);
        d["nn_ratio"] = vector_array(r.ratio);
        d["nearest"] = vector_array(r.nearest);
        py::array_t<bool> mem(static_cast<py::ssize_t>(r.memorized.size()));
        for (Eigen::Index i = 0; i < r.memorized.size(); ++i) mem.mutable_at(i) = r.memorized(i);
        d["memorized"] = mem;
        return d;
      },
      py::arg("samples"), py::arg("train"), py::arg("ratio") = 1.0 / 3.0, py::arg("bootstrap") = 1000,
      py::arg("seed") = 0);

  m.def(
      "sliced_wasserstein2",
      [](py::handle x, py::handle y, int projections, std::uint64_t seed) {
        const rows64 a = points(x, "x"), b = points(y, "y");
        kinflow::sliced_wasserstein_options o;
        o.projections = projections;
        o.seed = seed;
        py::gil_scoped_release release;
        return kinflow::sliced_wasserstein2(as_map<double>(a), as_map<double>(b), o);
      },
      py::arg("x"), py::arg("y"), py::arg("projections") = 256, py::arg("seed") = 0);

  m.def(
      "exact_wasserstein2",
      [](py::handle x, py::handle y) {
        const rows64 a = points(x, "x"), b = points(y, "y");
        kinflow::exact_wasserstein_result r;
        {
          py::gil_scoped_release release;
          r = kinflow::exact_wasserstein2(as_map<double>(a), as_map<double>(b));
        }
        return r.distance;
      },
      py::arg("x"), py::arg("y"));

  m.def(
      "mmd2",
      [](py::handle x, py::handle y, py::object bandwidths) {
        const rows64 a = points(x, "x"), b = points(y, "y");
        kinflow::mmd_options o;
        if (!bandwidths.is_none()) o.bandwidths = values_of(bandwidths, "bandwidths");
        py::gil_scoped_release release;
        return kinflow::mmd2(as_map<double>(a), as_map<double>(b), o).mmd2;
      },
      py::arg("x"), py::arg("y"), py::arg("bandwidths") = py::none());

  m.def(
      "knn_log_density",
      [](py::handle queries, py::handle reference, int k, bool exclude_self) {
        const rows64 q = points(queries, "queries"), r = points(reference, "reference");
        kinflow::knn_density_options o;
        o.k = k;
        o.exclude_self = exclude_self;
        kinflow::per_sample<double> out;
        {
          py::gil_scoped_release release;
          out = kinflow::knn_log_density(as_map<double>(q), as_map<double>(r), o);
        }
        return vector_array(out);
      },
      py::arg("queries"), py::arg("reference"), py::arg("k") = 10, py::arg("exclude_self") = false);

  m.def(
      "spearman",
      [](py::handle x, py::handle y) {
        const auto a = values_of(x, "x"), b = values_of(y, "y");
        return kinflow::spearman(std::span<const double>(a), std::span<const double>(b));
      },
      py::arg("x"), py::arg("y"));

  // --- data
  py::list names;
  for (auto n : kinflow::dataset_names) names.append(py::str(std::string(n)));
  m.attr("dataset_names") = py::tuple(names);
  m.def(
      "make_dataset",
      [](const std::string& name, long n, std::uint64_t seed) {
        if (n < 0) throw py::value_error("n: expected a number of points >= 0, got " + std::to_string(n));
        kinflow::batch<double, 2> x;
        {
          py::gil_scoped_release release;
          x = kinflow::make_dataset<double>(name, n, seed);
        }
        return rows_of(x);
      },
      py::arg("name"), py::arg("n"), py::arg("seed") = 0);
  m.def(
      "standard_normal",
      [](long B, long d, std::uint64_t seed, const std::string& dtype) -> py::array {
        if (B < 0) throw py::value_error("B: expected a number of samples >= 0, got " + std::to_string(B));
        if (dtype == "float32") return rows_of(kinflow::standard_normal<float>(d, B, seed));
        if (dtype == "float64") return rows_of(kinflow::standard_normal<double>(d, B, seed));
        throw py::value_error("dtype: expected 'float64' or 'float32', got '" + dtype + "'");
      },
      py::arg("B"), py::arg("d"), py::arg("seed") = 0, py::arg("dtype") = "float64");
}

}  // namespace kinflow_py
