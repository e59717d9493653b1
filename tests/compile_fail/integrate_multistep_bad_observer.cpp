// expect: neither kinflow::along\(\.\.\.\) nor an observer
// A multistep solve's observer must take a kinflow::multistep_step_view.
#include <kinflow/integrators/multistep.hpp>

int main() {
  kinflow::batch<double, 2> X = kinflow::batch<double, 2>::Zero(2, 3);
  auto field = [](double, const kinflow::point<double, 2>& x) -> kinflow::point<double, 2> { return -x; };
  kinflow::integrate(field, kinflow::dpmpp2m, kinflow::time_grid<>::uniform(4), X, {},
                     [](const kinflow::fixed_step_view<double, 2, 4>&) {});
}
