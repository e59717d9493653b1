// expect: the field is not a velocity field
// A field without a class parameter bound to classes: conditioned() makes no velocity field of
// it, and the solve says so in one line rather than in a template backtrace.
#include <kinflow/core/conditions.hpp>
#include <kinflow/integrators/explicit_rk.hpp>

int main() {
  kinflow::batch<double, 2> X = kinflow::batch<double, 2>::Zero(2, 4);
  auto plain = [](double, const kinflow::point<double, 2>& x) { return (-x).eval(); };
  const auto bound = kinflow::conditioned(plain, kinflow::class_labels::Zero(4));
  kinflow::integrate(bound, kinflow::euler, kinflow::time_grid<>::uniform(10), X);
}
