#pragma once
/// @file
/// @brief The energy classifier-free guidance spends, as integrals along a solve of a
/// kinflow::guided_field (kinflow/fields/guidance.hpp): `½∫‖b‖²`, `∫ w⟨b, Δ⟩` and
/// `½∫ w²‖Δ‖²`, which sum to the solve's kinetic path energy.

#include <functional>

#include <Eigen/Core>

#include "kinflow/core/batch.hpp"
#include "kinflow/fields/guidance.hpp"
#include "kinflow/schedules/kts.hpp"
#include "kinflow/integrators/quadrature.hpp"

namespace kinflow {

/// The three parts of the guided field's kinetic energy as integrals along a solve,
/// `½∫‖b‖²`, `∫ w⟨b, Δ⟩` and `½∫ w²‖Δ‖²` (see the file comment), in
/// `solve_result::integrals[0…2]`: pass it to a solve of @p field, which must outlive the solve. They cost no evaluation
/// (the field keeps its last stage's parts) and sum to the solve's `kpe.total`.
template <class Field>
[[nodiscard]] auto guidance_energy(const guided_field<Field>& field) {
  field.track_energy();
  auto part = [&field](int p) {
    return [&field, p](const auto& T, const auto& X, const auto&, auto& G) { field.energy_part(p, T, X, G); };
  };
  return along(part(0), part(1), part(2));
}

/// One part of the guidance energy as an integrand of one type whatever the guided field's:
/// for programs that compile their solves once for every field (a command line, a Python
/// module) and carry these integrals in every solve. It reads part `part` (0, 1, 2 as in
/// kinflow::guidance_energy) through `*source` (e.g. a lambda calling
/// guided_field::energy_part), scales it by `η(t)²` of the KTS gain `*gain` when the solve
/// integrates `η ṽ` (null: no gain), and is 0 without a source.
template <class Scalar>
struct guidance_energy_ref {
  using batch_type = batch<Scalar, Eigen::Dynamic>;  ///< the solve's batches
  /// Writes part `p` at the stage (T, X) into G.
  using source_type =
      std::function<void(int p, const sample_times<Scalar>& T, const batch_type& X, per_sample<Scalar>& G)>;
  const source_type* source = nullptr;  ///< the parts' source (null or empty: 0)
  const kts_gain* gain = nullptr;       ///< the KTS gain of the solve (null: none)
  int part = 0;                         ///< 0: ½‖b‖², 1: w⟨b, Δ⟩, 2: ½w²‖Δ‖²

  /// The batched integrand (kinflow::batched_path_integrand).
  void operator()(const sample_times<Scalar>& T, const batch_type& X, const batch_type&, per_sample<Scalar>& G) const {
    if (source == nullptr || !*source) {
      G.setZero(X.cols());
      return;
    }
    (*source)(part, T, X, G);
    if (gain != nullptr && !gain->is_identity())
      for (Eigen::Index m = 0; m < G.size(); ++m) {
        const auto eta = static_cast<Scalar>((*gain)(static_cast<double>(T(m))));
        G(m) *= eta * eta;
      }
  }
};

/// The three parts as one kinflow::along bundle of guidance_energy_ref (see there).
template <class Scalar>
[[nodiscard]] auto guidance_energy_refs(const typename guidance_energy_ref<Scalar>::source_type* source,
                                        const kts_gain* gain = nullptr) {
  return along(guidance_energy_ref<Scalar>{source, gain, 0}, guidance_energy_ref<Scalar>{source, gain, 1},
               guidance_energy_ref<Scalar>{source, gain, 2});
}

}  // namespace kinflow
