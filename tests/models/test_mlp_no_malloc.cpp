// Repeated evaluations of the MLP field at one batch size do not allocate: the hidden
// activations live in buffers reused from the previous call. Eigen's runtime malloc check
// is armed around the second call; an allocation makes eigen_assert throw.

#include <stdexcept>

#define EIGEN_RUNTIME_NO_MALLOC
#define eigen_assert(x) \
  do {                  \
    if (!(x)) throw std::runtime_error("eigen_assert: " #x); \
  } while (false)

#include "kinflow/data/random.hpp"
#include "kinflow/models/mlp_npz.hpp"
#include "kinflow_catch.hpp"
#include "npz_writer.hpp"

TEST_CASE("mlp_field evaluations do not allocate once the buffers exist", "[mlp][malloc]") {
  const auto f = kinflow::load_mlp_field<double>(
      (kinflow_test::models_dir() / "fm_mlp_8gaussians.npz").string());
  for (const Eigen::Index B : {Eigen::Index{1}, Eigen::Index{257}, Eigen::Index{1000}}) {
    INFO("B = " << B);
    const auto X = kinflow::standard_normal<double, 2>(2, B, 3);
    kinflow::batch<double, 2> V(2, B), W(2, B);
    const kinflow::sample_times<double> T = kinflow::sample_times<double>::LinSpaced(B, 0.0, 1.0);
    f(0.25, X, V);  // sizes the buffers
    Eigen::internal::set_is_malloc_allowed(false);
    bool threw = false;
    try {
      f(0.5, X, V);
      f.velocity_at_times(T, X, W);
    } catch (const std::runtime_error&) {
      threw = true;
    }
    Eigen::internal::set_is_malloc_allowed(true);
    CHECK_FALSE(threw);
    CHECK(V.allFinite());
    CHECK(W.allFinite());
  }
}

TEST_CASE("the malloc check is armed in this build", "[mlp][malloc]") {
  Eigen::internal::set_is_malloc_allowed(false);
  bool threw = false;
  try {
    Eigen::MatrixXd m(50, 50);
    m.setZero();
  } catch (const std::runtime_error&) {
    threw = true;
  }
  Eigen::internal::set_is_malloc_allowed(true);
  CHECK(threw);
}
