// Certified pruning of the closed-form fields (docs/math.md, "Certified pruning"): every
// pruned quantity is checked against the plain long-double formulas of
// closed_form_reference.hpp, within the bound the docs derive for a relative mass ε left
// out, plus rounding:
//   log density  0 ≤ log p − log p̂ ≤ ε
//   posterior mean  ‖m̂ − m‖ ≤ 2εR,   trace  |T̂ − T| ≤ 8εR²,   R = max_i ‖y_i − m‖.
// With ε = 1e-3 the bound bites (the errors are far above rounding), so a wrong bound on a
// leaf's logits shows; the sets include the adversarial ones (duplicates, a sphere, a far
// outlier). Full solves with pruning land where the dense ones do.
#include "kinflow_catch.hpp"

#include <kinflow/fields/empirical.hpp>
#include <kinflow/integrators/explicit_rk.hpp>
#include <kinflow/schedules/time_grid.hpp>

#include <Eigen/Core>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "closed_form_reference.hpp"
#include "support/pruning_steps.hpp"

namespace {

using kinflow_test::ld;
using dyn = kinflow::batch<double>;

// Named point sets of n points in dimension d.
dyn make_set(const std::string& kind, Eigen::Index d, Eigen::Index n, kinflow_test::test_rng& rng) {
  dyn Y(d, n);
  if (kind == "normal") {
    rng.fill_normal(Y);
  } else if (kind == "clustered") {  // 12 tight clusters
    dyn C(d, 12);
    rng.fill_normal(C, 3.0);
    for (Eigen::Index i = 0; i < n; ++i)
      for (Eigen::Index k = 0; k < d; ++k) Y(k, i) = C(k, i % 12) + 0.2 * rng.normal();
  } else if (kind == "duplicates") {  // 8 distinct points, each repeated
    dyn P(d, 8);
    rng.fill_normal(P);
    for (Eigen::Index i = 0; i < n; ++i) Y.col(i) = P.col(i % 8);
  } else if (kind == "sphere") {  // every point at the same distance from the centre
    rng.fill_normal(Y);
    for (Eigen::Index i = 0; i < n; ++i) Y.col(i).normalize();
  } else {  // "outlier": a normal set and one point very far away
    rng.fill_normal(Y);
    Y.col(n / 2).setConstant(40.0);
  }
  return Y;
}

kinflow::empirical_options<double> options(kinflow::pruning_mode mode, double eps, unsigned threads = 1) {
  kinflow::empirical_options<double> opt;
  opt.pruning = mode;
  opt.pruning_eps = eps;
  opt.threads = threads;
  return opt;
}

}  // namespace

