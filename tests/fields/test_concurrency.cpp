// One closed-form field object evaluated from several threads at once (each evaluation
// itself threaded): every thread gets the bits a lone evaluation gets. Run under
// ThreadSanitizer by the test command, this also shows the fields share no unsynchronized
// state between concurrent calls.

#include <thread>
#include <vector>

#include "kinflow/fields/empirical.hpp"
#include "kinflow/fields/gaussian_mixture.hpp"
#include "kinflow_catch.hpp"

using kinflow::batch;
using dyn = batch<double, Eigen::Dynamic>;

namespace {

template <class Field>
void concurrent_matches_serial(const Field& field, Eigen::Index d) {
  constexpr int callers = 3;
  std::vector<dyn> X(callers), V_serial(callers), V(callers);
  std::vector<kinflow::per_sample<double>> L_serial(callers), L(callers), D_serial(callers), D(callers);
  for (int c = 0; c < callers; ++c) {
    X[c] = dyn::Random(d, 200 + 37 * c);
    field(0.3 + 0.2 * c, X[c], V_serial[c]);
    L_serial[c] = field.log_density(0.3 + 0.2 * c, X[c]);
    field.divergence(0.3 + 0.2 * c, X[c], D_serial[c]);
  }
  std::vector<std::thread> pool;
  for (int c = 0; c < callers; ++c)
    pool.emplace_back([&, c] {
      for (int rep = 0; rep < 3; ++rep) {
        field(0.3 + 0.2 * c, X[c], V[c]);
        L[c] = field.log_density(0.3 + 0.2 * c, X[c]);
        field.divergence(0.3 + 0.2 * c, X[c], D[c]);
      }
    });
  for (auto& th : pool) th.join();
  for (int c = 0; c < callers; ++c) {
    CAPTURE(c);
    CHECK(V[c] == V_serial[c]);
    CHECK(L[c] == L_serial[c]);
    CHECK(D[c] == D_serial[c]);
  }
}

}  // namespace

TEST_CASE("one empirical field from several threads at once", "[concurrency][threads]") {
  for (Eigen::Index d : {Eigen::Index(2), Eigen::Index(40)}) {
    CAPTURE(d);
    const dyn Y = dyn::Random(d, 700);
    kinflow::empirical_options<double> opt;
    opt.threads = 2;
    opt.memory_budget = std::size_t{256} << 10;  // several blocks per evaluation
    concurrent_matches_serial(kinflow::empirical_field<double>(Y, opt), d);
  }
}

TEST_CASE("one Gaussian mixture field from several threads at once", "[concurrency][threads]") {
  const Eigen::Index d = 3;
  const dyn means = dyn::Random(d, 300);
  const Eigen::VectorXd weights = Eigen::VectorXd::Constant(300, 1.0 / 300);
  const Eigen::VectorXd stds = Eigen::VectorXd::Constant(300, 0.2);
  kinflow::gaussian_mixture_options<double> opt;
  opt.threads = 2;
  concurrent_matches_serial(kinflow::gaussian_mixture_field<double>(weights, means, stds, opt), d);
}
