// kinflow.sample() with a mixture field (double and float).
#include "sample_impl.hpp"

namespace kinflow_py {

py::object sample_mixture(mixture_holder& h, py::handle x0, const sample_settings& s) { return sample_holder(h, x0, s); }

}  // namespace kinflow_py
