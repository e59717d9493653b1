// expect: velocity_field<
// An int is not a velocity field: kinflow::evaluate must reject it through its concept,
// with a short constraint diagnostic rather than a template backtrace.
#include <kinflow/core/field_evaluator.hpp>

int main() {
  int not_a_field = 0;
  kinflow::batch<double, 2> x = kinflow::batch<double, 2>::Zero(2, 3);
  kinflow::batch<double, 2> v;
  kinflow::evaluate(not_a_field, 0.0, x, v);
}
