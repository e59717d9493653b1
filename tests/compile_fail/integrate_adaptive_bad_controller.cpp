// expect: a trailing argument is neither a step-size controller
// A controller must offer `memory` and `next_factor(err, accepted, order, memory&)`; this one
// forgets the memory argument, so it is neither a controller nor an observer.
#include <kinflow/integrators/adaptive.hpp>

struct broken_controller {
  struct memory {};
  double next_factor(double err, bool accepted, int order) const { return accepted ? 1.0 : 0.5; }
};

int main() {
  kinflow::batch<double, 1> X = kinflow::batch<double, 1>::Ones(1, 4);
  auto field = [](double, const kinflow::point<double, 1>& x) { return (-x).eval(); };
  kinflow::integrate_adaptive(field, kinflow::dopri5, 0.0, 1.0, X, {}, broken_controller{});
}
