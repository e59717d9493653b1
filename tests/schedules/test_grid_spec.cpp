// Grids by name: every name parses to the builder it names with the parameters it gives
// (each compared with the builder called directly), the text form reads back to the same
// spec, and bad names, numbers and ranges throw naming `grid` or the parameter.

#include <cmath>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "kinflow/schedules/grid_spec.hpp"
#include "kinflow_catch.hpp"

using kinflow::grid_kind;
using kinflow::make_grid;
using kinflow::parse_grid_spec;
using kinflow::time_grid;

TEST_CASE("grid spec: each name gives the grid of its builder with its parameters", "[grid_spec]") {
  const std::size_t n = 17;
  // The same builder with the same numbers; compared to the last bit but for the compiler's
  // freedom to fold the direct call's constants.
  auto same = [](const time_grid<double>& a, const time_grid<double>& b) {
    REQUIRE(a.steps() == b.steps());
    for (std::size_t i = 0; i <= a.steps(); ++i) CHECK(a[i] == Approx(b[i]).margin(1e-15));
  };
  same(make_grid(parse_grid_spec("uniform"), n), time_grid<double>::uniform(n));
  same(make_grid(parse_grid_spec("cosine"), n), time_grid<double>::cosine(n));
  same(make_grid(parse_grid_spec("edm"), n), time_grid<double>::edm(n));
  same(make_grid(parse_grid_spec("edm:3"), n), time_grid<double>::edm(n, 3.0));
  same(make_grid(parse_grid_spec("shift:2.5"), n), time_grid<double>::shifted(n, 2.5));
  same(make_grid(parse_grid_spec("exponential"), n), time_grid<double>::exponential(n));
  same(make_grid(parse_grid_spec("exponential:0.01,20"), n), time_grid<double>::exponential(n, 0.01, 20.0));
  same(make_grid(parse_grid_spec("beta"), n), time_grid<double>::beta(n, 0.6, 0.6));
  same(make_grid(parse_grid_spec("beta:0.5,2"), n), time_grid<double>::beta(n, 0.5, 2.0));
  same(make_grid(parse_grid_spec("dynamic-shift:1.15"), n), time_grid<double>::dynamic_shift(n, 1.15));
  // Every grid is N + 1 times from exactly 0 to exactly 1, strictly increasing (float too).
  for (const char* name : {"uniform", "cosine", "edm", "shift:3", "exponential", "beta", "beta:2,0.4",
                           "dynamic-shift:-0.7"}) {
    INFO(name);
    const auto g = make_grid<float>(parse_grid_spec(name), 9);
    REQUIRE(g.times().size() == 10);
    CHECK(g.front() == 0.0f);
    CHECK(g.back() == 1.0f);
    for (std::size_t i = 0; i < 9; ++i) CHECK(g[i + 1] > g[i]);
  }
}

TEST_CASE("grid spec: the text form reads back; pilot grids say so", "[grid_spec]") {
  for (const char* text : {"uniform", "cosine", "edm:7", "shift:0.25", "exponential:0.002,80", "beta:0.6,0.6",
                           "dynamic-shift:-1.5", "energy:1", "acceleration:0.5"}) {
    INFO(text);
    CHECK(kinflow::to_string(parse_grid_spec(text)) == text);
  }
  const auto e = parse_grid_spec("energy");
  CHECK(e.kind == grid_kind::energy);
  CHECK(e.gamma == 1.0);
  CHECK(e.needs_pilot());
  const auto a = parse_grid_spec("acceleration:2");
  CHECK(a.kind == grid_kind::acceleration);
  CHECK(a.gamma == 2.0);
  CHECK(!parse_grid_spec("beta").needs_pilot());
  CHECK_THROWS_WITH(make_grid(a, 10), kinflow_test::contains("grid = acceleration:2") &&
                                          kinflow_test::contains("pilot"));

  auto spec = parse_grid_spec("beta");
  kinflow::set_grid_parameter(spec, "alpha", 2.0);
  CHECK(make_grid(spec, 8).times() == time_grid<double>::beta(8, 2.0, 0.6).times());
  CHECK_THROWS_WITH(kinflow::set_grid_parameter(spec, "mu", 1.0),
                    kinflow_test::contains("grid parameter = mu") && kinflow_test::contains("alpha, beta"));
}

