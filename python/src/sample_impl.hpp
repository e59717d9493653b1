// kinflow.sample()'s solve for any field: the field reaches the solves through a
// kinflow::field_ref or kinflow::exact_field_ref, so they are compiled once, in
// sample_core.cpp, for those two types and not again for every field type.
#pragma once

#include "common.hpp"

#include <algorithm>
#include <chrono>
#include <type_traits>

namespace kinflow_py {

/// The solve of kinflow.sample() on the field of @p ref, a kinflow::field_ref<Scalar> or
/// kinflow::exact_field_ref<Scalar> (sample_core.cpp: explicitly instantiated for both, in
/// float and double).
template <class Scalar, class Ref>
py::object run_sample_ref(Ref& ref, const sample_settings& s, dyn_batch<Scalar>& X, bool release_gil);

/// The solve of kinflow.sample() on @p field, through a reference to it.
template <class Scalar, class Field>
py::object run_sample(Field& field, const sample_settings& s, dyn_batch<Scalar>& X, bool release_gil) {
  return kinflow::with_field_ref<Scalar>(field, X.rows(), [&](auto& ref) -> py::object {
    return run_sample_ref<Scalar>(ref, s, X, release_gil);
  });
}

/// The solve of kinflow.sample(classes=...) on the guided field @p field, with its energy
/// parts carried beside the state (sample_settings::parts).
template <class Scalar, class Guided>
py::object run_guided(const Guided& field, const sample_settings& given, dyn_batch<Scalar>& X) {
  field.track_energy();
  const typename kinflow::guidance_energy_ref<Scalar>::source_type parts =
      [&field](int p, const kinflow::sample_times<Scalar>& T, const dyn_batch<Scalar>& Xs,
               kinflow::per_sample<Scalar>& G) { field.energy_part(p, T, Xs, G); };
  sample_settings s = given;
  if constexpr (std::is_same_v<Scalar, float>)
    s.parts_float = &parts;
  else
    s.parts_double = &parts;
  return run_sample<Scalar>(field, s, X, true);
}

/// sample() for a holder of C++ fields: x0 converted once to the field's precision.
template <class Holder>
py::object sample_holder(Holder& h, py::handle x0, const sample_settings& s) {
  return with_field(h, [&](auto& f) -> py::object {
    using Scalar = typename std::decay_t<decltype(f)>::scalar_type;
    dyn_batch<Scalar> X = batch_of<Scalar>(x0, "x0", static_cast<py::ssize_t>(h.dim()));
    return run_sample<Scalar>(f, s, X, true);
  });
}

}  // namespace kinflow_py
