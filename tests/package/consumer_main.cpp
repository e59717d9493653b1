// Built by both consumer checks (find_package and add_subdirectory): includes the umbrella
// header, exercises a little of the API and prints the version the check looks for.
#include <kinflow/kinflow.hpp>

#include <cmath>
#include <cstdio>

int main() {
  kinflow::batch<double, 2> x(2, 2);
  x << 1.0, -1.0,
       2.0, 0.5;
  // Velocity of the straight path towards the origin at t = 0: v = -x.
  auto towards_origin = [](double t, const kinflow::point<double, 2>& xi) -> Eigen::Vector2d {
    return -xi / (1.0 - t);
  };
  kinflow::batch<double, 2> v;
  kinflow::evaluate(towards_origin, 0.0, x, v);
  if ((v + x).cwiseAbs().maxCoeff() != 0.0) {
    std::puts("kinflow consumer: evaluate returned a wrong velocity");
    return 1;
  }
  std::printf("kinflow consumer: version %s\n", KINFLOW_VERSION_STRING);
  return 0;
}