TEST_CASE("grid spec: bad names, numbers and ranges name grid or the parameter", "[grid_spec][errors]") {
  using kinflow_test::contains;
  const std::string all = "uniform, cosine, edm[:RHO], shift:S";
  CHECK_THROWS_WITH(parse_grid_spec("spiral"), contains("grid = 'spiral'") && contains(all) && contains("beta[:A,B]"));
  CHECK_THROWS_WITH(parse_grid_spec(""), contains("grid = ''"));
  CHECK_THROWS_WITH(parse_grid_spec("Uniform"), contains("grid = 'Uniform'"));
  CHECK_THROWS_WITH(parse_grid_spec("uniform:2"), contains("grid = 'uniform:2'") && contains("no parameters"));
  // Missing numbers.
  CHECK_THROWS_WITH(parse_grid_spec("shift"), contains("grid = 'shift'") && contains("shift"));
  CHECK_THROWS_WITH(parse_grid_spec("dynamic-shift"), contains("grid = 'dynamic-shift'") && contains("dynamic-shift:MU"));
  CHECK_THROWS_WITH(parse_grid_spec("shift:"), contains("shift = ''") && contains("expected a number"));
  CHECK_THROWS_WITH(parse_grid_spec("beta:0.6"), contains("grid = 'beta:0.6'") && contains("2 number(s)"));
  CHECK_THROWS_WITH(parse_grid_spec("beta:0.6,"), contains("beta = ''"));
  CHECK_THROWS_WITH(parse_grid_spec("beta:0.6,0.6,1"), contains("grid = 'beta:0.6,0.6,1'"));
  CHECK_THROWS_WITH(parse_grid_spec("shift:x"), contains("shift = 'x'"));
  CHECK_THROWS_WITH(parse_grid_spec("shift:2x"), contains("shift = '2x'"));
  // Ranges, from the builders.
  CHECK_THROWS_WITH(parse_grid_spec("shift:-1"), contains("shift = -1") && contains("> 0"));
  CHECK_THROWS_WITH(parse_grid_spec("beta:0,0.6"), contains("alpha = 0") && contains("(0, 1e4]"));
  CHECK_THROWS_WITH(parse_grid_spec("beta:0.6,-2"), contains("beta = -2"));
  CHECK_THROWS_WITH(parse_grid_spec("dynamic-shift:nan"), contains("mu = nan") && contains("finite"));
  CHECK_THROWS_WITH(parse_grid_spec("dynamic-shift:inf"), contains("mu = inf"));
  CHECK_THROWS_WITH(parse_grid_spec("exponential:1,0.5"), contains("sigma_max = 0.5"));
  CHECK_THROWS_WITH(parse_grid_spec("edm:0"), contains("rho = 0"));
  CHECK_THROWS_WITH(parse_grid_spec("energy:-1"), contains("gamma = -1") && contains(">= 0"));
  CHECK_THROWS_WITH(parse_grid_spec("acceleration:inf"), contains("gamma = inf"));
  CHECK_THROWS_AS(parse_grid_spec("spiral"), kinflow::invalid_argument);
}

TEST_CASE("grid spec: kinds by bare name and their parameter names", "[grid_spec]") {
  CHECK(kinflow::parse_grid_kind("dynamic-shift") == grid_kind::dynamic_shift);
  CHECK(kinflow::parse_grid_kind("beta") == grid_kind::beta);
  CHECK_THROWS_WITH(kinflow::parse_grid_kind("betta"), kinflow_test::contains("grid = 'betta'"));
  CHECK(kinflow::grid_parameters_required(grid_kind::shift));
  CHECK(!kinflow::grid_parameters_required(grid_kind::beta));
  CHECK(kinflow::grid_parameter_names(grid_kind::exponential) ==
        std::vector<std::string_view>{"sigma_min", "sigma_max"});
  CHECK(kinflow::grid_parameter_names(grid_kind::cosine).empty());
}