TEST_CASE("pruned fields stay within the certified bound of the exact values", "[empirical][pruning]") {
  kinflow_test::test_rng rng(2024);
  for (const Eigen::Index d : {Eigen::Index(2), Eigen::Index(64)}) {
    for (const std::string kind : {"normal", "clustered", "duplicates", "sphere", "outlier"}) {
      const Eigen::Index n = 800;
      const dyn Y = make_set(kind, d, n, rng);
      const kinflow_test::ld_matrix Yl = Y.cast<ld>();
      for (const double eps : {1e-3, 1e-12}) {
        const kinflow::empirical_field<double> field(Y, options(kinflow::pruning_mode::on, eps));
        for (const double t : {0.1, 0.4, 0.7, 0.9, 0.99, 1.0}) {
          CAPTURE(d, kind, eps, t);
          const double sigma = std::max(1 - t, kinflow::default_time_clamp<double>());
          const dyn X = kinflow_test::make_samples(Y, 24, t, sigma, rng);
          field.reset_pruning_statistics();
          const dyn M = field.posterior_mean(t, X);
          const auto logp = field.log_density(t, X);
          const auto div = field.divergence(t, X);
          const auto stats = field.pruning_statistics();
          CHECK(stats.pruned_evaluations == stats.evaluations);
          for (Eigen::Index j = 0; j < X.cols(); ++j) {
            CAPTURE(j);
            const auto ref = kinflow_test::empirical_reference(Yl, X.col(j).cast<ld>(), t, sigma);
            const Eigen::VectorXd md = ref.mean.cast<double>();
            const ld R = static_cast<ld>((Y.colwise() - md).colwise().norm().maxCoeff()) * (1 + 1e-12L);
            const ld u = 1e-12L * (1 + R);  // rounding of the double computation
            // Posterior mean within 2εR.
            CHECK(static_cast<ld>((M.col(j).cast<ld>() - ref.mean).norm()) <= 2 * eps * R + u);
            // Log density: pruning only removes mass, at most a share ε of it.
            const ld dlog = ref.log_density - static_cast<ld>(logp(j));
            const ld ulog = 1e-12L * (1 + std::abs(ref.log_density));
            CHECK(dlog >= -ulog);
            CHECK(dlog <= eps + ulog);
            // Divergence: t/σ³ times the trace's error (t/σ² at t = 1).
            const ld scale = t >= 1 ? t / (sigma * sigma) : t / (sigma * sigma * sigma);
            const ld udiv = 1e-10L * (std::abs(ref.divergence) + scale * (ref.trace + R * R) + 1);
            CHECK(std::abs(static_cast<ld>(div(j)) - ref.divergence) <= scale * 8 * eps * R * R + udiv);
          }
        }
      }
    }
  }
}

TEST_CASE("pruning skips most points late on clustered data, and the bound is not vacuous",
          "[empirical][pruning]") {
  kinflow_test::test_rng rng(7);
  const dyn Y = make_set("clustered", 2, 4000, rng);
  const kinflow::empirical_field<double> pruned(Y, options(kinflow::pruning_mode::automatic, 1e-12));
  const kinflow::empirical_field<double> dense(Y, options(kinflow::pruning_mode::off, 1e-12));
  // Early on nothing can be left out: the automatic mode runs the dense pass.
  dyn X0(2, 256);
  rng.fill_normal(X0);
  pruned.reset_pruning_statistics();
  (void)pruned.velocity(0.02, X0);
  CHECK(pruned.pruning_statistics().pruned_evaluations == 0);
  CHECK(pruned.pruning_statistics().touched_share() == 1.0);
  // Late, samples near the data touch few points.
  const dyn X = kinflow_test::make_samples(Y, 256, 0.95, 0.05, rng);
  pruned.reset_pruning_statistics();
  const dyn Vp = pruned.velocity(0.95, X);
  const auto stats = pruned.pruning_statistics();
  CHECK(stats.pruned_evaluations == 1);
  CHECK(stats.touched_share() < 0.3);
  const dyn Vd = dense.velocity(0.95, X);
  CHECK((Vp - Vd).cwiseAbs().maxCoeff() <= 1e-9 * (1 + Vd.cwiseAbs().maxCoeff()));
  CHECK(dense.pruning_statistics().pruned_evaluations == 0);
  CHECK(dense.pruning_statistics().touched_share() == 1.0);
}

TEST_CASE("a solve with pruning lands where the dense solve does", "[empirical][pruning]") {
  kinflow_test::test_rng rng(11);
  for (const Eigen::Index d : {Eigen::Index(2), Eigen::Index(16)}) {
    CAPTURE(d);
    const dyn Y = make_set("clustered", d, 1500, rng);
    dyn X0(d, 150);
    rng.fill_normal(X0);
    const auto grid = kinflow::time_grid<double>::uniform(40);
    kinflow::fixed_step_options opt;
    opt.kpe.enabled = true;
    opt.likelihood.enabled = true;
    dyn Xp = X0, Xd = X0;
    const kinflow::empirical_field<double> pruned(Y, options(kinflow::pruning_mode::automatic, 1e-12));
    const kinflow::empirical_field<double> dense(Y, options(kinflow::pruning_mode::off, 1e-12));
    const auto rp = kinflow::integrate(pruned, kinflow::rk4, grid, Xp, opt);
    const auto rd = kinflow::integrate(dense, kinflow::rk4, grid, Xd, opt);
    CHECK(pruned.pruning_statistics().pruned_evaluations > 0);
    CHECK(pruned.pruning_statistics().touched_share() < 0.9);
    CHECK((Xp - Xd).cwiseAbs().maxCoeff() <= 1e-10);
    CHECK((rp.kpe.total - rd.kpe.total).cwiseAbs().maxCoeff() <= 1e-9 * (1 + rd.kpe.total.cwiseAbs().maxCoeff()));
    CHECK((rp.log_likelihood - rd.log_likelihood).cwiseAbs().maxCoeff() <=
          1e-9 * (1 + rd.log_likelihood.cwiseAbs().maxCoeff()));
  }
}

