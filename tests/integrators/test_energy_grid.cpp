// Energy-equidistributing grids: on energy profiles known in closed form every step carries
// an equal share (tolerances derived below), steps crowd where the profile is large, the
// pilot helper reproduces the profile-based grid, and bad input is rejected.

#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

#include "kinflow/integrators/explicit_rk.hpp"
#include "kinflow/integrators/energy_grid.hpp"
#include "kinflow_catch.hpp"
#include "support/oracles.hpp"

using kinflow::energy_grid_options;
using kinflow::time_grid;

namespace {

// Energy density e(t) = 0.2 + 3t², its antiderivative F(t) = 0.2 t + t³; ∫₀¹ e = 1.2.
double antiderivative(double t) { return 0.2 * t + t * t * t; }

// Exact per-step energies of a pilot grid.
Eigen::VectorXd exact_profile(const time_grid<double>& pilot) {
  Eigen::VectorXd p(static_cast<Eigen::Index>(pilot.steps()));
  for (std::size_t m = 0; m < pilot.steps(); ++m)
    p(static_cast<Eigen::Index>(m)) = std::abs(antiderivative(pilot[m + 1]) - antiderivative(pilot[m]));
  return p;
}

double max_relative_deviation(const std::vector<double>& shares) {
  double total = 0;
  for (double s : shares) total += s;
  const double mean = total / static_cast<double>(shares.size());
  double worst = 0;
  for (double s : shares) worst = std::max(worst, std::abs(s - mean) / mean);
  return worst;
}

std::vector<double> step_energies(const time_grid<double>& g) {
  std::vector<double> e;
  for (std::size_t i = 0; i < g.steps(); ++i) e.push_back(antiderivative(g[i + 1]) - antiderivative(g[i]));
  return e;
}

}  // namespace

TEST_CASE("energy grid: equal energy per step on a known profile", "[energy_grid]") {
  const auto pilot = time_grid<double>::uniform(2000);
  const auto profile = exact_profile(pilot);
  energy_grid_options o;
  o.bandwidth = 0;
  const std::size_t N = 16;
  const auto g = kinflow::energy_equidistributing_grid(pilot, profile, N, o);
  REQUIRE(g.steps() == N);
  CHECK(g.front() == 0.0);
  CHECK(g.back() == 1.0);

  // The grid equidistributes the piecewise-linear interpolant W of F on the pilot nodes
  // exactly; |F - W| <= h²/8 max|e'| = (1/2000)²/8 * 6 ≈ 1.9e-7, so a step's energy is
  // off by at most 3.8e-7 of its share 1.2/16 = 0.075: 5e-6 relative.
  const auto shares = step_energies(g);
  CHECK(max_relative_deviation(shares) < 5e-6);
  for (double s : shares) CHECK(s == Approx(1.2 / N).epsilon(5e-6));

  // e grows with t, so every step is shorter than the one before; most steps are late.
  std::size_t late = 0;
  for (std::size_t i = 0; i < N; ++i) {
    if (i + 1 < N) CHECK(g[i + 2] - g[i + 1] < g[i + 1] - g[i]);
    if (g[i] >= 0.5) ++late;
  }
  CHECK(late > N / 2);
}

