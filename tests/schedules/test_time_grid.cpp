// Time grids: every kind is strictly increasing with exact endpoints; the EDM and shifted
// grids against values worked out by hand (or to 25 digits in decimal arithmetic); user
// grids are validated; fixed-step solves on any grid cost stages x steps evaluations.

#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

#include "kinflow/integrators/explicit_rk.hpp"
#include "kinflow/schedules/time_grid.hpp"
#include "kinflow_catch.hpp"

using kinflow::time_grid;

namespace {

template <class T>
void check_valid(const time_grid<T>& g, std::size_t steps, T t0, T t1) {
  REQUIRE(g.steps() == steps);
  REQUIRE(g.times().size() == steps + 1);
  CHECK(g.front() == t0);
  CHECK(g.back() == t1);
  for (std::size_t i = 0; i < steps; ++i) {
    INFO("i = " << i);
    CHECK(std::isfinite(g[i]));
    if (t1 > t0)
      CHECK(g[i + 1] > g[i]);
    else
      CHECK(g[i + 1] < g[i]);
  }
}

}  // namespace

TEMPLATE_TEST_CASE("time grids: every kind is strictly increasing and hits its endpoints exactly",
                   "[time_grid]", float, double) {
  using T = TestType;
  for (std::size_t n : {1u, 2u, 3u, 7u, 50u, 1000u}) {
    INFO("steps = " << n);
    check_valid(time_grid<T>::uniform(n), n, T(0), T(1));
    check_valid(time_grid<T>::uniform(n, T(0.25), T(0.75)), n, T(0.25), T(0.75));
    check_valid(time_grid<T>::cosine(n), n, T(0), T(1));
    check_valid(time_grid<T>::edm(n), n, T(0), T(1));
    for (T rho : {T(1), T(3), T(7), T(20)}) check_valid(time_grid<T>::edm(n, rho), n, T(0), T(1));
    check_valid(time_grid<T>::edm(n, T(7), T(1e-4), T(1e3)), n, T(0), T(1));
    for (T s : {T(0.1), T(0.5), T(1), T(3), T(10)}) {
      check_valid(time_grid<T>::shifted(n, s), n, T(0), T(1));
      check_valid(time_grid<T>::shifted(n, s, T(0.1), T(0.9)), n, T(0.1), T(0.9));
    }
    // Backward solves use the reversed forward grid.
    check_valid(time_grid<T>::edm(n).reversed(), n, T(1), T(0));
  }
}

TEST_CASE("time grids: EDM rho-grid in flow time, against hand-computed values", "[time_grid]") {
  SECTION("rho = 1: sigma linear from 3 to 1, two steps") {
    // σ = 3, 2, 1 → interior t = 1/(1 + 2) = 1/3; the ends are 0 and 1.
    const auto g = time_grid<double>::edm(2, 1.0, 1.0, 3.0);
    CHECK(g.times() == std::vector<double>{0.0, 1.0 / 3.0, 1.0});
  }
  SECTION("rho = 2: sqrt(sigma) linear from 3 to 1, four steps") {
    // √σ = 3, 2.5, 2, 1.5, 1 → σ = 9, 6.25, 4, 2.25, 1 → t = 1/(1+σ).
    const auto g = time_grid<double>::edm(4, 2.0, 1.0, 9.0);
    const std::vector<double> want{0.0, 1 / 7.25, 0.2, 1 / 3.25, 1.0};
    for (std::size_t i = 0; i < want.size(); ++i) CHECK(g[i] == Approx(want[i]).epsilon(1e-15));
  }
  SECTION("EDM defaults rho = 7, sigma in [0.002, 80], ten steps") {
    // Interior times 1/(1 + σ_i), σ_i from 40-digit decimal arithmetic.
    const std::vector<double> want{0.0,
                                   0.02159186729309533305136257,
                                   0.03935715319006644751165643,
                                   0.07472961253942684457376421,
                                   0.1462213273085175760139147,
                                   0.2844772990774093741575983,
                                   0.5087978975872179044232670,
                                   0.7585622972437632140505801,
                                   0.9215849173425864066555811,
                                   0.9835542323870227265055695,
                                   1.0};
    const auto g = time_grid<double>::edm(10);
    for (std::size_t i = 0; i < want.size(); ++i) {
      INFO("i = " << i);
      CHECK(g[i] == Approx(want[i]).epsilon(1e-13));
    }
    CHECK(g.front() == 0.0);
    CHECK(g.back() == 1.0);
    // float follows to its precision
    const auto gf = time_grid<float>::edm(10);
    for (std::size_t i = 0; i < want.size(); ++i) CHECK(gf[i] == Approx(want[i]).epsilon(2e-5));
  }
}

TEST_CASE("time grids: shifted grid against hand-computed values", "[time_grid]") {
  // g(u) = s u / (1 + (s - 1) u)
  CHECK(time_grid<double>::shifted(4, 3.0).times() == std::vector<double>{0.0, 0.5, 0.75, 0.9, 1.0});
  const auto half = time_grid<double>::shifted(2, 0.5);
  CHECK(half[1] == Approx(1.0 / 3.0).epsilon(1e-15));
  // on [0.2, 1]: t = 0.2 + 0.8 g(u)
  const auto sub = time_grid<double>::shifted(4, 3.0, 0.2, 1.0);
  const std::vector<double> want{0.2, 0.6, 0.8, 0.92, 1.0};
  for (std::size_t i = 0; i < want.size(); ++i) CHECK(sub[i] == Approx(want[i]).epsilon(1e-15));
  // s = 1 is the uniform grid, bit for bit.
  CHECK(time_grid<double>::shifted(37, 1.0).times() == time_grid<double>::uniform(37).times());
  // s > 1 shrinks the steps towards t = 1: first/last step ratio s² in the limit.
  const auto fine = time_grid<double>::shifted(1000, 4.0);
  CHECK((fine[1] - fine[0]) / (fine[1000] - fine[999]) == Approx(16.0).epsilon(0.02));
}

