// kinflow::solve_with, the settings-by-value solve the command line and the Python package
// share. Oracle: the same solves written out with kinflow::integrate / integrate_adaptive
// and their options by hand, which must give the same bits; and the documented mapping of
// a stochastic last-step size onto the times walked.

#include <cmath>
#include <vector>

#include "kinflow/fields/shaped.hpp"
#include "kinflow/integrators/solve_settings.hpp"
#include "kinflow/schedules/kts.hpp"
#include "kinflow_catch.hpp"
#include "support/oracles.hpp"

namespace {

using dyn = kinflow::batch<double, Eigen::Dynamic>;
using target = kinflow_test::gaussian_target<double, Eigen::Dynamic>;

target make_target() { return target{Eigen::Vector3d(1.0, -0.5, 2.0), 0.4}; }

dyn starts(Eigen::Index B = 7) {
  dyn X(3, B);
  for (Eigen::Index j = 0; j < B; ++j)
    for (Eigen::Index r = 0; r < 3; ++r) X(r, j) = 1.2 * std::sin(1.3 * static_cast<double>(j) + 0.7 * static_cast<double>(r));
  return X;
}

void same(const kinflow::solve_result<double>& a, const kinflow::solve_result<double>& b) {
  CHECK((a.kpe.total.array() == b.kpe.total.array()).all());
  CHECK((a.kpe.early.array() == b.kpe.early.array()).all());
  CHECK(a.kpe.tau == b.kpe.tau);
  CHECK((a.nfe.array() == b.nfe.array()).all());
  CHECK(a.kpe.profile.size() == b.kpe.profile.size());
  if (a.kpe.profile.size() == b.kpe.profile.size() && a.kpe.profile.size() > 0)
    CHECK((a.kpe.profile.array() == b.kpe.profile.array()).all());
  CHECK(a.log_likelihood.size() == b.log_likelihood.size());
  if (a.log_likelihood.size() == b.log_likelihood.size())
    CHECK((a.log_likelihood.array() == b.log_likelihood.array()).all());
}

struct step_counter {
  int steps = 0;
  template <class View>
  void operator()(const View&) {
    ++steps;
  }
};

}  // namespace

TEST_CASE("solve_with runs a fixed-grid solve as integrate does", "[solve_settings]") {
  const target f = make_target();
  kinflow::solve_settings s;
  s.method = "rk4";
  s.steps = 12;
  s.grid = kinflow::parse_grid_spec("cosine");
  s.tau = 0.3;
  s.profile = kinflow::kpe_profile::per_sample;
  s.likelihood.enabled = true;
  s.last_step = kinflow::last_step_rule::euler;
  dyn X = starts(), Y = X;
  step_counter seen;
  const auto out = kinflow::solve_with(f, s, X, kinflow::along(), &seen);

  kinflow::fixed_step_options o;
  o.kpe.tau = 0.3;
  o.kpe.profile = kinflow::kpe_profile::per_sample;
  o.likelihood.enabled = true;
  o.last_step = kinflow::last_step_rule::euler;
  const auto grid = kinflow::time_grid<>::cosine(12);
  const auto ref = kinflow::integrate(f, kinflow::rk4, grid, Y, o);
  same(out.result, ref);
  CHECK((X.array() == Y.array()).all());
  CHECK(out.times == grid.times());
  CHECK(seen.steps == 12);
  CHECK(out.result.kpe.tau == 0.3);
  CHECK(out.result.drift_energy.total.size() == 0);
}

TEST_CASE("solve_with runs multistep, backward and adaptive solves as written out", "[solve_settings]") {
  const target f = make_target();
  SECTION("a multistep method with Runge-Kutta start steps on given times, backward") {
    kinflow::solve_settings s;
    s.method = "dpmpp2m";
    s.times = {0.95, 0.7, 0.5, 0.2, 0.05};
    s.start = kinflow::multistep_start::runge_kutta;
    dyn X = starts(), Y = X;
    const auto out = kinflow::solve_with(f, s, X, kinflow::along());
    kinflow::fixed_step_options o;
    o.kpe.tau = kinflow::default_kpe_tau;
    o.start = kinflow::multistep_start::runge_kutta;
    const auto ref = kinflow::integrate(f, kinflow::dpmpp2m, kinflow::time_grid<double>(s.times), Y, o);
    same(out.result, ref);
    CHECK((X.array() == Y.array()).all());
    CHECK(out.times == s.times);
  }
  SECTION("an adaptive method over its span, with the split as a breakpoint") {
    kinflow::solve_settings s;
    s.method = "bs32";
    s.rtol = 1e-7;
    s.atol = 1e-8;
    s.t0 = 1.0;
    s.t1 = 0.1;
    s.tau = 0.45;
    dyn X = starts(), Y = X;
    const auto out = kinflow::solve_with(f, s, X, kinflow::along());
    kinflow::adaptive_options o;
    o.rtol = 1e-7;
    o.atol = 1e-8;
    o.kpe.tau = 0.45;
    o.breakpoints = {0.45};
    const auto ref = kinflow::integrate_adaptive(f, kinflow::bs32, 1.0, 0.1, Y, o);
    same(out.result, ref);
    CHECK((X.array() == Y.array()).all());
    CHECK((out.result.accepted.array() == ref.accepted.array()).all());
    CHECK(out.times.empty());
  }
  SECTION("an unknown method names the setting") {
    kinflow::solve_settings s;
    s.method = "rk5";
    dyn X = starts();
    CHECK_THROWS_WITH(kinflow::solve_with(f, s, X, kinflow::along()),
                      kinflow_test::contains("method") && kinflow_test::contains("rk5"));
  }
}

