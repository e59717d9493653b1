// The KTS gain η(t): values at known points against the formulas of docs/math.md §7.1 written out here,
// the closed-form ∫η dt against Gauss–Legendre quadrature for every launch/landing pair,
// negative-gain rejection, the edge cases τ = 0 and τ = 1, and bad input.

#include <cmath>
#include <limits>
#include <vector>

#include "kinflow/schedules/kts.hpp"
#include "kinflow_catch.hpp"
#include "support/oracles.hpp"

using kinflow::kts_form;
using kinflow::kts_gain;
using kinflow::kts_options;

namespace {

constexpr kts_form forms[3] = {kts_form::linear, kts_form::constant, kts_form::exponential};

// ∫_a^b η by Gauss–Legendre in long double, split at τ where η may jump or kink.
long double quadrature(const kts_gain& g, long double a, long double b, int panels = 256) {
  auto eta = [&](long double t) { return g(t); };
  const long double tau = g.tau();
  if (b <= tau || a >= tau) return kinflow_test::gauss_legendre(eta, a, b, panels);
  return kinflow_test::gauss_legendre(eta, a, tau, panels) +
         kinflow_test::gauss_legendre(eta, tau, b, panels);
}

}  // namespace

TEST_CASE("kts: the default gain is the identity, exactly", "[kts]") {
  const kts_gain off;
  CHECK(off.is_identity());
  CHECK(off.alpha0() == 0);
  CHECK(off.beta0() == 0);
  CHECK(off.tau() == 0.6);
  CHECK(off.k() == 3);
  CHECK(off.early_form() == kts_form::linear);
  CHECK(off.late_form() == kts_form::exponential);
  // α0 = β0 = 0 gives η = 1 exactly whatever the other parameters, even where e^k overflows.
  for (auto early : forms)
    for (auto late : forms)
      for (double k : {3.0, 1e-9, 1000.0})
        for (double tau : {0.0, 0.6, 1.0}) {
          const kts_gain g(kts_options{.tau = tau, .k = k, .early_form = early, .late_form = late});
          CHECK(g.is_identity());
          for (double t : {0.0, 0.1, 0.6, 0.599999, 0.9, 1.0}) CHECK(g(t) == 1.0);
          CHECK(g(0.3f) == 1.0f);
          CHECK(g.integral() == 1.0);
        }
}

