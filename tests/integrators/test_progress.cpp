// Progress callbacks of the solves (kinflow/integrators/progress.hpp): the shares reported
// never decrease, stay in [0, 1] and end at 1, once per step of every tile (or per tile for
// the structure-of-arrays kernel); a callback that throws stops the solve with its exception
// and leaves every sample at a point of its own discrete path, which the test recomputes
// from the analytic Euler iterates x0·(1 - h)^k of v = -x.

#include <cmath>
#include <stdexcept>
#include <vector>

#include "kinflow/integrators/adaptive.hpp"
#include "kinflow/integrators/explicit_rk.hpp"
#include "kinflow_catch.hpp"

using kinflow::batch;
using kinflow::time_grid;

namespace {

// v = -x, batched and per sample (fixed dimension 2).
struct decay_batched {
  template <class Scalar, int Dim>
  void operator()(Scalar, const batch<Scalar, Dim>& X, batch<Scalar, Dim>& V) const {
    V = -X;
  }
};
struct decay_point {
  kinflow::point<double, 2> operator()(double, const kinflow::point<double, 2>& x) const { return -x; }
};

struct stop_solve : std::runtime_error {
  stop_solve() : std::runtime_error("stopped by the progress callback") {}
};

// Records every share and checks the contract as it goes.
struct recorder {
  std::vector<double> shares;
  kinflow::progress_callback callback() {
    return [this](double f) { shares.push_back(f); };
  }
  void check_complete() const {
    REQUIRE_FALSE(shares.empty());
    for (std::size_t i = 0; i < shares.size(); ++i) {
      CHECK(shares[i] >= 0.0);
      CHECK(shares[i] <= 1.0);
      if (i > 0) CHECK(shares[i] >= shares[i - 1]);
    }
    CHECK(shares.back() == 1.0);
  }
};

template <int Dim>
batch<double, Dim> start_batch(Eigen::Index B) {
  batch<double, Dim> X(2, B);
  for (Eigen::Index i = 0; i < B; ++i) {
    X(0, i) = 1.0 + 0.01 * static_cast<double>(i);
    X(1, i) = -0.5 + 0.003 * static_cast<double>(i);
  }
  return X;
}

// The number of Euler steps k for which column i of X is x0·(1 - h)^k (-1 when none is).
template <int Dim>
int euler_steps_taken(const batch<double, Dim>& X, const batch<double, Dim>& X0, Eigen::Index i, double h,
                      int steps) {
  for (int k = 0; k <= steps; ++k) {
    const double f = std::pow(1.0 - h, k);
    if ((X.col(i) - f * X0.col(i)).norm() <= 1e-13 * X0.col(i).norm()) return k;
  }
  return -1;
}

}  // namespace

TEST_CASE("fixed-step progress: once per step of every tile, ending at 1", "[progress]") {
  const Eigen::Index B = 50;
  const int N = 7;
  for (Eigen::Index tile : {Eigen::Index(0), Eigen::Index(16), Eigen::Index(50)}) {
    CAPTURE(tile);
    batch<double, Eigen::Dynamic> X = start_batch<Eigen::Dynamic>(B);
    recorder rec;
    kinflow::fixed_step_options opt;
    opt.tile_columns = tile;
    opt.progress = rec.callback();
    kinflow::integrate(decay_batched{}, kinflow::euler, time_grid<>::uniform(N), X, opt);
    rec.check_complete();
    const Eigen::Index tiles = tile == 16 ? 4 : 1;  // 0 picks one tile of >= 4096 columns
    CHECK(rec.shares.size() == static_cast<std::size_t>(tiles * N));
  }
}

TEST_CASE("fixed-step progress of per-sample fields, fused and structure-of-arrays", "[progress]") {
  const Eigen::Index B = 3000;
  const int N = 5;
  for (auto kernel : {kinflow::per_sample_kernel::interleaved, kinflow::per_sample_kernel::structure_of_arrays}) {
    batch<double, 2> X = start_batch<2>(B);
    recorder rec;
    kinflow::fixed_step_options opt;
    opt.kernel = kernel;
    opt.tile_columns = 1000;
    opt.progress = rec.callback();
    kinflow::integrate(decay_point{}, kinflow::rk4, time_grid<>::uniform(N), X, opt);
    rec.check_complete();
    if (kernel == kinflow::per_sample_kernel::interleaved) {
      CHECK(rec.shares.size() == static_cast<std::size_t>(3 * N));
    } else {  // one call per tile of the kernel's own size
      const auto T = kinflow::detail::soa_default_tile<double, 2>;
      CHECK(rec.shares.size() == static_cast<std::size_t>((B + T - 1) / T));
    }
    // the exact solution, e^{-1}, within RK4's error
    CHECK(std::abs(X(0, 0) - std::exp(-1.0)) < 1e-5);
  }
}

