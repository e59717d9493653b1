// An observer for the per-step pruning tests: after every step of a solve it reads the
// field's pruning counters and records what the step added. With Euler and midpoint every
// evaluation of step n lies in [t_n, t_{n+1}), so these counts are the oracle that the
// recorded passes binned by kinflow::pruning_by_step must reproduce.
#pragma once

#include <vector>

#include <kinflow/fields/posterior_engine.hpp>

namespace kinflow_test {

/// An observer (pass it to kinflow::integrate) appending each step's counts to @p seen.
template <class Field>
auto pruning_step_observer(const Field& field, std::vector<kinflow::pruning_stats>& seen) {
  return [&field, &seen, before = kinflow::pruning_stats{}](const auto&) mutable {
    const kinflow::pruning_stats now = field.pruning_statistics();
    seen.push_back({now.evaluations - before.evaluations, now.pruned_evaluations - before.pruned_evaluations,
                    now.pairs - before.pairs, now.dense_pairs - before.dense_pairs});
    before = now;
  };
}

}  // namespace kinflow_test
