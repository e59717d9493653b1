// kinflow.sample() with the C++ fields (double and float): each field reaches the solves of
// sample_core.cpp through a reference, so only the call-through is compiled here.
#include "sample_impl.hpp"

namespace kinflow_py {

py::object sample_empirical(empirical_holder& h, py::handle x0, const sample_settings& s) { return sample_holder(h, x0, s); }
py::object sample_mixture(mixture_holder& h, py::handle x0, const sample_settings& s) { return sample_holder(h, x0, s); }
py::object sample_mlp(mlp_holder& h, py::handle x0, const sample_settings& s) { return sample_holder(h, x0, s); }

}  // namespace kinflow_py