TEST_CASE("energy grid: gamma spreads the share of e^gamma", "[energy_grid]") {
  const auto pilot = time_grid<double>::uniform(2000);
  const auto profile = exact_profile(pilot);
  energy_grid_options o;
  o.bandwidth = 0;
  o.gamma = 0.5;
  const std::size_t N = 10;
  const auto g = kinflow::energy_equidistributing_grid(pilot, profile, N, o);
  // ∫ e^½ over each step by quadrature. The grid uses (cell mean of e)^½, which differs from
  // the cell mean of e^½ by O(h²); with the interpolation error as above this stays < 1e-5.
  std::vector<double> shares;
  for (std::size_t i = 0; i < N; ++i)
    shares.push_back(static_cast<double>(kinflow_test::gauss_legendre(
        [](long double t) { return std::sqrt(0.2L + 3 * t * t); }, g[i], g[i + 1], 16)));
  CHECK(max_relative_deviation(shares) < 1e-5);
  // A smaller exponent spreads the steps more evenly than γ = 1 does.
  o.gamma = 1;
  const auto g1 = kinflow::energy_equidistributing_grid(pilot, profile, N, o);
  CHECK(g[1] - g[0] < g1[1] - g1[0]);
  CHECK(g[N] - g[N - 1] > g1[N] - g1[N - 1]);
  // γ = 0 is the uniform grid.
  o.gamma = 0;
  const auto g0 = kinflow::energy_equidistributing_grid(pilot, profile, N, o);
  for (std::size_t i = 0; i <= N; ++i) CHECK(g0[i] == Approx(static_cast<double>(i) / N).margin(1e-14));
}

TEST_CASE("energy grid: the default smoothing keeps the shares within its edge bias", "[energy_grid]") {
  const auto pilot = time_grid<double>::uniform(1000);
  const auto profile = exact_profile(pilot);
  const std::size_t N = 16;
  const auto g = kinflow::energy_equidistributing_grid(pilot, profile, N);  // bandwidth 0.01
  // In the interior the Gaussian mean shifts e by bw²/2 e'' = 3e-4 (0.1% of e ≥ 0.2 ... far
  // less where e is large); at t = 1 it is one-sided and low by about 0.8 bw e'(1) = 0.048,
  // 1.5% of e(1) = 3.2. The last steps' shares may be off by about twice that: 3%.
  CHECK(max_relative_deviation(step_energies(g)) < 0.03);
}

TEST_CASE("energy grid: floors, flat and backward profiles", "[energy_grid]") {
  const auto pilot = time_grid<double>::uniform(400);
  SECTION("a zero profile gives the uniform grid") {
    const auto g = kinflow::energy_equidistributing_grid(pilot, Eigen::VectorXd::Zero(400), 8);
    for (std::size_t i = 0; i <= 8; ++i) CHECK(g[i] == Approx(i / 8.0).margin(1e-14));
  }
  SECTION("no energy on the first half: the floor keeps the grid valid") {
    Eigen::VectorXd p = Eigen::VectorXd::Zero(400);
    p.tail(200).setConstant(1.0 / 400);  // e = 1 on [0.5, 1], time average 1/2
    energy_grid_options o;
    o.bandwidth = 0;
    const auto g = kinflow::energy_equidistributing_grid(pilot, p, 8, o);  // floor 1e-3
    CHECK(g.front() == 0.0);
    CHECK(g.back() == 1.0);
    // The floored first half carries 0.5 * (1e-3 * 1/2) of 0.50025: far less than one step,
    // so the first step spans it and the other steps split [0.5, 1] evenly.
    CHECK(g[1] > 0.5);
    for (std::size_t i = 1; i < 8; ++i) CHECK(g[i + 1] - g[i] == Approx(g[2] - g[1]).epsilon(1e-9));
    // A floor of 1/2: density 1/4 on the first half, which then holds 0.125 of 0.625; the
    // first step's share 0.625/8 ends at (0.625/8)/(1/4) = 0.3125.
    o.floor = 0.5;
    const auto h = kinflow::energy_equidistributing_grid(pilot, p, 8, o);
    CHECK(h[1] == Approx(0.3125).epsilon(1e-12));
    // The second share ends past the first half's 0.125: at 0.5 + (2 * 0.078125 - 0.125)/1.
    CHECK(h[2] == Approx(0.53125).epsilon(1e-12));
  }
  SECTION("a backward pilot grid gives the reversed grid") {
    const auto fwd = kinflow::energy_equidistributing_grid(pilot, exact_profile(pilot), 12);
    const auto rev_pilot = pilot.reversed();
    const auto bwd = kinflow::energy_equidistributing_grid(rev_pilot, exact_profile(rev_pilot), 12);
    CHECK(bwd.direction() == -1);
    for (std::size_t i = 0; i <= 12; ++i) CHECK(bwd[i] == Approx(fwd[12 - i]).margin(1e-13));
  }
  SECTION("float grids and row-vector profiles") {
    const auto pf = time_grid<float>::uniform(400);
    Eigen::RowVectorXf p = exact_profile(pilot).transpose().cast<float>();
    const auto g = kinflow::energy_equidistributing_grid(pf, p, 8);
    CHECK(g.front() == 0.0f);
    CHECK(g.back() == 1.0f);
    const auto gd = kinflow::energy_equidistributing_grid(pilot, exact_profile(pilot), 8);
    for (std::size_t i = 0; i <= 8; ++i) CHECK(g[i] == Approx(gd[i]).margin(1e-5));
  }
}

