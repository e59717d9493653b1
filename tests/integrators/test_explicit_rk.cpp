// Fixed-grid explicit Runge–Kutta integration: orders of convergence against analytic
// solutions, NFE accounting, observers, backward integration and bad input.

#include <cmath>
#include <vector>

#include "kinflow/integrators/explicit_rk.hpp"
#include "kinflow_catch.hpp"
#include "support/oracles.hpp"

using kinflow::batch;
using kinflow::time_grid;

namespace {

using kinflow_test::decay_field;

constexpr long double x0s[3] = {0.5L, 1.0L, 2.0L};

template <class Scalar, std::size_t S>
double decay_error(const kinflow::butcher_tableau<S>& method, int steps) {
  batch<Scalar, 1> X(1, 3);
  for (int i = 0; i < 3; ++i) X(0, i) = static_cast<Scalar>(x0s[i]);
  const auto r = kinflow::integrate(decay_field{}, method, time_grid<>::uniform(steps, 0.0, 2.0), X);
  REQUIRE(r.all_success());
  double e = 0;
  for (int i = 0; i < 3; ++i) {
    const long double exact = x0s[i] / (1 + 4 * x0s[i]);
    e = std::max(e, static_cast<double>(std::abs(static_cast<long double>(X(0, i)) - exact)));
  }
  return e;
}

template <class Scalar, std::size_t S>
double observed_order(const kinflow::butcher_tableau<S>& method, const std::vector<int>& steps) {
  std::vector<double> h, e;
  for (int n : steps) {
    h.push_back(2.0 / n);
    e.push_back(decay_error<Scalar>(method, n));
  }
  return kinflow_test::convergence_slope(h, e);
}

}  // namespace

TEMPLATE_TEST_CASE("every fixed-step method converges at its order", "[explicit_rk][order]",
                   float, double) {
  // Step counts keep the error well above the scalar's rounding level.
  const bool is_float = std::is_same_v<TestType, float>;
  const std::vector<int> low{32, 64, 128, 256}, mid{16, 32, 64, 128};
  const std::vector<int> high = is_float ? std::vector<int>{8, 16, 32} : std::vector<int>{8, 16, 32, 64};
  const std::vector<int> third = is_float ? std::vector<int>{16, 32, 64} : std::vector<int>{32, 64, 128, 256};
  CHECK(observed_order<TestType>(kinflow::euler, low) == Approx(1.0).margin(0.2));
  CHECK(observed_order<TestType>(kinflow::midpoint, mid) == Approx(2.0).margin(0.2));
  CHECK(observed_order<TestType>(kinflow::heun, mid) == Approx(2.0).margin(0.2));
  CHECK(observed_order<TestType>(kinflow::ralston, mid) == Approx(2.0).margin(0.2));
  CHECK(observed_order<TestType>(kinflow::rk3, third) == Approx(3.0).margin(0.2));
  CHECK(observed_order<TestType>(kinflow::rk4, high) == Approx(4.0).margin(0.2));
}

TEST_CASE("Euler with a time-only field is the left Riemann sum", "[explicit_rk]") {
  // v = t: x(1) = x0 + Σ h t_n exactly (rational arithmetic on a dyadic grid).
  batch<double, 1> X(1, 1);
  X << 1.0;
  auto f = [](double t, const kinflow::point<double, 1>& x) {
    return kinflow::point<double, 1>(x.array() * 0 + t);
  };
  kinflow::integrate(f, kinflow::euler, time_grid<>::uniform(4), X);
  CHECK(X(0, 0) == 1.0 + 0.25 * (0.0 + 0.25 + 0.5 + 0.75));
}

TEST_CASE("NFE per sample is stages × steps and the grid is walked as given", "[explicit_rk]") {
  batch<double, Eigen::Dynamic> X = batch<double, Eigen::Dynamic>::Ones(3, 5);
  std::vector<double> seen_t, seen_dt;
  auto obs = [&](const auto& view) {
    seen_t.push_back(view.t);
    seen_dt.push_back(view.dt);
  };
  const auto grid = time_grid<>::cosine(7);
  const auto r = kinflow::integrate(decay_field{}, kinflow::rk4, grid, X, {}, obs);
  REQUIRE(r.nfe.size() == 5);
  CHECK((r.nfe.array() == 4 * 7).all());
  CHECK((r.accepted.array() == 7).all());
  CHECK((r.rejected.array() == 0).all());
  REQUIRE(seen_t.size() == 7);
  for (std::size_t n = 0; n < 7; ++n) {
    CHECK(seen_t[n] == grid[n]);
    CHECK(seen_dt[n] == grid[n + 1] - grid[n]);
  }
}