TEST_CASE("time grids: user-given times are validated", "[time_grid][errors]") {
  using kinflow_test::contains;
  const auto g = time_grid<double>::from_times({0.0, 0.1, 0.5, 1.0});
  CHECK(g.steps() == 3);
  CHECK(g[2] == 0.5);
  const auto back = time_grid<double>::from_times({1.0, 0.4, 0.0}, 1.0, 0.0);
  CHECK(back.direction() == -1);
  CHECK(time_grid<double>::from_times({0.2, 0.3}, 0.2, 0.3).steps() == 1);

  CHECK_THROWS_WITH(time_grid<double>::from_times({0.1, 0.5, 1.0}), contains("times[0] = 0.1") && contains("t0 = 0"));
  CHECK_THROWS_WITH(time_grid<double>::from_times({0.0, 0.5, 0.9}), contains("times[2] = 0.9") && contains("t1 = 1"));
  CHECK_THROWS_WITH(time_grid<double>::from_times({0.0, 0.5, 0.5, 1.0}),
                    contains("times[2] = 0.5") && contains("strictly increasing"));
  CHECK_THROWS_WITH(time_grid<double>::from_times({0.0, 0.6, 0.4, 1.0}), contains("times[2] = 0.4"));
  CHECK_THROWS_WITH(time_grid<double>::from_times({0.0, std::nan(""), 1.0}), contains("times[1]") && contains("finite"));
  CHECK_THROWS_AS(time_grid<double>::from_times({}), kinflow::invalid_argument);
  CHECK_THROWS_AS(time_grid<double>::from_times({0.0}), kinflow::invalid_argument);
  CHECK_THROWS_WITH(time_grid<double>::from_times({0.0, 1.0}, 0.0, 0.0), contains("t1 = 0"));
  CHECK_THROWS_AS(time_grid<double>::from_times({0.0, 1.0}, std::numeric_limits<double>::infinity(), 1.0),
                  kinflow::invalid_argument);
}

TEST_CASE("time grids: invalid parameters are rejected", "[time_grid][errors]") {
  using kinflow_test::contains;
  CHECK_THROWS_WITH(time_grid<double>::edm(0), contains("steps = 0"));
  CHECK_THROWS_WITH(time_grid<double>::edm(10, 0.0), contains("rho = 0") && contains("> 0"));
  CHECK_THROWS_WITH(time_grid<double>::edm(10, 7.0, 0.0), contains("sigma_min = 0"));
  CHECK_THROWS_WITH(time_grid<double>::edm(10, 7.0, 1.0, 0.5), contains("sigma_max = 0.5") && contains("sigma_min = 1"));
  CHECK_THROWS_AS(time_grid<double>::edm(10, 7.0, 0.002, std::numeric_limits<double>::infinity()),
                  kinflow::invalid_argument);
  CHECK_THROWS_WITH(time_grid<double>::shifted(10, 0.0), contains("shift = 0") && contains("> 0"));
  CHECK_THROWS_WITH(time_grid<double>::shifted(10, -2.0), contains("shift = -2"));
  CHECK_THROWS_AS(time_grid<double>::shifted(10, std::nan("")), kinflow::invalid_argument);
  CHECK_THROWS_WITH(time_grid<double>::shifted(0, 2.0), contains("steps = 0"));
}

TEST_CASE("time grids: a fixed-step solve costs stages x steps on every grid", "[time_grid]") {
  auto field = [](double t, const kinflow::batch<double, 1>& X, kinflow::batch<double, 1>& V) {
    V = -t * X;
  };
  const std::vector<time_grid<double>> grids{time_grid<double>::uniform(13), time_grid<double>::cosine(13),
                                             time_grid<double>::edm(13), time_grid<double>::shifted(13, 3.0),
                                             time_grid<double>::from_times({0.0, 0.3, 0.35, 1.0})};
  for (const auto& g : grids) {
    kinflow::batch<double, 1> X = kinflow::batch<double, 1>::Ones(1, 3);
    const auto euler = kinflow::integrate(field, kinflow::euler, g, X);
    CHECK((euler.nfe.array() == static_cast<std::int64_t>(g.steps())).all());
    const auto rk4 = kinflow::integrate(field, kinflow::rk4, g, X);
    CHECK((rk4.nfe.array() == static_cast<std::int64_t>(4 * g.steps())).all());
    // x' = -t x: any grid reaches x(1) = e^{-1/2} x(0); RK4 closely on these grids.
    X.setOnes();
    kinflow::integrate(field, kinflow::rk4, time_grid<double>(g.times()), X);
    CHECK(X(0, 0) == Approx(std::exp(-0.5)).epsilon(g.steps() > 5 ? 1e-6 : 1e-3));
  }
}
