// Faults inside a solve (docs/integrators.md, "Faults"): a field that throws mid-solve, in a
// fixed-step or adaptive solve or inside the threaded closed-form machinery, hands its
// exception to the caller (no std::terminate; nothing leaks under the sanitizers), and the
// batch holds each sample at a point of its own path; a field that returns NaN or Inf for
// some samples marks exactly those non_finite while the others finish with the values they
// get alone. The reference paths are the analytic Euler iterates x0·(1 - h)^k of v = -x and
// the exact solution x0·e^{-t}.

#include <atomic>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "kinflow/detail/field_parallel.hpp"
#include "kinflow/integrators/adaptive.hpp"
#include "kinflow/integrators/explicit_rk.hpp"
#include "kinflow_catch.hpp"

using kinflow::batch;
using kinflow::time_grid;
using dyn = batch<double, Eigen::Dynamic>;

namespace {

struct field_failure : std::runtime_error {
  field_failure() : std::runtime_error("the field failed") {}
};

// v = -x that throws once t passes `fail_after` (a batched field).
struct throwing_decay {
  double fail_after;
  void operator()(double t, const dyn& X, dyn& V) const {
    if (t > fail_after) throw field_failure();
    V = -X;
  }
};

// v = -x, except NaN (or +Inf) for the columns whose first coordinate exceeds `bad_above`
// once t > 0.5: a field that breaks down for some samples only.
struct partly_broken_decay {
  double bad_above;
  bool infinite = false;
  void operator()(double t, const dyn& X, dyn& V) const {
    V = -X;
    if (t <= 0.5) return;
    for (Eigen::Index i = 0; i < X.cols(); ++i)
      if (X(0, i) > bad_above)
        V(1, i) = infinite ? std::numeric_limits<double>::infinity() : std::numeric_limits<double>::quiet_NaN();
  }
};

dyn start_batch(Eigen::Index B) {
  dyn X(2, B);
  for (Eigen::Index i = 0; i < B; ++i) {
    X(0, i) = -1.0 + 2.0 * static_cast<double>(i) / static_cast<double>(B - 1);
    X(1, i) = 0.5 + 0.01 * static_cast<double>(i);
  }
  return X;
}

}  // namespace

TEST_CASE("a field that throws mid-solve: fixed-step, whole batch and tiles", "[faults]") {
  const int N = 20;
  const double h = 1.0 / N;
  for (Eigen::Index tile : {Eigen::Index(0), Eigen::Index(7)}) {
    CAPTURE(tile);
    const dyn X0 = start_batch(30);
    dyn X = X0;
    kinflow::fixed_step_options opt;
    opt.tile_columns = tile;
    CHECK_THROWS_AS(kinflow::integrate(throwing_decay{0.5}, kinflow::euler, time_grid<>::uniform(N), X, opt),
                    field_failure);
    // Every sample is on its own Euler path: x0·(1 - h)^k for one k (k = 0 for tiles not
    // yet written back, 11 for the samples the failing step reached).
    for (Eigen::Index i = 0; i < X.cols(); ++i) {
      bool on_path = false;
      for (int k = 0; k <= N && !on_path; ++k)
        on_path = (X.col(i) - std::pow(1 - h, k) * X0.col(i)).norm() <= 1e-13;
      CHECK(on_path);
    }
    // The same solve without the fault afterwards: exact Euler.
    X = X0;
    const auto r = kinflow::integrate(throwing_decay{2.0}, kinflow::euler, time_grid<>::uniform(N), X, opt);
    CHECK(r.all_success());
    CHECK((X - std::pow(1 - h, N) * X0).norm() <= 1e-13);
  }
}

TEST_CASE("a field that throws mid-solve: adaptive", "[faults]") {
  const dyn X0 = start_batch(9);
  dyn X = X0;
  kinflow::adaptive_options opt;
  opt.rtol = opt.atol = 1e-8;
  CHECK_THROWS_AS(kinflow::integrate_adaptive(throwing_decay{0.4}, kinflow::dopri5, 0.0, 1.0, X, opt),
                  field_failure);
  // Samples on their exact paths x0·e^{-s}, s in [0, 0.4 + one step]: a common factor.
  for (Eigen::Index i = 0; i < X.cols(); ++i) {
    const double f = X(1, i) / X0(1, i);
    CHECK(f <= 1.0);
    CHECK(f >= std::exp(-0.6));
    CHECK(X(0, i) == Approx(f * X0(0, i)).margin(1e-7));
  }
}

TEST_CASE("NaN or Inf from the field for some samples: those non_finite, the others finish",
          "[faults][non_finite]") {
  const dyn X0 = start_batch(21);  // x_0 from -1 to 1: the last 5 samples break (x_0·e^{-t} > 0.4)
  for (bool infinite : {false, true}) {
    CAPTURE(infinite);
    const partly_broken_decay field{0.4 * std::exp(-0.5), infinite};
    {
      dyn X = X0;
      const int N = 50;
      const auto r = kinflow::integrate(field, kinflow::rk4, time_grid<>::uniform(N), X);
      for (Eigen::Index i = 0; i < X.cols(); ++i) {
        CAPTURE(i);
        if (X0(0, i) > 0.62) {  // clearly above the threshold at every t > 0.5
          CHECK(r.status[static_cast<std::size_t>(i)] == kinflow::solve_status::non_finite);
        } else if (X0(0, i) < 0.38) {  // clearly below
          CHECK(r.status[static_cast<std::size_t>(i)] == kinflow::solve_status::success);
          CHECK((X.col(i) - std::exp(-1.0) * X0.col(i)).norm() < 1e-8);
          CHECK(std::isfinite(r.kpe.total(i)));
        }
      }
    }
    {
      dyn X = X0;
      kinflow::adaptive_options opt;
      opt.rtol = opt.atol = 1e-9;
      const auto r = kinflow::integrate_adaptive(field, kinflow::dopri5, 0.0, 1.0, X, opt);
      for (Eigen::Index i = 0; i < X.cols(); ++i) {
        CAPTURE(i);
        if (X0(0, i) > 0.62) {
          CHECK(r.status[static_cast<std::size_t>(i)] == kinflow::solve_status::non_finite);
        } else if (X0(0, i) < 0.38) {
          CHECK(r.status[static_cast<std::size_t>(i)] == kinflow::solve_status::success);
          CHECK((X.col(i) - std::exp(-1.0) * X0.col(i)).norm() < 1e-7);
        }
      }
      // the broken samples never returned NaN into the others' step sizes: the good ones
      // took as many steps as they take alone
      dyn alone = X0.leftCols(3);
      const auto ra = kinflow::integrate_adaptive(field, kinflow::dopri5, 0.0, 1.0, alone, opt);
      for (Eigen::Index i = 0; i < 3; ++i) CHECK(ra.accepted(i) == r.accepted(i));
    }
  }
}

TEST_CASE("an exception in one task of the threaded closed-form machinery reaches the caller",
          "[faults][threads]") {
  for (unsigned workers : {1u, 2u, 4u}) {
    CAPTURE(workers);
    std::atomic<int> ran{0};
    CHECK_THROWS_AS(kinflow::detail::field_parallel_for(workers, 64,
                                                        [&](unsigned, std::size_t k) {
                                                          if (k == 7) throw field_failure();
                                                          ++ran;
                                                        }),
                    field_failure);
    CHECK(ran.load() < 64);  // the remaining tasks are skipped
    // and the machinery works normally afterwards
    std::atomic<int> all{0};
    kinflow::detail::field_parallel_for(workers, 64, [&](unsigned, std::size_t) { ++all; });
    CHECK(all.load() == 64);
  }
}
