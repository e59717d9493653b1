#pragma once
/// @file
/// @brief Umbrella header: includes every public kinflow header.
///
/// `#include <kinflow/kinflow.hpp>` gives the whole library. Headers in `detail/` and
/// `kernels/` folders are private machinery and are not listed here.
///
/// This list is kept by hand: a new public header must be added below (the header
/// self-containment test compiles this file together with every header, and the
/// consumer tests include it).

#include "kinflow/version.hpp"

#include "kinflow/core/batch.hpp"
#include "kinflow/core/batch_columns.hpp"
#include "kinflow/core/concepts.hpp"
#include "kinflow/core/conditions.hpp"
#include "kinflow/core/errors.hpp"
#include "kinflow/core/field_evaluator.hpp"
#include "kinflow/core/products.hpp"

#include "kinflow/data/csv.hpp"
#include "kinflow/data/gzip.hpp"
#include "kinflow/data/idx.hpp"
#include "kinflow/data/labels.hpp"
#include "kinflow/data/random.hpp"
#include "kinflow/data/toy2d.hpp"
#include "kinflow/data/toy2d_generators.hpp"
#include "kinflow/data/toy2d_shuffled.hpp"

#include "kinflow/energy/kpe.hpp"

#include "kinflow/fields/class_conditional.hpp"
#include "kinflow/fields/closed_form.hpp"
#include "kinflow/fields/divergence.hpp"
#include "kinflow/fields/hutchinson.hpp"
#include "kinflow/fields/empirical.hpp"
#include "kinflow/fields/field_ref.hpp"
#include "kinflow/fields/gaussian_mixture.hpp"
#include "kinflow/fields/guidance.hpp"
#include "kinflow/fields/posterior_engine.hpp"
#include "kinflow/fields/posterior_state.hpp"
#include "kinflow/fields/shaped.hpp"
#include "kinflow/fields/smoothed_empirical.hpp"
#include "kinflow/fields/velocity_divergence.hpp"

#include "kinflow/integrators/adaptive.hpp"
#include "kinflow/integrators/adaptive_options.hpp"
#include "kinflow/integrators/controller.hpp"
#include "kinflow/integrators/energy_grid.hpp"
#include "kinflow/integrators/guidance_energy.hpp"
#include "kinflow/integrators/pilot_grid.hpp"
#include "kinflow/integrators/explicit_rk.hpp"
#include "kinflow/integrators/fixed_grid.hpp"
#include "kinflow/integrators/likelihood.hpp"
#include "kinflow/integrators/methods.hpp"
#include "kinflow/integrators/multistep.hpp"
#include "kinflow/integrators/multistep_methods.hpp"
#include "kinflow/integrators/progress.hpp"
#include "kinflow/integrators/quadrature.hpp"
#include "kinflow/integrators/result.hpp"
#include "kinflow/integrators/solve_settings.hpp"
#include "kinflow/integrators/tableau.hpp"
#include "kinflow/integrators/diffusion.hpp"
#include "kinflow/integrators/stochastic.hpp"
#include "kinflow/integrators/stochastic_options.hpp"

#include "kinflow/metrics/density.hpp"
#include "kinflow/metrics/memorization.hpp"
#include "kinflow/metrics/mmd.hpp"
#include "kinflow/metrics/nearest_neighbors.hpp"
#include "kinflow/metrics/rank_correlation.hpp"
#include "kinflow/metrics/wasserstein.hpp"

#include "kinflow/models/mlp_evaluator.hpp"
#include "kinflow/models/mlp.hpp"
#include "kinflow/models/mlp_layers.hpp"
#include "kinflow/models/mlp_npz.hpp"
#include "kinflow/models/npz.hpp"

#include "kinflow/schedules/grid_spec.hpp"
#include "kinflow/schedules/kts.hpp"
#include "kinflow/schedules/time_grid.hpp"
