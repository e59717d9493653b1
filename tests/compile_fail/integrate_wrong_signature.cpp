// expect: the field is not a velocity field
// A callable taking only the state (no time) is neither form of velocity field.
#include <kinflow/integrators/explicit_rk.hpp>

int main() {
  kinflow::batch<double, 2> X = kinflow::batch<double, 2>::Zero(2, 4);
  auto no_time = [](const kinflow::point<double, 2>& x) { return (-x).eval(); };
  kinflow::integrate(no_time, kinflow::euler, kinflow::time_grid<>::uniform(10), X);
}