TEST_CASE("kts: values at known points follow the formulas of docs/math.md", "[kts]") {
  const double a0 = 0.2, b0 = 0.03, tau = 0.6, k = 3;
  const double ek = std::exp(k);
  auto gain = [&](kts_form early, kts_form late) {
    return kts_gain(kts_options{.alpha0 = a0, .beta0 = b0, .tau = tau, .k = k, .early_form = early, .late_form = late});
  };
  const kts_gain lin_exp = gain(kts_form::linear, kts_form::exponential);
  const kts_gain con_lin = gain(kts_form::constant, kts_form::linear);
  const kts_gain exp_con = gain(kts_form::exponential, kts_form::constant);

  SECTION("launch: eta(0) = 1 + alpha0, and interior points") {
    CHECK(lin_exp(0.0) == Approx(1 + a0).epsilon(1e-15));
    CHECK(con_lin(0.0) == Approx(1 + a0).epsilon(1e-15));
    CHECK(exp_con(0.0) == Approx(1 + a0).epsilon(1e-15));
    // t = 0.3 is halfway through the launch (t/τ = 1/2).
    CHECK(lin_exp(0.3) == Approx(1 + a0 * 0.5).epsilon(1e-15));
    CHECK(con_lin(0.3) == Approx(1 + a0).epsilon(1e-15));
    CHECK(exp_con(0.3) == Approx(1 + a0 * (std::exp(k * 0.5) - 1) / (ek - 1)).epsilon(1e-14));
    CHECK(lin_exp(0.45) == Approx(1 + a0 * 0.25).epsilon(1e-15));
  }
  SECTION("landing: eta(1) = 1 - beta0 (e^k - 1) for the exponential form, and interior points") {
    CHECK(lin_exp(1.0) == Approx(1 - b0 * (ek - 1)).epsilon(1e-14));
    CHECK(con_lin(1.0) == Approx(1 - b0).epsilon(1e-15));
    CHECK(exp_con(1.0) == Approx(1 - b0).epsilon(1e-15));
    // t = 0.8 is halfway through the landing ((t - τ)/(1 - τ) = 1/2).
    CHECK(lin_exp(0.8) == Approx(1 - b0 * (std::exp(k * 0.5) - 1)).epsilon(1e-14));
    CHECK(con_lin(0.8) == Approx(1 - b0 * 0.5).epsilon(1e-14));
    CHECK(exp_con(0.8) == Approx(1 - b0).epsilon(1e-15));
    CHECK(lin_exp.min_gain() == Approx(1 - b0 * (ek - 1)).epsilon(1e-14));
  }
  SECTION("continuity at tau for the linear and exponential forms, jumps for the constant ones") {
    const double before = std::nextafter(tau, 0.0);
    for (auto early : {kts_form::linear, kts_form::exponential})
      for (auto late : {kts_form::linear, kts_form::exponential}) {
        const kts_gain g = gain(early, late);
        CHECK(g(tau) == 1.0);
        CHECK(g(before) == Approx(1.0).epsilon(1e-14));
      }
    CHECK(con_lin(before) == Approx(1 + a0).epsilon(1e-15));
    CHECK(exp_con(tau) == Approx(1 - b0).epsilon(1e-15));
  }
  SECTION("times outside [0, 1] are clamped") {
    CHECK(lin_exp(-0.5) == lin_exp(0.0));
    CHECK(lin_exp(1.5) == lin_exp(1.0));
    CHECK(lin_exp(1) == lin_exp(1.0));
  }
  SECTION("float and long double agree with double") {
    for (double t : {0.0, 0.2, 0.59, 0.6, 0.7, 0.95, 1.0}) {
      CHECK(lin_exp(static_cast<float>(t)) == Approx(lin_exp(t)).epsilon(1e-6));
      CHECK(static_cast<double>(exp_con(static_cast<long double>(t))) == Approx(exp_con(t)).epsilon(1e-15));
    }
  }
}

TEST_CASE("kts: the closed-form integral matches quadrature for every launch/landing pair", "[kts]") {
  struct params {
    double a0, b0, tau, k;
  };
  // Steepness from nearly linear (cancellation-prone closed forms) to very steep; τ inside
  // and at both ends.
  const std::vector<params> cases{{0.01, 0.01, 0.6, 3},     {0.3, 0.02, 0.6, 3},   {0.5, 0.04, 0.25, 1e-6},
                                  {0.2, 0.2, 0.7, 0.05},   {0.1, 0.3, 0.5, 0.9},  {0.4, 0.01, 0.8, 40},
                                  {0.3, 0.0, 0.6, 200},    {0.3, 0.4, 0.0, 0.5},  {0.3, 0.4, 1.0, 2}};
  for (const auto& p : cases)
    for (auto early : forms)
      for (auto late : forms) {
        kts_options o{.alpha0 = p.a0, .beta0 = p.b0, .tau = p.tau, .k = p.k, .early_form = early, .late_form = late};
        o.allow_negative = true;  // the landing strength is not the point here
        const kts_gain g(o);
        const int panels = p.k > 20 ? 4096 : 256;
        INFO("alpha0 " << p.a0 << " beta0 " << p.b0 << " tau " << p.tau << " k " << p.k << " early "
                       << to_string(early) << " late " << to_string(late));
        const long double whole = quadrature(g, 0, 1, panels);
        CHECK(g.integral() == Approx(static_cast<double>(whole)).epsilon(1e-13));
        for (double t : {0.1, 0.3, 0.6, 0.65, 0.9}) {
          INFO("t = " << t);
          const long double part = quadrature(g, 0, t, panels);
          CHECK(g.cumulative(t) == Approx(static_cast<double>(part)).epsilon(1e-13));
        }
      }
}