TEST_CASE("adaptive progress never decreases and ends at 1", "[progress]") {
  batch<double, Eigen::Dynamic> X = start_batch<Eigen::Dynamic>(20);
  recorder rec;
  kinflow::adaptive_options opt;
  opt.rtol = opt.atol = 1e-8;
  opt.progress = rec.callback();
  const auto r = kinflow::integrate_adaptive(decay_batched{}, kinflow::dopri5, 0.0, 1.0, X, opt);
  rec.check_complete();
  CHECK(rec.shares.size() >= static_cast<std::size_t>(r.accepted.maxCoeff()));
  CHECK(std::abs(X(0, 0) - std::exp(-1.0)) < 1e-6);
}

TEST_CASE("a throwing progress callback stops a fixed-step solve; samples stay on their paths",
          "[progress][faults]") {
  const Eigen::Index B = 40;
  const int N = 10;
  const double h = 1.0 / N;
  for (Eigen::Index tile : {Eigen::Index(8), Eigen::Index(40)}) {
    CAPTURE(tile);
    const batch<double, Eigen::Dynamic> X0 = start_batch<Eigen::Dynamic>(B);
    batch<double, Eigen::Dynamic> X = X0;
    kinflow::fixed_step_options opt;
    opt.tile_columns = tile;
    int calls = 0;
    opt.progress = [&](double f) {
      ++calls;
      if (f >= 0.45) throw stop_solve();
    };
    CHECK_THROWS_AS(kinflow::integrate(decay_batched{}, kinflow::euler, time_grid<>::uniform(N), X, opt),
                    stop_solve);
    // shares: tiles of 8 report c/50 at the c-th call (5 tiles × 10 steps), so the 23rd
    // throws; the whole batch reports k/10 after step k, so the 5th throws
    CHECK(calls == (tile == 8 ? 23 : 5));
    int finished = 0, untouched = 0, partial = 0;
    for (Eigen::Index i = 0; i < B; ++i) {
      const int k = euler_steps_taken(X, X0, i, h, N);
      REQUIRE(k >= 0);  // on the sample's own Euler path
      (k == N ? finished : k == 0 ? untouched : partial) += 1;
    }
    if (tile == 8) {  // tiles of 8 are written back whole: two done, the rest at the start
      CHECK(finished == 16);
      CHECK(untouched == 24);
      CHECK(partial == 0);
    } else {  // the whole batch walked in place: every sample after the same 5 steps
      CHECK(partial == B);
      CHECK(euler_steps_taken(X, X0, 0, h, N) == 5);
    }
    // The same options without the throw finish normally afterwards.
    opt.progress = {};
    X = X0;
    const auto r = kinflow::integrate(decay_batched{}, kinflow::euler, time_grid<>::uniform(N), X, opt);
    CHECK(r.status[0] == kinflow::solve_status::success);
    CHECK(euler_steps_taken(X, X0, B - 1, h, N) == N);
  }
}

TEST_CASE("a throwing progress callback stops an adaptive solve", "[progress][faults]") {
  const batch<double, Eigen::Dynamic> X0 = start_batch<Eigen::Dynamic>(12);
  batch<double, Eigen::Dynamic> X = X0;
  kinflow::adaptive_options opt;
  opt.rtol = opt.atol = 1e-9;
  double last = 0;
  opt.progress = [&](double f) {
    last = f;
    if (f > 0.3) throw stop_solve();
  };
  CHECK_THROWS_AS(kinflow::integrate_adaptive(decay_batched{}, kinflow::dopri5, 0.0, 1.0, X, opt), stop_solve);
  CHECK(last > 0.3);
  CHECK(last < 1.0);
  // Every sample is on its path x0·e^{-s}, s in [0, 1]: a common factor in (e^{-1}, 1].
  for (Eigen::Index i = 0; i < X.cols(); ++i) {
    const double f = X(0, i) / X0(0, i);
    CHECK(f > std::exp(-1.0) - 1e-9);
    CHECK(f < 1.0);
    CHECK(X(1, i) == Approx(f * X0(1, i)).epsilon(1e-8));
  }
}