namespace {
// v(t, x) = (1 + 2t)·c, independent of x: e(t) = ½‖c‖²(1 + 2t)², which RK4's stage
// quadrature (Simpson's rule here) integrates exactly over every step.
struct ramp_field {
  Eigen::Vector2d c{1.0, -2.0};
  void operator()(double t, const kinflow::batch<double, 2>& X, kinflow::batch<double, 2>& V) const {
    V.resize(2, X.cols());
    V.colwise() = (1 + 2 * t) * c;
  }
};
}  // namespace

TEST_CASE("energy grid: the pilot helper runs a pilot and equidistributes its energy", "[energy_grid]") {
  ramp_field field;
  const double half_c2 = 0.5 * field.c.squaredNorm();
  auto F = [&](double t) { return half_c2 * (t + 2 * t * t + 4 * t * t * t / 3); };  // ∫ e
  kinflow::batch<double, 2> pilot_x = kinflow::batch<double, 2>::Random(2, 5);
  const kinflow::batch<double, 2> before = pilot_x;

  energy_grid_options o;
  o.bandwidth = 0;
  const auto g = kinflow::pilot_energy_grid(field, kinflow::rk4, pilot_x, 8, o);
  CHECK(pilot_x == before);  // the pilot runs on a copy
  REQUIRE(g.steps() == 8);
  CHECK(g.front() == 0.0);
  CHECK(g.back() == 1.0);

  // Same grid as from the exact profile on the same pilot grid.
  const auto pilot = time_grid<double>::uniform(o.pilot_steps);
  Eigen::VectorXd exact(static_cast<Eigen::Index>(pilot.steps()));
  for (std::size_t m = 0; m < pilot.steps(); ++m) exact(static_cast<Eigen::Index>(m)) = F(pilot[m + 1]) - F(pilot[m]);
  const auto ref = kinflow::energy_equidistributing_grid(pilot, exact, 8, o);
  for (std::size_t i = 0; i <= 8; ++i) CHECK(g[i] == Approx(ref[i]).margin(1e-13));

  // Equal shares: the interpolation error of F is at most h²/8 max|e'| = (1/256)²/8 * 30
  // ≈ 5.7e-5 per node, so a share (F(1)/8 ≈ 1.35) is off by less than 8.5e-5 relative.
  std::vector<double> shares;
  for (std::size_t i = 0; i < 8; ++i) shares.push_back(F(g[i + 1]) - F(g[i]));
  CHECK(max_relative_deviation(shares) < 1e-4);

  // The solve on the new grid costs stages x steps.
  kinflow::batch<double, 2> X = pilot_x;
  const auto r = kinflow::integrate(field, kinflow::heun, g, X);
  CHECK((r.nfe.array() == 16).all());

  // Default options go through the same pipeline (smoothing included).
  const auto gd = kinflow::pilot_energy_grid(field, kinflow::rk4, pilot_x, 8);
  const auto refd = kinflow::energy_equidistributing_grid(pilot, exact, 8);
  for (std::size_t i = 0; i <= 8; ++i) CHECK(gd[i] == Approx(refd[i]).margin(1e-13));

  // Other spans, and the quadrature option, are honoured.
  energy_grid_options sub;
  sub.t0 = 0.5;
  sub.pilot_steps = 64;
  sub.quadrature = kinflow::kpe_quadrature::left_riemann;
  const auto gs = kinflow::pilot_energy_grid(field, kinflow::euler, pilot_x, 4, sub);
  CHECK(gs.front() == 0.5);
  CHECK(gs.back() == 1.0);
}

