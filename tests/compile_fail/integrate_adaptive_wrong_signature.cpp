// expect: integrate_adaptive: the field is not a velocity field
// A batched field must take (t, X, V); this one forgets the output.
#include <kinflow/integrators/adaptive.hpp>

int main() {
  kinflow::batch<float, 2> X = kinflow::batch<float, 2>::Zero(2, 4);
  auto no_output = [](float, const kinflow::batch<float, 2>& x, int) { return x; };
  kinflow::integrate_adaptive(no_output, kinflow::dopri5, 0.0, 1.0, X);
}
