// expect: the field is not a velocity field
// A per-sample field must return an Eigen vector, not a scalar.
#include <kinflow/integrators/explicit_rk.hpp>

int main() {
  kinflow::batch<double, 2> X = kinflow::batch<double, 2>::Zero(2, 4);
  auto returns_scalar = [](double t, const kinflow::point<double, 2>& x) { return t * x.sum(); };
  kinflow::integrate(returns_scalar, kinflow::rk4, kinflow::time_grid<>::uniform(10), X);
}
