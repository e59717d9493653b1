#pragma once
/// @file
/// @brief Private machinery of the closed-form fields and of sliced_wasserstein2: running
/// independent tasks on a few worker threads (OpenMP when the translation unit is compiled
/// with it, std::thread otherwise).
///
/// Tasks are handed out from a shared counter, so which worker runs a task never changes
/// what the task computes: results do not depend on the number of threads.

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <thread>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace kinflow::detail {

/// Hardware threads available to kinflow (at least 1).
inline unsigned field_hardware_threads() noexcept {
#ifdef _OPENMP
  const int n = omp_get_max_threads();
  return n > 0 ? static_cast<unsigned>(n) : 1u;
#else
  const unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? n : 1u;
#endif
}

/// Worker count for a request (0 = all hardware threads), never more than @p tasks.
inline unsigned field_worker_count(unsigned requested, std::size_t tasks) noexcept {
  const unsigned want = requested == 0 ? field_hardware_threads() : requested;
  const std::size_t capped = std::min<std::size_t>(want, std::max<std::size_t>(tasks, 1));
  return static_cast<unsigned>(std::max<std::size_t>(capped, 1));
}

/// Calls `body(worker, task)` for every task in [0, tasks), on at most @p workers threads
/// (the calling thread is one of them). `worker` is in [0, workers): each worker may own
/// scratch memory indexed by it. An exception thrown by a task is rethrown here after all
/// workers have stopped; the remaining tasks are then skipped.
template <class Body>
void field_parallel_for(unsigned workers, std::size_t tasks, Body&& body) {
  if (workers <= 1 || tasks <= 1) {
    for (std::size_t k = 0; k < tasks; ++k) body(0u, k);
    return;
  }
  std::atomic<std::size_t> next{0};
  std::atomic<bool> failed{false};
  std::vector<std::exception_ptr> errors(workers);
  auto run = [&](unsigned w) {
    try {
      for (std::size_t k = next.fetch_add(1); k < tasks && !failed.load(std::memory_order_relaxed);
           k = next.fetch_add(1))
        body(w, k);
    } catch (...) {
      errors[w] = std::current_exception();
      failed.store(true);
    }
  };
#ifdef _OPENMP
  // Eigen's own products see omp_get_num_threads() > 1 here and stay single-threaded.
#pragma omp parallel num_threads(static_cast<int>(workers))
  run(static_cast<unsigned>(omp_get_thread_num()));
#else
  std::vector<std::thread> pool;
  pool.reserve(workers - 1);
  try {
    for (unsigned w = 1; w < workers; ++w) pool.emplace_back(run, w);
  } catch (...) {
    // Could not start every thread: the ones running and this one share the work.
  }
  run(0u);
  for (auto& th : pool) th.join();
#endif
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace kinflow::detail
