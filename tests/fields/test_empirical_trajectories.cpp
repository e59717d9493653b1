// Trajectories of the empirical field under kinflow's integrators (docs/math.md §2, §10.1): the
// straight line to a single training point, Euler's last step landing exactly on the
// posterior mean, and samples landing on training points as the steps shrink.
#include "kinflow_catch.hpp"

#include <kinflow/fields/empirical.hpp>
#include <kinflow/integrators/adaptive.hpp>
#include <kinflow/integrators/explicit_rk.hpp>
#include <kinflow/schedules/time_grid.hpp>

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "closed_form_reference.hpp"

using kinflow_test::test_rng;

namespace {

using batch2 = kinflow::batch<double, 2>;
constexpr double eps = std::numeric_limits<double>::epsilon();

// Distance of every sample to its nearest training point.
std::vector<double> nearest_distances(const batch2& Y, const batch2& X) {
  std::vector<double> out;
  for (Eigen::Index j = 0; j < X.cols(); ++j)
    out.push_back(std::sqrt((Y.colwise() - X.col(j)).colwise().squaredNorm().minCoeff()));
  return out;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

TEST_CASE("one training point: trajectories are straight lines to it", "[empirical][trajectory]") {
  batch2 Y(2, 1);
  Y << 1.5, -0.5;
  const kinflow::empirical_field<double, 2> field(Y);
  test_rng rng(51);
  batch2 X0(2, 8);
  rng.fill_normal(X0);
  const Eigen::Vector2d y = Y.col(0);

  // x(t) = (1 - t) x0 + t y, so v = y - x0 along the trajectory.
  auto check_on_line = [&](const batch2& X, double t) {
    for (Eigen::Index j = 0; j < X.cols(); ++j) {
      const Eigen::Vector2d expected = (1 - t) * X0.col(j) + t * y;
      CHECK((X.col(j) - expected).cwiseAbs().maxCoeff() <= 64 * eps * (1 + X0.col(j).norm()));
    }
  };

  SECTION("Euler: every step on the line, the last exactly at the training point") {
    for (const std::size_t N : {1u, 7u, 50u}) {
      batch2 X = X0;
      const auto grid = kinflow::time_grid<double>::uniform(N);
      kinflow::integrate(field, kinflow::euler, grid, X, {},
                         [&](const kinflow::fixed_step_view<double, 2, 1>& s) {
                           check_on_line(s.x, grid[s.step + 1]);
                         });
      check_on_line(X, 1.0);
    }
  }

  SECTION("Heun and RK4: on the line at every step before t = 1") {
    // Their last stage is at t = 1, where v = m = y instead of y - x0 (see empirical.hpp),
    // so the last step ends within h |x0| of y; before it they are exact.
    const std::size_t N = 20;
    const auto grid = kinflow::time_grid<double>::uniform(N);
    auto run = [&](const auto& method) {
      batch2 X = X0;
      kinflow::integrate(field, method, grid, X, {}, [&](const auto& s) {
        if (s.step + 1 < N) check_on_line(s.x, grid[s.step + 1]);
      });
      for (Eigen::Index j = 0; j < X.cols(); ++j)
        CHECK((X.col(j) - y).norm() <= (1.0 / N) * X0.col(j).norm() + 1e-12);
    };
    run(kinflow::heun);
    run(kinflow::rk4);
  }

  SECTION("Dormand-Prince reaches the training point within its tolerance") {
    batch2 X = X0;
    const auto result = kinflow::integrate_adaptive(field, kinflow::dopri5, 0.0, 1.0, X);
    CHECK(result.count(kinflow::solve_status::success) == static_cast<std::size_t>(X.cols()));
    for (Eigen::Index j = 0; j < X.cols(); ++j) CHECK((X.col(j) - y).norm() <= 1e-3);
  }
}

TEST_CASE("Euler on a uniform grid lands exactly on the posterior mean at its last step",
          "[empirical][trajectory]") {
  test_rng rng(53);
  batch2 Y(2, 30), X0(2, 50);
  rng.fill_normal(Y);
  rng.fill_normal(X0);
  const kinflow::empirical_field<double, 2> field(Y);
  for (const std::size_t N : {2u, 5u, 20u, 100u}) {
    CAPTURE(N);
    const auto grid = kinflow::time_grid<double>::uniform(N);
    batch2 X = X0, before_last = X0;
    kinflow::integrate(field, kinflow::euler, grid, X, {},
                       [&](const kinflow::fixed_step_view<double, 2, 1>& s) {
                         if (s.step + 2 == N) before_last = s.x;
                       });
    const double t_last = grid[N - 1];
    const batch2 m = field.posterior_mean(t_last, before_last);
    for (Eigen::Index j = 0; j < X.cols(); ++j) {
      const double scale = before_last.col(j).cwiseAbs().maxCoeff() + m.col(j).cwiseAbs().maxCoeff();
      CHECK((X.col(j) - m.col(j)).cwiseAbs().maxCoeff() <= 8 * eps * scale);
    }
  }
}

TEST_CASE("last-step rules: RK4 lands with one evaluation, on the posterior mean", "[empirical][trajectory]") {
  // fixed_step_options::last_step: the last step is an Euler step from t_{N-1}, which for
  // the empirical field is the denoiser jump onto the posterior mean m(x, t_{N-1}),
  // computed here in long double from the training points (closed_form_reference.hpp).
  test_rng rng(59);
  batch2 Y(2, 25), X0(2, 40);
  rng.fill_normal(Y);
  rng.fill_normal(X0);
  const kinflow::empirical_field<double, 2> field(Y);
  const kinflow_test::ld_matrix Yl = Y.cast<long double>();
  for (const auto rule : {kinflow::last_step_rule::euler, kinflow::last_step_rule::denoise}) {
    for (const std::size_t N : {2u, 10u, 40u}) {
      CAPTURE(N);
      const auto grid = kinflow::time_grid<double>::uniform(N);
      kinflow::fixed_step_options opt;
      opt.last_step = rule;
      opt.kpe.profile = kinflow::kpe_profile::per_sample;
      batch2 X = X0, before_last = X0;
      bool last_was_euler = false;
      const auto r = kinflow::integrate(field, kinflow::rk4, grid, X, opt,
                                        [&](const kinflow::fixed_step_view<double, 2, 4>& s) {
                                          if (s.step + 2 == N) before_last = s.x;
                                          if (s.step + 1 == N) last_was_euler = s.euler;
                                        });
      CHECK(last_was_euler);
      CHECK(r.nfe(0) == static_cast<std::int64_t>(4 * (N - 1) + 1));
      const long double t = grid[N - 1];
      for (Eigen::Index j = 0; j < X.cols(); ++j) {
        const auto ref = kinflow_test::empirical_reference(Yl, before_last.col(j).cast<long double>(), t, 1 - t);
        const double scale = before_last.col(j).cwiseAbs().maxCoeff() + 1;
        CHECK((X.col(j).cast<long double>() - ref.mean).cwiseAbs().maxCoeff() <= 64 * eps * scale);
        // The step's energy is the left-point one, ½ h ‖v(x, t_{N-1})‖², v = (m - x)/(1 - t).
        const long double h = 1 - t;
        const long double e = 0.5L * h * ((ref.mean - before_last.col(j).cast<long double>()) / h).squaredNorm();
        CHECK(std::abs(r.kpe.profile(j, static_cast<Eigen::Index>(N - 1)) - e) <= 1e-12 * (1 + e));
      }
    }
  }
  // Without the rule RK4 evaluates stages at t = 1 and does not land on the posterior mean.
  batch2 X = X0, before_last = X0;
  const auto grid = kinflow::time_grid<double>::uniform(10);
  kinflow::integrate(field, kinflow::rk4, grid, X, {}, [&](const kinflow::fixed_step_view<double, 2, 4>& s) {
    if (s.step == 8) before_last = s.x;
  });
  const auto ref = kinflow_test::empirical_reference(Yl, before_last.col(0).cast<long double>(), 0.9L, 0.1L);
  CHECK((X.col(0).cast<long double>() - ref.mean).cwiseAbs().maxCoeff() > 1e-6);
}

TEST_CASE("empirical-field samples land on training points as steps grow", "[empirical][trajectory]") {
  test_rng rng(57);
  batch2 Y(2, 50), X0(2, 200);
  rng.fill_normal(Y);
  rng.fill_normal(X0);
  const kinflow::empirical_field<double, 2> field(Y);

  SECTION("Euler: the median distance collapses") {
    double previous = std::numeric_limits<double>::infinity();
    for (const std::size_t N : {10u, 20u, 40u, 80u}) {
      batch2 X = X0;
      kinflow::integrate(field, kinflow::euler, kinflow::time_grid<double>::uniform(N), X);
      REQUIRE(X.allFinite());
      const double med = median(nearest_distances(Y, X));
      CAPTURE(N, med);
      CHECK(med <= previous);
      previous = med;
    }
    CHECK(previous <= 1e-10);
  }

  SECTION("Heun and RK4 (a stage at t = 1): distances shrink like the last step") {
    auto run = [&](const auto& method) {
      std::vector<double> med;
      for (const std::size_t N : {20u, 40u, 80u, 160u}) {
        batch2 X = X0;
        const auto result = kinflow::integrate(field, method, kinflow::time_grid<double>::uniform(N), X);
        REQUIRE(result.count(kinflow::solve_status::success) == static_cast<std::size_t>(X.cols()));
        med.push_back(median(nearest_distances(Y, X)));
      }
      CAPTURE(med[0], med[1], med[2], med[3]);
      for (std::size_t i = 1; i < med.size(); ++i) CHECK(med[i] <= 0.7 * med[i - 1]);
      CHECK(med.back() <= 1e-2);
    };
    run(kinflow::heun);
    run(kinflow::rk4);
  }

  SECTION("Dormand-Prince: every sample succeeds and lands within its tolerance") {
    batch2 X = X0;
    const auto result = kinflow::integrate_adaptive(field, kinflow::dopri5, 0.0, 1.0, X);
    CHECK(result.count(kinflow::solve_status::success) == static_cast<std::size_t>(X.cols()));
    const auto dist = nearest_distances(Y, X);
    CHECK(*std::max_element(dist.begin(), dist.end()) <= 1e-3);
  }
}
