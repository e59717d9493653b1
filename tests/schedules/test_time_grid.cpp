// Time grids: every kind is strictly increasing with exact endpoints; the EDM and shifted
// grids against values worked out by hand (or to 25 digits in decimal arithmetic); user
// grids are validated; fixed-step solves on any grid cost stages x steps evaluations. The
// exponential, beta and dynamic-shift grids against their published definitions computed
// here step by step (the Beta CDF by brute-force quadrature in long double), and against
// closed forms (Beta(1, 1) uniform, Beta(½, ½) the arcsine law).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <numbers>
#include <limits>
#include <utility>
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

// ∫₀^x s^{a-1}(1-s)^{b-1} ds by composite Simpson in long double. Where an exponent is
// negative the integrand is singular; below ½ the substitution s = u^{1/a} (above ½,
// 1 - s = v^{1/b}) turns it into the bounded (1/a)(1 - u^{1/a})^{b-1}.
long double beta_integral(long double x, long double a, long double b) {
  auto simpson = [](auto f, long double lo, long double hi) {
    const int n = 40000;
    const long double h = (hi - lo) / n;
    long double sum = f(lo) + f(hi);
    for (int k = 1; k < n; ++k) sum += f(lo + k * h) * (k % 2 ? 4 : 2);
    return sum * h / 3;
  };
  const long double half = 0.5L, left_end = std::min(x, half);
  long double total = 0;
  if (a < 1)
    total += simpson([&](long double u) { return std::pow(1 - std::pow(u, 1 / a), b - 1) / a; }, 0.0L,
                     std::pow(left_end, a));
  else
    total += simpson([&](long double s) { return std::pow(s, a - 1) * std::pow(1 - s, b - 1); }, 0.0L, left_end);
  if (x > half) {
    if (b < 1)
      total += simpson([&](long double v) { return std::pow(1 - std::pow(v, 1 / b), a - 1) / b; },
                       std::pow(1 - x, b), std::pow(half, b));
    else
      total += simpson([&](long double s) { return std::pow(s, a - 1) * std::pow(1 - s, b - 1); }, half, x);
  }
  return total;
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
    check_valid(time_grid<T>::exponential(n), n, T(0), T(1));
    check_valid(time_grid<T>::exponential(n, T(0.01), T(10)), n, T(0), T(1));
    // α = 0.3 puts 1 - t_{N-1} ≈ (α B/N)^{1/α} ≈ 1e-10 for N = 1000: beyond float.
    for (T a : {T(0.3), T(0.6), T(1), T(2.5)})
      for (T b : {T(0.4), T(0.6), T(1), T(3)})
        if (sizeof(T) == sizeof(double) || a >= T(0.6)) check_valid(time_grid<T>::beta(n, a, b), n, T(0), T(1));
    check_valid(time_grid<T>::beta(n), n, T(0), T(1));
    for (T mu : {T(-2), T(0), T(0.5), T(1.15), T(3)}) check_valid(time_grid<T>::dynamic_shift(n, mu), n, T(0), T(1));
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
                                             time_grid<double>::exponential(13), time_grid<double>::beta(13),
                                             time_grid<double>::dynamic_shift(13, 1.15),
                                             time_grid<double>::from_times({0.0, 0.3, 0.35, 1.0})};
  for (const auto& g : grids) {
    kinflow::batch<double, 1> X = kinflow::batch<double, 1>::Ones(1, 3);
    const auto euler = kinflow::integrate(field, kinflow::euler, g, X);
    CHECK((euler.nfe.array() == static_cast<std::int64_t>(g.steps())).all());
    const auto rk4 = kinflow::integrate(field, kinflow::rk4, g, X);
    CHECK((rk4.nfe.array() == static_cast<std::int64_t>(4 * g.steps())).all());
    // x' = -t x: any grid reaches x(1) = e^{-1/2} x(0). RK4's error on this grid is about
    // 16/15 of its difference from the grid with every step halved (fourth order).
    X.setOnes();
    kinflow::integrate(field, kinflow::rk4, time_grid<double>(g.times()), X);
    std::vector<double> halves{g[0]};
    for (std::size_t i = 0; i < g.steps(); ++i) {
      halves.push_back(0.5 * (g[i] + g[i + 1]));
      halves.push_back(g[i + 1]);
    }
    kinflow::batch<double, 1> Y = kinflow::batch<double, 1>::Ones(1, 3);
    kinflow::integrate(field, kinflow::rk4, time_grid<double>(halves), Y);
    const double estimate = 16.0 / 15.0 * std::abs(X(0, 0) - Y(0, 0));
    CHECK(std::abs(X(0, 0) - std::exp(-0.5)) <= 1.5 * estimate + 1e-14);
    CHECK(X(0, 0) == Approx(std::exp(-0.5)).epsilon(g.steps() > 5 ? 1e-5 : 1e-3));
  }
}

TEST_CASE("time grids: exponential grid is uniform in log sigma, sigma = (1 - t)/t", "[time_grid]") {
  for (auto [smin, smax] : {std::pair{0.002, 80.0}, std::pair{0.03, 14.6}}) {
    const std::size_t n = 25;
    const auto g = smin == 0.002 ? time_grid<double>::exponential(n) : time_grid<double>::exponential(n, smin, smax);
    for (std::size_t i = 1; i < n; ++i) {
      INFO("i = " << i);
      const double want = std::log(smax) + (static_cast<double>(i) / n) * (std::log(smin) - std::log(smax));
      CHECK(std::log((1 - g[i]) / g[i]) == Approx(want).margin(1e-12));
    }
  }
}