TEST_CASE("kts: the integral's closed form, written out for the documented cases", "[kts]") {
  const double e3 = std::exp(3.0);
  // The paper's balanced setting: linear launch, exponential landing.
  CHECK(kts_gain::balanced().integral() ==
        Approx(1 + 0.6 * 0.01 / 2 - 0.4 * 0.01 * ((e3 - 1) / 3 - 1)).epsilon(1e-15));
  CHECK(kts_gain::balanced().integral() == Approx(0.98155).margin(5e-6));
  const kts_gain exp_lin(kts_options{.alpha0 = 0.2, .beta0 = 0.1, .tau = 0.5, .k = 3,
                                     .early_form = kts_form::exponential, .late_form = kts_form::linear});
  CHECK(exp_lin.integral() == Approx(1 + 0.5 * 0.2 * (1.0 / 3 - 1 / (e3 - 1)) - 0.5 * 0.1 / 2).epsilon(1e-15));
  const kts_gain con_con(kts_options{.alpha0 = 0.2, .beta0 = 0.1, .tau = 0.5,
                                     .early_form = kts_form::constant, .late_form = kts_form::constant});
  CHECK(con_con.integral() == Approx(1 + 0.5 * 0.2 - 0.5 * 0.1).epsilon(1e-15));
}

TEST_CASE("kts: a gain that turns negative is rejected unless allowed", "[kts][errors]") {
  // η(1) = 1 - β0 (e³ - 1): negative from β0 > 1/(e³ - 1) ≈ 0.0524.
  CHECK_NOTHROW(kts_gain(kts_options{.beta0 = 0.05, .k = 3}));
  CHECK(kts_gain(kts_options{.beta0 = 0.05, .k = 3}).min_gain() > 0);
  CHECK_THROWS_AS(kts_gain(kts_options{.beta0 = 0.06, .k = 3}), kinflow::invalid_argument);
  CHECK_THROWS_WITH(kts_gain(kts_options{.beta0 = 0.06, .k = 3}),
                    kinflow_test::contains("beta0 = 0.06 is invalid") && kinflow_test::contains("allow_negative") &&
                        kinflow_test::contains("1/(e^k - 1) = 0.0523"));
  const kts_gain neg(kts_options{.beta0 = 0.06, .k = 3, .allow_negative = true});
  CHECK(neg(1.0) == Approx(1 - 0.06 * (std::exp(3.0) - 1)).epsilon(1e-14));
  CHECK(neg(1.0) < 0);
  CHECK(neg.min_gain() == neg(1.0));

  // The threshold moves with k; the linear and constant landings allow up to β0 = 1.
  CHECK_NOTHROW(kts_gain(kts_options{.beta0 = 0.15, .k = 2}));   // 1/(e² - 1) ≈ 0.1565
  CHECK_THROWS_AS(kts_gain(kts_options{.beta0 = 0.16, .k = 2}), kinflow::invalid_argument);
  for (auto late : {kts_form::linear, kts_form::constant}) {
    CHECK_NOTHROW(kts_gain(kts_options{.beta0 = 1.0, .late_form = late}));
    CHECK(kts_gain(kts_options{.beta0 = 1.0, .late_form = late}).min_gain() == 0);
    CHECK_THROWS_WITH(kts_gain(kts_options{.beta0 = 1.01, .late_form = late}),
                      kinflow_test::contains("beta0 = 1.01") && kinflow_test::contains("beta0 <= 1"));
  }
  // However large, the launch boost never makes η negative.
  CHECK_NOTHROW(kts_gain(kts_options{.alpha0 = 50.0, .early_form = kts_form::exponential}));
}

