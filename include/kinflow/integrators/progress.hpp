#pragma once
/// @file
/// @brief Progress of a solve, reported to a callback: for progress bars and for stopping a
/// long solve from outside (a callback that throws ends the solve with its exception).

#include <algorithm>
#include <functional>

namespace kinflow {

/// A solve's progress callback (`fixed_step_options::progress`,
/// `adaptive_options::progress`). It is called on the calling thread with the share of the
/// work done, a number in [0, 1] that never decreases:
///  - fixed-step: after every step of every tile of columns, the share of (column, step)
///    pairs done (structure-of-arrays kernel: after every tile);
///  - adaptive: after every step of the batch, the mean over samples of the share of the time
///    span covered (a sample that has stopped counts as done).
///
/// It is called often (a step may take microseconds): keep it cheap, e.g. look at a clock
/// and do real work only every tenth of a second. **A callback that throws stops the
/// solve**: the exception reaches the caller of integrate / integrate_adaptive, nothing
/// leaks, no result is returned, and the batch holds each sample at some point of its path
/// (the state is valid but partly integrated). This is how a caller cancels a solve.
using progress_callback = std::function<void(double fraction_done)>;

namespace detail {

/// Calls the callback, when there is one, with `done / total` clamped to [0, 1].
inline void report_progress(const progress_callback& progress, double done, double total) {
  if (progress) progress(total > 0 ? std::clamp(done / total, 0.0, 1.0) : 1.0);
}

}  // namespace detail
}  // namespace kinflow
