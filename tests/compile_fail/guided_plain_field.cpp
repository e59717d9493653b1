// expect: the field is not a velocity field
// Guidance needs a conditional field v(t, x, c): a plain field guided is no velocity field.
#include <kinflow/fields/guidance.hpp>
#include <kinflow/integrators/explicit_rk.hpp>

int main() {
  kinflow::batch<double, 2> X = kinflow::batch<double, 2>::Zero(2, 4);
  auto plain = [](double, const kinflow::point<double, 2>& x) { return (-x).eval(); };
  const auto g = kinflow::guided(plain, kinflow::class_labels::Zero(4), {.scale = 2.0});
  kinflow::integrate(g, kinflow::euler, kinflow::time_grid<>::uniform(10), X);
}