TEST_CASE("the recorded passes give the share touched per step", "[empirical][pruning]") {
  // Oracle: an observed solve (no tiling) that reads the field's counters after every step;
  // with Euler and midpoint every evaluation of step n lies in [t_n, t_{n+1}), so the
  // recorded passes binned by the grid must give the same counts per step.
  kinflow_test::test_rng rng(13);
  const dyn Y = make_set("clustered", 2, 3000, rng);
  const kinflow::empirical_field<double> field(Y, options(kinflow::pruning_mode::automatic, 1e-12));
  dyn X0(2, 200);
  rng.fill_normal(X0);
  const auto grid = kinflow::time_grid<double>::cosine(25);
  auto check_method = [&](const auto& method) {
    field.reset_pruning_statistics();
    field.record_pruning_passes(true);
    std::vector<kinflow::pruning_stats> seen;
    dyn X = X0;
    (void)kinflow::integrate(field, method, grid, X, kinflow::fixed_step_options{},
                             kinflow_test::pruning_step_observer(field, seen));
    const auto by_step = kinflow::pruning_by_step(field.pruning_passes(), grid.times());
    REQUIRE(by_step.size() == 25);
    REQUIRE(seen.size() == 25);
    std::uint64_t pairs = 0;
    for (std::size_t n = 0; n < 25; ++n) {
      CAPTURE(n);
      CHECK(by_step[n].evaluations == seen[n].evaluations);
      CHECK(by_step[n].pairs == seen[n].pairs);
      CHECK(by_step[n].dense_pairs == seen[n].dense_pairs);
      pairs += by_step[n].pairs;
    }
    CHECK(pairs == field.pruning_statistics().pairs);
    // Late steps touch few points, the first ones all of them.
    CHECK(by_step.front().touched_share() == 1.0);
    CHECK(by_step.back().touched_share() < 0.2);
  };
  check_method(kinflow::euler);
  check_method(kinflow::midpoint);
  // Off again: nothing more is recorded; the reset clears the log.
  field.record_pruning_passes(false);
  const std::size_t recorded = field.pruning_passes().size();
  (void)field.velocity(0.5, X0);
  CHECK(field.pruning_passes().size() == recorded);
  field.reset_pruning_statistics();
  CHECK(field.pruning_passes().empty());
}

TEST_CASE("passes are binned by the grid's direction, its last step closed", "[pruning]") {
  auto pass = [](double t, std::uint64_t pairs) { return kinflow::pruning_pass{t, t, pairs, 100}; };
  const std::vector<kinflow::pruning_pass> passes{pass(0.0, 1), pass(0.25, 2), pass(0.5, 4), pass(0.75, 8),
                                                  pass(1.0, 16), pass(1.5, 32)};
  const auto up = kinflow::pruning_by_step(passes, {0.0, 0.5, 1.0});
  REQUIRE(up.size() == 2);
  CHECK(up[0].pairs == 1 + 2);
  CHECK(up[1].pairs == 4 + 8 + 16);  // the end of the last step included; 1.5 outside
  const auto down = kinflow::pruning_by_step(passes, {1.0, 0.5, 0.0});
  REQUIRE(down.size() == 2);
  CHECK(down[0].pairs == 16 + 8);  // (0.5, 1.0], from 1.0 down
  CHECK(down[1].pairs == 4 + 2 + 1);
  CHECK(kinflow::pruning_by_step(passes, {0.3}).empty());
  CHECK(kinflow::pruning_by_step({}, {0.0, 1.0})[0].touched_share() == 1.0);
}