TEST_CASE("energy grid: pilot samples that blow up are left out", "[energy_grid]") {
  // v = x on one coordinate: a NaN start stays NaN; the others are fine.
  auto field = [](double t, const kinflow::batch<double, 1>& X, kinflow::batch<double, 1>& V) { V = (1 + t) * X; };
  kinflow::batch<double, 1> good(1, 2), mixed(1, 3);
  good << 1.0, -0.5;
  mixed << 1.0, std::nan(""), -0.5;
  const auto a = kinflow::pilot_energy_grid(field, kinflow::rk4, good, 6);
  const auto b = kinflow::pilot_energy_grid(field, kinflow::rk4, mixed, 6);
  CHECK(a.times() == b.times());
  kinflow::batch<double, 1> bad(1, 1);
  bad << std::nan("");
  CHECK_THROWS_WITH(kinflow::pilot_energy_grid(field, kinflow::rk4, bad, 6),
                    kinflow_test::contains("pilot samples") && kinflow_test::contains("finite"));
}

TEST_CASE("energy grid: invalid input is rejected", "[energy_grid][errors]") {
  using kinflow_test::contains;
  const auto pilot = time_grid<double>::uniform(10);
  const Eigen::VectorXd ok = Eigen::VectorXd::Ones(10);
  CHECK_THROWS_WITH(kinflow::energy_equidistributing_grid(pilot, Eigen::VectorXd::Ones(9), 4),
                    contains("profile size = 9") && contains("(10)"));
  Eigen::VectorXd neg = ok;
  neg(3) = -1;
  CHECK_THROWS_WITH(kinflow::energy_equidistributing_grid(pilot, neg, 4), contains("profile[3] = -1") && contains(">= 0"));
  Eigen::VectorXd nan = ok;
  nan(7) = std::nan("");
  CHECK_THROWS_WITH(kinflow::energy_equidistributing_grid(pilot, nan, 4), contains("profile[7]"));
  CHECK_THROWS_WITH(kinflow::energy_equidistributing_grid(pilot, ok, 0), contains("steps = 0"));
  energy_grid_options o;
  o.gamma = -1;
  CHECK_THROWS_WITH(kinflow::energy_equidistributing_grid(pilot, ok, 4, o), contains("gamma = -1"));
  o = {};
  o.bandwidth = -0.1;
  CHECK_THROWS_WITH(kinflow::energy_equidistributing_grid(pilot, ok, 4, o), contains("bandwidth = -0.1"));
  o = {};
  o.floor = 0;
  CHECK_THROWS_WITH(kinflow::energy_equidistributing_grid(pilot, ok, 4, o), contains("floor = 0") && contains("(0, 1]"));
  o.floor = 1.5;
  CHECK_THROWS_AS(kinflow::energy_equidistributing_grid(pilot, ok, 4, o), kinflow::invalid_argument);

  ramp_field field;
  const kinflow::batch<double, 2> x = kinflow::batch<double, 2>::Zero(2, 2);
  o = {};
  o.pilot_steps = 0;
  CHECK_THROWS_WITH(kinflow::pilot_energy_grid(field, kinflow::rk4, x, 4, o), contains("pilot_steps = 0"));
  CHECK_THROWS_WITH(kinflow::pilot_energy_grid(field, kinflow::rk4, kinflow::batch<double, 2>(2, 0), 4),
                    contains("pilot samples = 0"));
  o = {};
  o.t1 = 0;
  CHECK_THROWS_WITH(kinflow::pilot_energy_grid(field, kinflow::rk4, x, 4, o), contains("t1 = 0"));
}
