// The closed-form fields with threads: results that do not depend on the number of threads
// or the block sizes, and one field object evaluated from several threads at once (each
// evaluation itself threaded), where every thread gets the bits a lone evaluation gets. The
// test command also runs this file under ThreadSanitizer, which shows that the threaded
// evaluations and concurrent calls share no unsynchronized state.

#include <thread>
#include <vector>

#include "kinflow/fields/empirical.hpp"
#include "kinflow/fields/gaussian_mixture.hpp"
#include "closed_form_reference.hpp"
#include "kinflow_catch.hpp"

using kinflow::batch;
using dyn = batch<double, Eigen::Dynamic>;
using kinflow_test::ld;
using kinflow_test::make_samples;
using kinflow_test::max_abs_diff;
using kinflow_test::random_mixture;
using kinflow_test::test_rng;

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

TEST_CASE("empirical field: results do not depend on threads or block sizes",
          "[empirical][threads]") {
  test_rng rng(13);
  using kinflow::distance_method;
  struct config {
    unsigned threads;
    std::size_t budget;
  };
  const std::vector<config> configs{{1, std::size_t{32} << 20}, {2, std::size_t{32} << 20},
                                    {3, std::size_t{64} << 10}, {1, std::size_t{64} << 10},
                                    {0, std::size_t{200} << 10}};
  for (const auto& [d, n, B, method] :
       std::vector<std::tuple<Eigen::Index, Eigen::Index, Eigen::Index, distance_method>>{
           {2, 3001, 300, distance_method::automatic},
           {64, 1500, 150, distance_method::expanded},
           {64, 700, 50, distance_method::direct}}) {
    kinflow::batch<double> Y(d, n);
    rng.fill_normal(Y);
    for (const double t : {0.5, 0.99, 1.0}) {
      const kinflow::batch<double> X = make_samples(Y, B, t, 1 - t + 1e-3, rng);
      kinflow::batch<double> V0, M0;
      Eigen::VectorXd lp0, div0;
      for (std::size_t c = 0; c < configs.size(); ++c) {
        CAPTURE(d, t, c, static_cast<int>(method));
        kinflow::empirical_options<double> opt;
        opt.threads = configs[c].threads;
        opt.memory_budget = configs[c].budget;
        opt.distances = method;
        const kinflow::empirical_field<double> field(Y, opt);
        kinflow::batch<double> V, M;
        field(t, X, V);
        field.posterior_mean(t, X, M);
        const Eigen::VectorXd lp = field.log_density(t, X);
        const Eigen::VectorXd div = d == 2 ? field.divergence(t, X) : Eigen::VectorXd();
        if (c == 0) {
          V0 = V;
          M0 = M;
          lp0 = lp;
          div0 = div;
          continue;
        }
        CHECK(max_abs_diff(V, V0) <= 1e-12L * V0.cwiseAbs().maxCoeff());
        CHECK(max_abs_diff(M, M0) <= 1e-12L * M0.cwiseAbs().maxCoeff());
        CHECK(max_abs_diff(lp, lp0) <= 1e-12L * lp0.cwiseAbs().maxCoeff());
        // (At t = 1 the divergence t tr Cov / eps² is 0 up to terms below 1e-280.)
        if (d == 2) CHECK(max_abs_diff(div, div0) <= 1e-12L * (1 + div0.cwiseAbs().maxCoeff()));
      }
    }
  }
}

TEST_CASE("empirical field: V may be X itself; repeated calls give the same bits", "[empirical]") {
  test_rng rng(17);
  kinflow::batch<double> Y(5, 300), X(5, 70);
  rng.fill_normal(Y);
  rng.fill_normal(X);
  for (const auto method : {kinflow::distance_method::direct, kinflow::distance_method::expanded}) {
    kinflow::empirical_options<double> opt;
    opt.distances = method;
    opt.threads = 2;
    const kinflow::empirical_field<double> field(Y, opt);
    kinflow::batch<double> V, V2, XX = X;
    field(0.7, X, V);
    field(0.7, X, V2);
    CHECK(max_abs_diff(V2, V) == 0);  // two threads: the same bits every time
    field(0.7, XX, XX);
    CHECK(max_abs_diff(XX, V) == 0);
  }
}

TEST_CASE("gaussian mixture: results do not depend on threads or block sizes", "[mixture][threads]") {
  test_rng rng(31);
  for (const bool equal_stds : {true, false}) {
    for (const Eigen::Index d : {2, 40}) {
      const random_mixture<double, Eigen::Dynamic> mix(d, 1200, equal_stds, false, rng);
      kinflow::batch<double> X(d, 200);
      rng.fill_normal(X, 2.0);
      kinflow::batch<double> V0;
      Eigen::VectorXd lp0;
      int c = 0;
      for (const unsigned threads : {1u, 2u, 3u}) {
        for (const std::size_t budget : {std::size_t{64} << 10, std::size_t{32} << 20}) {
          kinflow::gaussian_mixture_options<double> opt;
          opt.threads = threads;
          opt.memory_budget = budget;
          const kinflow::gaussian_mixture_field<double> field(mix.pi, mix.mu, mix.s, opt);
          kinflow::batch<double> V;
          field(0.8, X, V);
          const Eigen::VectorXd lp = field.log_density(0.8, X);
          if (c++ == 0) {
            V0 = V;
            lp0 = lp;
            continue;
          }
          CAPTURE(equal_stds, d, threads, budget);
          CHECK(max_abs_diff(V, V0) <= 1e-12L * V0.cwiseAbs().maxCoeff());
          CHECK(max_abs_diff(lp, lp0) <= 1e-12L * lp0.cwiseAbs().maxCoeff());
        }
      }
    }
  }
}

TEST_CASE("gaussian mixture: divergence does not depend on threads or block sizes", "[mixture][divergence][threads]") {
  test_rng rng(47);
  for (const bool equal_stds : {true, false}) {
    const random_mixture<double, Eigen::Dynamic> mix(3, 1200, equal_stds, false, rng);
    kinflow::batch<double> X(3, 300);
    rng.fill_normal(X, 2.0);
    Eigen::VectorXd D0;
    int c = 0;
    for (const unsigned threads : {1u, 2u, 3u}) {
      for (const std::size_t budget : {std::size_t{64} << 10, std::size_t{32} << 20}) {
        kinflow::gaussian_mixture_options<double> opt;
        opt.threads = threads;
        opt.memory_budget = budget;
        const kinflow::gaussian_mixture_field<double> field(mix.pi, mix.mu, mix.s, opt);
        const Eigen::VectorXd D = field.divergence(0.8, X);
        if (c++ == 0) {
          D0 = D;
          continue;
        }
        CAPTURE(equal_stds, threads, budget);
        // Per-component stds: one pass per sample, no blocks: the same bits.
        if (!equal_stds) CHECK(D == D0);
        CHECK(max_abs_diff(D, D0) <= 1e-12L * (1 + D0.cwiseAbs().maxCoeff()));
      }
    }
  }
}
