// Built by both consumer checks (find_package and add_subdirectory): includes the umbrella
// header, exercises a little of the API and prints the version the check looks for. With
// kinflow::native (CONSUMER_EXPECT_NATIVE) it checks that the host flag reached this
// compilation; with kinflow::blas (CONSUMER_EXPECT_BLAS) that the products go through BLAS
// and agree with Eigen's.
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
#if defined(CONSUMER_EXPECT_NATIVE) && defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  // -march=native on a CPU with AVX2 defines __AVX2__; a portable x86-64 build does not.
  __builtin_cpu_init();
#if !defined(__AVX2__)
  if (__builtin_cpu_supports("avx2")) {
    std::puts("kinflow consumer: kinflow::native did not reach the compiler (no __AVX2__ on an AVX2 CPU)");
    return 1;
  }
#endif
  std::puts("kinflow consumer: native flags checked");
#endif
#if defined(CONSUMER_EXPECT_BLAS)
  static_assert(kinflow::blas_available, "kinflow::blas must define KINFLOW_USE_BLAS");
  {
    // Product-based distances (d = 8) through BLAS and through Eigen: the same velocities
    // to rounding.
    const auto Y = kinflow::standard_normal(8, 300, 1);
    const kinflow::batch<double> X = kinflow::standard_normal(8, 50, 2);
    kinflow::empirical_options<double> blas, eigen;
    blas.products = kinflow::matrix_products::blas;
    eigen.products = kinflow::matrix_products::eigen;
    kinflow::batch<double> vb, ve;
    kinflow::empirical_field<double>(Y, blas)(0.5, X, vb);
    kinflow::empirical_field<double>(Y, eigen)(0.5, X, ve);
    const double diff = (vb - ve).cwiseAbs().maxCoeff(), scale = ve.cwiseAbs().maxCoeff();
    if (!(diff <= 1e-12 * scale)) {
      std::printf("kinflow consumer: BLAS and Eigen velocities differ by %g (scale %g)\n", diff, scale);
      return 1;
    }
  }
  std::puts("kinflow consumer: BLAS products checked");
#endif
  std::printf("kinflow consumer: version %s\n", KINFLOW_VERSION_STRING);
  return 0;
}