TEST_CASE("kts: tau = 0 and tau = 1", "[kts]") {
  SECTION("tau = 0: no launch, the landing covers [0, 1]") {
    const kts_gain g(kts_options{.alpha0 = 0.5, .beta0 = 0.02, .tau = 0.0, .k = 3});
    CHECK(g(0.0) == 1.0);
    CHECK(g(0.5) == Approx(1 - 0.02 * (std::exp(1.5) - 1)).epsilon(1e-14));
    CHECK(g(1.0) == Approx(1 - 0.02 * (std::exp(3.0) - 1)).epsilon(1e-14));
    CHECK(g.integral() == Approx(1 - 0.02 * ((std::exp(3.0) - 1) / 3 - 1)).epsilon(1e-14));
    // The acceptance threshold is the same as for any τ < 1.
    CHECK_THROWS_AS(kts_gain(kts_options{.beta0 = 0.06, .tau = 0.0}), kinflow::invalid_argument);
  }
  SECTION("tau = 1: the launch covers [0, 1), the landing is the single point t = 1") {
    const kts_gain g(kts_options{.alpha0 = 0.5, .beta0 = 0.5, .tau = 1.0, .k = 3});
    CHECK(g(0.0) == Approx(1.5).epsilon(1e-15));
    CHECK(g(0.5) == Approx(1.25).epsilon(1e-15));
    CHECK(g(std::nextafter(1.0, 0.0)) == Approx(1.0).epsilon(1e-14));
    CHECK(g(1.0) == 1.0);  // landing position 0: β = β0 (e^0 - 1) = 0
    CHECK(g.min_gain() == 1.0);
    CHECK(g.integral() == Approx(1.25).epsilon(1e-15));
    const kts_gain c(kts_options{.alpha0 = 0.5, .beta0 = 0.5, .tau = 1.0, .late_form = kts_form::constant});
    CHECK(c(1.0) == 0.5);  // the constant landing holds at the point t = 1
    CHECK(c.integral() == Approx(1.25).epsilon(1e-15));
    CHECK(std::isfinite(c.cumulative(1.0)));
  }
}

TEST_CASE("kts: invalid parameters are rejected with the parameter, value and range", "[kts][errors]") {
  using kinflow_test::contains;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  CHECK_THROWS_WITH(kts_gain(kts_options{.alpha0 = -0.1}), contains("alpha0 = -0.1") && contains(">= 0"));
  CHECK_THROWS_AS(kts_gain(kts_options{.alpha0 = nan}), kinflow::invalid_argument);
  CHECK_THROWS_AS(kts_gain(kts_options{.alpha0 = inf}), kinflow::invalid_argument);
  CHECK_THROWS_WITH(kts_gain(kts_options{.beta0 = -1}), contains("beta0 = -1") && contains(">= 0"));
  CHECK_THROWS_AS(kts_gain(kts_options{.beta0 = nan}), kinflow::invalid_argument);
  CHECK_THROWS_WITH(kts_gain(kts_options{.tau = 1.5}), contains("tau = 1.5") && contains("[0, 1]"));
  CHECK_THROWS_WITH(kts_gain(kts_options{.tau = -0.1}), contains("tau = -0.1"));
  CHECK_THROWS_AS(kts_gain(kts_options{.tau = nan}), kinflow::invalid_argument);
  CHECK_THROWS_WITH(kts_gain(kts_options{.k = 0}), contains("k = 0") && contains("> 0"));
  CHECK_THROWS_AS(kts_gain(kts_options{.k = -1}), kinflow::invalid_argument);
  CHECK_THROWS_AS(kts_gain(kts_options{.k = inf}), kinflow::invalid_argument);
  CHECK_THROWS_WITH(kts_gain(kts_options{.early_form = static_cast<kts_form>(7)}), contains("early_form = 7"));
  CHECK_THROWS_WITH(kts_gain(kts_options{.late_form = static_cast<kts_form>(-1)}), contains("late_form = -1"));
}