TEST_CASE("observers see the state after each step and the stage velocities", "[explicit_rk][observer]") {
  // Gaussian target: exact trajectory x(t) = t mu + σ(t) x0 at every grid time, and the
  // stages are the field at the documented stage points.
  kinflow_test::gaussian_target<double, 2> g{{1.5, -0.5}, 0.5};
  Eigen::Matrix<long double, Eigen::Dynamic, 1> x0(2);
  x0 << 0.8L, -1.1L;
  batch<double, 2> X(2, 1);
  X.col(0) = x0.cast<double>();
  const auto grid = time_grid<>::uniform(64);
  double worst_state = 0, worst_stage = 0;
  std::size_t calls = 0;
  auto obs = [&](const kinflow::fixed_step_view<double, 2, 4>& v) {
    ++calls;
    const auto exact = g.exact_state(grid[v.step + 1], x0);
    worst_state = std::max(worst_state, static_cast<double>((v.x.col(0).cast<long double>() - exact).norm()));
    // k_1 is the field at the start of the step, on the exact trajectory up to the
    // accumulated error; compare against the field at the exact state.
    const auto xs = g.exact_state(grid[v.step], x0);
    batch<double, 2> xb(2, 1), vb(2, 1);
    xb.col(0) = xs.cast<double>();
    g(v.t, xb, vb);
    worst_stage = std::max(worst_stage, (v.k[0].col(0) - vb.col(0)).norm());
  };
  kinflow::integrate(g, kinflow::rk4, grid, X, {}, obs);
  CHECK(calls == 64);
  CHECK(worst_state < 1e-7);
  CHECK(worst_stage < 1e-6);
}

TEST_CASE("backward integration over the reversed grid returns to the start", "[explicit_rk][backward]") {
  batch<double, 1> X(1, 3);
  X << 0.5, 1.0, 2.0;
  const batch<double, 1> start = X;
  const auto grid = time_grid<>::uniform(200, 0.0, 2.0);
  kinflow::integrate(decay_field{}, kinflow::rk4, grid, X);
  // Forward landed on x0/(1+4 x0); going back must land on x0 within the O(h^4) error.
  const auto r = kinflow::integrate(decay_field{}, kinflow::rk4, grid.reversed(), X);
  CHECK(r.all_success());
  CHECK((X - start).cwiseAbs().maxCoeff() < 1e-8);
  // and the energy of the backward path is positive (|dt| measure)
  CHECK((r.kpe.total.array() > 0).all());
}

TEST_CASE("a NaN initial state marks only that sample non_finite", "[explicit_rk][errors]") {
  batch<double, 2> X(2, 3);
  X << 1, std::nan(""), 2, 1, 1, 2;
  kinflow_test::gaussian_target<double, 2> g{{1.0, 0.0}, 0.5};
  const auto r = kinflow::integrate(g, kinflow::heun, time_grid<>::uniform(10), X);
  CHECK(r.status[0] == kinflow::solve_status::success);
  CHECK(r.status[1] == kinflow::solve_status::non_finite);
  CHECK(r.status[2] == kinflow::solve_status::success);
  CHECK(X.col(0).allFinite());
  CHECK(X.col(2).allFinite());
  CHECK(std::isfinite(r.kpe.total(0)));
  CHECK(r.count(kinflow::solve_status::success) == 2);
}

TEST_CASE("bad input raises kinflow errors naming the parameter", "[explicit_rk][errors]") {
  using kinflow_test::contains;
  CHECK_THROWS_AS(time_grid<>::uniform(0), kinflow::invalid_argument);
  CHECK_THROWS_WITH(time_grid<>::uniform(0), contains("steps") && contains("at least 1"));
  CHECK_THROWS_WITH(time_grid<>(std::vector<double>{}), contains("time grid size"));
  CHECK_THROWS_WITH(time_grid<>(std::vector<double>{0.0}), contains("at least 2"));
  CHECK_THROWS_WITH(time_grid<>(std::vector<double>{0.0, 0.5, 0.4, 1.0}),
                    contains("times[2]") && contains("strictly increasing"));
  CHECK_THROWS_WITH(time_grid<>(std::vector<double>{0.0, 0.5, 0.5}), contains("times[2]"));
  CHECK_THROWS_WITH(time_grid<>(std::vector<double>{0.0, std::nan(""), 1.0}), contains("finite"));

  // Field/state dimension mismatch: per-sample field returning 3 numbers for a 2-D state.
  batch<double, Eigen::Dynamic> X = batch<double, Eigen::Dynamic>::Zero(2, 4);
  auto wrong_sample = [](double, const kinflow::point<double>& x) {
    return Eigen::VectorXd::Zero(x.size() + 1).eval();
  };
  CHECK_THROWS_AS(kinflow::integrate(wrong_sample, kinflow::euler, time_grid<>::uniform(2), X),
                  kinflow::dimension_mismatch);
  // Batched field that resizes V to the wrong shape.
  auto wrong_batched = [](double, const batch<double>& x, batch<double>& v) {
    v.setZero(x.rows() + 1, x.cols());
  };
  CHECK_THROWS_WITH(kinflow::integrate(wrong_batched, kinflow::rk4, time_grid<>::uniform(2), X),
                    contains("dimension mismatch") && contains("rows"));
  // A field declaring its dimension is checked before any evaluation.
  struct dim3_field {
    [[nodiscard]] Eigen::Index dim() const { return 3; }
    void operator()(double, const batch<double>& x, batch<double>& v) const { v = x; }
  };
  CHECK_THROWS_AS(kinflow::integrate(dim3_field{}, kinflow::euler, time_grid<>::uniform(2), X),
                  kinflow::dimension_mismatch);
}