TEST_CASE("time grids: beta grid against closed forms and the Beta CDF by quadrature", "[time_grid]") {
  SECTION("Beta(1, 1) is the uniform grid") {
    const auto g = time_grid<double>::beta(40, 1.0, 1.0);
    for (std::size_t i = 0; i <= 40; ++i) CHECK(g[i] == Approx(i / 40.0).margin(1e-15));
  }
  SECTION("Beta(1/2, 1/2) is the arcsine law: sigma_i = sin²(π(1 - i/N)/2), t_i = sin²(π i/(2N))") {
    const auto g = time_grid<double>::beta(30, 0.5, 0.5);
    for (std::size_t i = 0; i <= 30; ++i) {
      const double s = std::sin(std::numbers::pi * (i / 30.0) / 2);
      CHECK(g[i] == Approx(s * s).margin(2e-15));
    }
  }
  SECTION("diffusers' definition: sigma_i = 1 - t_i is the Beta(a, b) quantile of 1 - i/N") {
    for (auto [a, b] : {std::pair{0.6, 0.6}, std::pair{2.0, 0.7}, std::pair{0.3, 3.0}, std::pair{4.0, 2.0}}) {
      INFO("alpha = " << a << ", beta = " << b);
      const std::size_t n = 12;
      const auto g = a == 0.6 ? time_grid<double>::beta(n) : time_grid<double>::beta(n, a, b);
      const long double whole = beta_integral(1.0L, a, b);
      for (std::size_t i = 1; i < n; ++i) {
        INFO("i = " << i);
        const long double sigma = 1.0L - static_cast<long double>(g[i]);
        const double cdf = static_cast<double>(beta_integral(sigma, a, b) / whole);
        CHECK(cdf == Approx(1.0 - static_cast<double>(i) / n).margin(1e-9));
      }
    }
  }
  SECTION("alpha < beta puts more steps near the data: the mirror grid of Beta(b, a)") {
    const auto g = time_grid<double>::beta(16, 0.5, 2.0), m = time_grid<double>::beta(16, 2.0, 0.5);
    for (std::size_t i = 0; i <= 16; ++i) CHECK(g[i] == Approx(1.0 - m[16 - i]).margin(1e-13));
    CHECK(g[16] - g[15] < g[1] - g[0]);
  }
}

TEST_CASE("time grids: dynamic shift is Flux's time shift of sigma = 1 - t", "[time_grid]") {
  for (double mu : {-1.3, 0.5, 1.15, 2.0}) {
    INFO("mu = " << mu);
    const std::size_t n = 20;
    const auto g = time_grid<double>::dynamic_shift(n, mu);
    for (std::size_t i = 1; i < n; ++i) {
      const double sigma = 1.0 - static_cast<double>(i) / n;
      const double shifted = std::exp(mu) / (std::exp(mu) + (1 / sigma - 1));
      CHECK(g[i] == Approx(1.0 - shifted).margin(1e-14));
    }
    // SD3's shift S = e^mu on sigma is shifted() with s = e^-mu on t = 1 - sigma.
    const auto s = time_grid<double>::shifted(n, std::exp(-mu));
    for (std::size_t i = 0; i <= n; ++i) CHECK(g[i] == Approx(s[i]).margin(1e-14));
  }
  const auto zero = time_grid<double>::dynamic_shift(9, 0.0), uniform = time_grid<double>::uniform(9);
  for (std::size_t i = 0; i <= 9; ++i) CHECK(zero[i] == Approx(uniform[i]).margin(1e-16));
  // mu > 0 puts the small steps near the noise, as Flux uses it.
  const auto flux = time_grid<double>::dynamic_shift(50, 1.15);
  CHECK(flux[1] - flux[0] < flux[50] - flux[49]);
}

TEST_CASE("time grids: invalid exponential, beta and dynamic-shift parameters are rejected",
          "[time_grid][errors]") {
  using kinflow_test::contains;
  const double inf = std::numeric_limits<double>::infinity(), nan = std::nan("");
  CHECK_THROWS_WITH(time_grid<double>::exponential(10, 0.0), contains("sigma_min = 0") && contains("> 0"));
  CHECK_THROWS_WITH(time_grid<double>::exponential(10, 2.0, 1.0), contains("sigma_max = 1") && contains("sigma_min = 2"));
  CHECK_THROWS_WITH(time_grid<double>::exponential(10, 0.1, inf), contains("sigma_max = inf"));
  CHECK_THROWS_WITH(time_grid<double>::exponential(0), contains("steps = 0"));
  CHECK_THROWS_WITH(time_grid<double>::beta(10, 0.0, 0.6), contains("alpha = 0") && contains("(0, 1e4]"));
  CHECK_THROWS_WITH(time_grid<double>::beta(10, 0.6, -1.0), contains("beta = -1") && contains("(0, 1e4]"));
  CHECK_THROWS_WITH(time_grid<double>::beta(10, nan, 0.6), contains("alpha = nan"));
  CHECK_THROWS_WITH(time_grid<double>::beta(10, 0.6, 2e4), contains("beta = 20000"));
  CHECK_THROWS_WITH(time_grid<double>::beta(0), contains("steps = 0"));
  // Beta(1, 0.001) has all its quantiles within e^-1000 of 0: they collapse in double.
  CHECK_THROWS_WITH(time_grid<double>::beta(10, 0.001, 1.0), contains("alpha, beta") && contains("coincide"));
  CHECK_THROWS_WITH(time_grid<double>::dynamic_shift(10, nan), contains("mu = nan") && contains("[-30, 30]"));
  CHECK_THROWS_WITH(time_grid<double>::dynamic_shift(10, inf), contains("mu = inf"));
  CHECK_THROWS_WITH(time_grid<double>::dynamic_shift(10, -31.0), contains("mu = -31"));
  CHECK_THROWS_WITH(time_grid<double>::dynamic_shift(100000, -30.0), contains("mu") && contains("coincide"));
}