TEST_CASE("pruned results do not depend on threads, and barely on the memory budget",
          "[empirical][pruning]") {
  kinflow_test::test_rng rng(5);
  const dyn Y = make_set("clustered", 8, 3000, rng);
  const dyn X = kinflow_test::make_samples(Y, 500, 0.9, 0.1, rng);
  const kinflow::empirical_field<double> one(Y, options(kinflow::pruning_mode::on, 1e-12, 1));
  const kinflow::empirical_field<double> two(Y, options(kinflow::pruning_mode::on, 1e-12, 2));
  auto small_opt = options(kinflow::pruning_mode::on, 1e-12, 2);
  small_opt.memory_budget = std::size_t{1} << 20;
  const kinflow::empirical_field<double> small(Y, small_opt);
  dyn V1, V2, V3;
  kinflow::per_sample<double> D1, D2, D3;
  one.velocity_and_divergence(0.9, X, V1, D1);
  two.velocity_and_divergence(0.9, X, V2, D2);
  small.velocity_and_divergence(0.9, X, V3, D3);
  CHECK(one.pruning_statistics().pruned_evaluations == 1);
  CHECK(small.pruning_statistics().pruned_evaluations == 1);
  CHECK(V1 == V2);  // the same operations for every sample, bit for bit
  CHECK(D1 == D2);
  CHECK((V1 - V3).cwiseAbs().maxCoeff() <= 1e-11 * (1 + V1.cwiseAbs().maxCoeff()));
  CHECK((D1 - D3).cwiseAbs().maxCoeff() <= 1e-10 * (1 + D1.cwiseAbs().maxCoeff()));
}

TEST_CASE("partial states of pruned shards merge to the field of all points", "[empirical][pruning]") {
  kinflow_test::test_rng rng(9);
  const dyn Y = make_set("clustered", 4, 2400, rng);
  const dyn X = kinflow_test::make_samples(Y, 100, 0.85, 0.15, rng);
  const double t = 0.85;
  const auto opt = options(kinflow::pruning_mode::on, 1e-12);
  const kinflow::empirical_field<double> all(Y, options(kinflow::pruning_mode::off, 1e-12));
  auto state = kinflow::empirical_field<double>(Y.leftCols(1000), opt).partial_state(t, X, {true, true});
  const auto rest = kinflow::empirical_field<double>(Y.rightCols(1400), opt).partial_state(t, X, {true, true});
  state.merge(rest);
  dyn V;
  all.velocity_from(t, X, state, V);
  const dyn Vd = all.velocity(t, X);
  CHECK((V - Vd).cwiseAbs().maxCoeff() <= 1e-9 * (1 + Vd.cwiseAbs().maxCoeff()));
  const auto D = all.divergence_from(t, state);
  const auto Dd = all.divergence(t, X);
  CHECK((D - Dd).cwiseAbs().maxCoeff() <= 1e-8 * (1 + Dd.cwiseAbs().maxCoeff()));
}

TEST_CASE("pruning_eps outside (0, 0.5] is rejected by name", "[empirical][pruning]") {
  const dyn Y = dyn::Random(2, 10);
  for (const double bad : {0.0, -1e-3, 0.75, std::nan("")}) {
    CAPTURE(bad);
    CHECK_THROWS_WITH(kinflow::empirical_field<double>(Y, options(kinflow::pruning_mode::on, bad)),
                      kinflow_test::contains("pruning_eps") && kinflow_test::contains("0 < pruning_eps <= 0.5"));
  }
}