TEST_CASE("solve_with: pilot grids, stochastic last steps and shaped fields", "[solve_settings]") {
  const target f = make_target();
  SECTION("an energy grid from a pilot run on the first columns") {
    kinflow::solve_settings s;
    s.method = "heun";
    s.steps = 10;
    s.grid = kinflow::parse_grid_spec("energy");
    s.pilot_columns = 3;
    dyn X = starts(), Y = X;
    const auto out = kinflow::solve_with(f, s, X, kinflow::along());
    const dyn pilot = Y.leftCols(3);
    const auto grid = kinflow::make_grid(s.grid, 10, f, kinflow::heun, pilot);
    CHECK(out.times == grid.times());
    kinflow::fixed_step_options o;
    o.kpe.tau = kinflow::default_kpe_tau;
    same(out.result, kinflow::integrate(f, kinflow::heun, grid, Y, o));
  }
  SECTION("a stochastic solve with a last-step size walks the mapped grid, then 1") {
    kinflow::solve_settings s;
    s.method = "sde-euler";
    s.steps = 8;
    s.last_step = kinflow::last_step_rule::denoise;
    s.stochastic.last_step_size = 0.04;
    s.stochastic.noise_seed = 9;
    dyn X = starts(), Y = X;
    const auto out = kinflow::solve_with(f, s, X, kinflow::along());
    REQUIRE(out.times.size() == 10);
    for (std::size_t n = 0; n <= 8; ++n) CHECK(out.times[n] == Approx(0.96 * static_cast<double>(n) / 8).margin(1e-15));
    CHECK(out.times.back() == 1.0);
    kinflow::stochastic_options o;
    o.last_step = kinflow::last_step_rule::denoise;
    o.last_step_size = 0.04;
    o.noise_seed = 9;
    o.kpe.tau = kinflow::default_kpe_tau;
    const auto ref = kinflow::integrate(f, kinflow::sde_euler, kinflow::time_grid<>::uniform(8), Y, o);
    same(out.result, ref);
    CHECK((out.result.drift_energy.total.array() == ref.drift_energy.total.array()).all());
    CHECK((X.array() == Y.array()).all());
  }
  SECTION("a shaped field's own switch time splits the energy unless the settings name a split") {
    kinflow::kts_options k;
    k.alpha0 = 0.3;
    k.tau = 0.7;
    for (double alpha : {0.3, 0.0}) {
      k.alpha0 = alpha;
      const kinflow::kts_gain gain(k);
      const auto shaped = kinflow::shaped(f, gain);
      kinflow::solve_settings s;
      s.method = "midpoint";
      s.steps = 10;
      s.profile = kinflow::kpe_profile::per_sample;
      dyn X = starts();
      const auto own = kinflow::solve_with(shaped, s, X, kinflow::along());
      CHECK(own.result.kpe.tau == (alpha > 0 ? 0.7 : kinflow::default_kpe_tau));
      s.tau = 0.2;  // named: it wins over the gain's switch time
      X = starts();
      const auto named = kinflow::solve_with(shaped, s, X, kinflow::along());
      CHECK(named.result.kpe.tau == 0.2);
      // the parts are the profile's steps on each side: [0, 0.1] and [0.1, 0.2] are early
      const auto& p = named.result.kpe.profile;
      for (Eigen::Index i = 0; i < p.rows(); ++i) {
        CHECK(named.result.kpe.early(i) == Approx(p(i, 0) + p(i, 1)).epsilon(1e-13));
        CHECK(named.result.kpe.late(i) == Approx(p.row(i).tail(8).sum()).epsilon(1e-13));
      }
    }
  }
  SECTION("an adaptive solve of a shaped field ends steps at both the named split and the switch time") {
    kinflow::kts_options k;
    k.alpha0 = 0.3;
    k.tau = 0.7;
    const kinflow::kts_gain gain(k);
    const auto shaped = kinflow::shaped(f, gain);
    kinflow::solve_settings s;
    s.method = "dopri5";
    s.rtol = s.atol = 1e-9;
    s.tau = 0.25;
    dyn X = starts();
    const auto out = kinflow::solve_with(shaped, s, X, kinflow::along());
    CHECK(out.result.kpe.tau == 0.25);
    // The early part alone, by an adaptive solve that stops at 0.25: both approximate the
    // same integral to the tolerance. Without a stop at 0.25 the step across it would count
    // whole on one side, an error of a step's share of the energy (percent, at this size).
    kinflow::solve_settings e = s;
    e.t1 = 0.25;
    dyn Y = starts();
    const auto early = kinflow::solve_with(shaped, e, Y, kinflow::along());
    for (Eigen::Index i = 0; i < X.cols(); ++i)
      CHECK(out.result.kpe.early(i) == Approx(early.result.kpe.total(i)).epsilon(1e-6));
  }
}