namespace {
// The Gaussian-target flow in per-sample form, fixed and dynamic dimension.
template <class Scalar, int Dim>
struct sample_gaussian {
  kinflow_test::gaussian_target<Scalar, 2> g{{Scalar(1.5), Scalar(-0.5)}, Scalar(0.5)};
  kinflow::point<Scalar, Dim> operator()(Scalar t, const kinflow::point<Scalar, Dim>& x) const {
    const Scalar sig2 = (1 - t) * (1 - t) + t * t * g.s * g.s;
    const Scalar k = (t * g.s * g.s - (1 - t)) / sig2;
    return (k * (x - t * g.mu) + g.mu).eval();
  }
};

template <std::size_t S>
void all_paths_agree(const kinflow::butcher_tableau<S>& method, kinflow::kpe_quadrature q) {
  const Eigen::Index B = 23;
  batch<double, 2> X0 = batch<double, 2>::Random(2, B) * 2;
  kinflow_test::gaussian_target<double, 2> batched{{1.5, -0.5}, 0.5};
  const auto grid = time_grid<>::cosine(9);
  kinflow::fixed_step_options opt;
  opt.kpe.quadrature = q;
  opt.kpe.profile = kinflow::kpe_profile::per_sample;

  opt.tile_columns = 1 << 20;  // whole batch, step by step
  batch<double, 2> Xw = X0;
  const auto rw = kinflow::integrate(batched, method, grid, Xw, opt);

  auto same = [&](const batch<double, 2>& X, const kinflow::solve_result<double>& r, bool with_profile) {
    CHECK((X - Xw).cwiseAbs().maxCoeff() <= 1e-14);
    CHECK((r.kpe.total - rw.kpe.total).cwiseAbs().maxCoeff() <= 1e-14);
    CHECK((r.kpe.early - rw.kpe.early).cwiseAbs().maxCoeff() <= 1e-14);
    CHECK((r.kpe.late - rw.kpe.late).cwiseAbs().maxCoeff() <= 1e-14);
    if (with_profile) CHECK((r.kpe.profile - rw.kpe.profile).cwiseAbs().maxCoeff() <= 1e-14);
    CHECK(r.nfe == rw.nfe);
  };
  for (Eigen::Index tile : {1, 5, 0}) {  // batched tiles, incl. a ragged last tile
    opt.tile_columns = tile;
    batch<double, 2> X = X0;
    same(X, kinflow::integrate(batched, method, grid, X, opt), true);
  }
  for (Eigen::Index tile : {5, 0}) {  // fused per-sample kernel, with and without profile
    for (auto profile : {kinflow::kpe_profile::per_sample, kinflow::kpe_profile::none}) {
      opt.tile_columns = tile;
      opt.kpe.profile = profile;
      batch<double, 2> X = X0;
      same(X, kinflow::integrate(sample_gaussian<double, 2>{}, method, grid, X, opt),
           profile == kinflow::kpe_profile::per_sample);
    }
  }
  opt.kpe.profile = kinflow::kpe_profile::per_sample;
  {  // per-sample field with an observer: stages materialised, no fusion
    batch<double, 2> X = X0;
    std::size_t calls = 0;
    same(X, kinflow::integrate(sample_gaussian<double, 2>{}, method, grid, X, opt, [&](const auto&) { ++calls; }), true);
    CHECK(calls == 9);
  }
  {  // dynamic dimension: lifted column by column
    batch<double> X = X0;
    const auto r = kinflow::integrate(sample_gaussian<double, Eigen::Dynamic>{}, method, grid, X, opt);
    batch<double, 2> X2 = X;
    same(X2, r, true);
  }
}
}  // namespace

TEST_CASE("fused, tiled, whole-batch and lifted code paths agree", "[explicit_rk][paths]") {
  for (auto q : {kinflow::kpe_quadrature::stage, kinflow::kpe_quadrature::left_riemann}) {
    all_paths_agree(kinflow::euler, q);
    all_paths_agree(kinflow::midpoint, q);
    all_paths_agree(kinflow::ralston, q);
    all_paths_agree(kinflow::rk4, q);
  }
}
