// Conditional fields and classifier-free guidance (kinflow/core/conditions.hpp,
// kinflow/fields/class_conditional.hpp, kinflow/fields/guidance.hpp). The oracles:
//  - the exact class-conditional field against the plain long-double formulas on the class's
//    own points (closed_form_reference.hpp), and its unconditional field against the
//    unlabelled empirical field;
//  - bound classes in tiled, adaptive and Hutchinson solves against each class solved on its
//    own (the columns a solver hands the field must be mapped back to their samples);
//  - guidance against its definition with per-class Gaussian fields written out by hand, its
//    limits w = 0 and w = 1, its exact divergence against central differences of the guided
//    velocity, and the guided log-likelihood against Hutchinson's estimate;
//  - the energy parts: they sum to the kinetic path energy, converge at RK4's order, and cost
//    no evaluation.
#include "kinflow_catch.hpp"

#include <kinflow/fields/class_conditional.hpp>
#include <kinflow/fields/guidance.hpp>
#include <kinflow/fields/shaped.hpp>
#include <kinflow/integrators/guidance_energy.hpp>
#include <kinflow/integrators/adaptive.hpp>
#include <kinflow/integrators/explicit_rk.hpp>
#include <kinflow/schedules/time_grid.hpp>

#include <Eigen/Core>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "closed_form_reference.hpp"
#include "support/pruning_steps.hpp"

namespace {

using kinflow_test::ld;
using dyn = kinflow::batch<double>;
using kinflow::class_labels;

// A labelled set: K clusters of n points each in dimension d, the label of a point its cluster.
struct labelled_set {
  dyn Y;
  class_labels labels;
};
labelled_set clusters(Eigen::Index d, Eigen::Index K, Eigen::Index n, std::uint64_t seed) {
  kinflow_test::test_rng rng(seed);
  labelled_set s{dyn(d, K * n), class_labels(K * n)};
  dyn C(d, K);
  rng.fill_normal(C, 2.0);
  for (Eigen::Index i = 0; i < K * n; ++i) {
    const Eigen::Index k = (i * 7 + i / 3) % K;  // interleaved, not sorted by class
    s.labels(i) = k;
    for (Eigen::Index r = 0; r < d; ++r) s.Y(r, i) = C(r, k) + 0.7 * rng.normal();
  }
  return s;
}

kinflow_test::ld_matrix class_points(const labelled_set& s, Eigen::Index c) {
  std::vector<Eigen::Index> idx;
  for (Eigen::Index i = 0; i < s.labels.size(); ++i)
    if (c < 0 || s.labels(i) == c) idx.push_back(i);
  kinflow_test::ld_matrix P(s.Y.rows(), static_cast<Eigen::Index>(idx.size()));
  for (std::size_t m = 0; m < idx.size(); ++m) P.col(static_cast<Eigen::Index>(m)) = s.Y.col(idx[m]).cast<ld>();
  return P;
}

kinflow::empirical_options<double> one_thread() {
  kinflow::empirical_options<double> o;
  o.threads = 1;
  return o;
}

// A conditional field written out by hand: class c is the Gaussian N(μ_c, s² I) and the
// unconditional field the equal mixture of the classes. Its velocities on the linear path
// x_t = t y + (1 - t) x0 are closed-form (docs/math.md §3).
struct gaussian_classes {
  dyn mu;       // d x K
  double s = 0.5;

  Eigen::VectorXd class_velocity(double t, const Eigen::VectorXd& x, Eigen::Index c) const {
    const double var = t * t * s * s + (1 - t) * (1 - t);
    const Eigen::VectorXd m = mu.col(c) + (t * s * s / var) * (x - t * mu.col(c));
    return (m - x) / (1 - t);
  }
  Eigen::VectorXd mixture_velocity(double t, const Eigen::VectorXd& x) const {
    const double var = t * t * s * s + (1 - t) * (1 - t);
    Eigen::VectorXd logit(mu.cols());
    for (Eigen::Index k = 0; k < mu.cols(); ++k) logit(k) = -(x - t * mu.col(k)).squaredNorm() / (2 * var);
    const Eigen::VectorXd w = (logit.array() - logit.maxCoeff()).exp().matrix();
    Eigen::VectorXd v = Eigen::VectorXd::Zero(x.size());
    for (Eigen::Index k = 0; k < mu.cols(); ++k) v += w(k) * class_velocity(t, x, k);
    return v / w.sum();
  }
  // The per-sample conditional form.
  Eigen::VectorXd operator()(double t, const kinflow::point<double>& x, Eigen::Index c) const {
    return c == kinflow::null_class ? mixture_velocity(t, x) : class_velocity(t, x, c);
  }
};

}  // namespace

TEST_CASE("batch_columns maps the columns of nested scopes to samples", "[conditions]") {
  using kinflow::batch_columns;
  CHECK(batch_columns::current()[5] == 5);
  {
    const Eigen::Index ids[] = {4, 9, 2};
    const batch_columns::scope active(ids);
    CHECK(batch_columns::current()[1] == 9);
    {
      const batch_columns::scope tile(1);  // columns 1, 2 of the active list
      CHECK(batch_columns::current()[0] == 9);
      CHECK(batch_columns::current()[1] == 2);
      const auto stacked = batch_columns::scope::repeating(2);  // two copies of the tile
      CHECK(batch_columns::current()[3] == 2);
      CHECK(batch_columns::current()[2] == 9);
    }
    CHECK(batch_columns::current()[2] == 2);
  }
  CHECK(batch_columns::current()[7] == 7);
}

TEST_CASE("the class-conditional field is the empirical field of each class's points", "[conditional]") {
  const auto s = clusters(3, 4, 15, 11);
  const kinflow::class_conditional_field<double> field(s.Y, s.labels, one_thread());
  REQUIRE(field.classes() == 4);
  REQUIRE(field.size() == 60);
  REQUIRE(field.class_size(2) == (s.labels.array() == 2).count());
  const kinflow::empirical_field<double> all(s.Y, one_thread());

  kinflow_test::test_rng rng(5);
  dyn X(3, 10);
  rng.fill_normal(X, 2.0);
  class_labels C(10);
  C << 0, 1, 2, 3, -1, 3, 2, 1, 0, -1;
  for (const double t : {0.0, 0.3, 0.8, 0.97}) {
    dyn U, Vc, Vu_plain;
    kinflow::per_sample<double> Du, Dc;
    field.velocity_pair_and_divergence(t, X, C, U, Vc, Du, Dc);
    const auto logp = field.log_density(t, X, C);
    all(t, X, Vu_plain);
    const auto Du_plain = all.divergence(t, X);
    for (Eigen::Index j = 0; j < X.cols(); ++j) {
      const auto ref = kinflow_test::empirical_reference(class_points(s, C(j)), X.col(j).cast<ld>(), t, 1 - t);
      const auto uref = kinflow_test::empirical_reference(class_points(s, -1), X.col(j).cast<ld>(), t, 1 - t);
      const double scale = 1 + static_cast<double>(ref.velocity.cwiseAbs().maxCoeff());
      CHECK(static_cast<double>((Vc.col(j).cast<ld>() - ref.velocity).cwiseAbs().maxCoeff()) <= 1e-12 * scale);
      CHECK(static_cast<double>((U.col(j).cast<ld>() - uref.velocity).cwiseAbs().maxCoeff()) <= 1e-12 * scale);
      CHECK(std::abs(static_cast<double>(Dc(j) - ref.divergence)) <= 1e-11 * (1 + std::abs(static_cast<double>(ref.divergence))));
      CHECK(std::abs(static_cast<double>(Du(j) - uref.divergence)) <= 1e-11 * (1 + std::abs(static_cast<double>(uref.divergence))));
      CHECK(std::abs(static_cast<double>(logp(j) - ref.log_density)) <= 1e-12 * (1 + std::abs(static_cast<double>(ref.log_density))));
      // v_u merged from the classes against the field of all points, which never merges.
      CHECK((U.col(j) - Vu_plain.col(j)).cwiseAbs().maxCoeff() <= 1e-13 * (1 + Vu_plain.col(j).norm()));
      CHECK(std::abs(Du(j) - Du_plain(j)) <= 1e-12 * (1 + std::abs(Du_plain(j))));
    }
    // The other forms: the same bits as the pair of velocities (which gathers no trace).
    dyn V, Vu, VT, U2, Vc2;
    field.velocity_pair(t, X, C, U2, Vc2);
    field(t, X, C, V);
    field.unconditional(t, X, Vu);
    field.velocity_at_times(kinflow::sample_times<double>::Constant(X.cols(), t), X, C, VT);
    CHECK(V == Vc2);
    CHECK(VT == Vc2);
    CHECK(Vu == U2);
    CHECK((Vc2 - Vc).cwiseAbs().maxCoeff() <= 1e-13 * (1 + Vc.cwiseAbs().maxCoeff()));
    kinflow::per_sample<double> D;
    field.divergence(t, X, C, D);
    CHECK((D - Dc).cwiseAbs().maxCoeff() <= 1e-12 * (1 + Dc.cwiseAbs().maxCoeff()));
  }
}

TEST_CASE("the smoothed class-conditional field is the smoothed field of each class's points", "[conditional]") {
  // Oracle: the long-double mixture of equal weights and width s over the class's points
  // (docs/math.md §3, written out in closed_form_reference.hpp), for each query's class.
  const auto s = clusters(2, 3, 12, 21);
  const double width = 0.3;
  kinflow::gaussian_mixture_options<double> o;
  o.threads = 1;
  const auto field = kinflow::smoothed_class_conditional(s.Y, s.labels, width, o);
  REQUIRE(field.classes() == 3);
  CHECK(field.smoothing() == width);
  kinflow_test::test_rng rng(6);
  dyn X(2, 8);
  rng.fill_normal(X, 2.0);
  class_labels C(8);
  C << 0, 1, 2, -1, 2, 1, 0, -1;
  for (const double t : {0.0, 0.4, 0.9, 1.0}) {
    dyn U, Vc;
    kinflow::per_sample<double> Du, Dc;
    field.velocity_pair_and_divergence(t, X, C, U, Vc, Du, Dc);
    const auto logp = field.log_density(t, X, C);
    for (Eigen::Index j = 0; j < X.cols(); ++j) {
      const kinflow_test::ld_matrix P = class_points(s, C(j));
      const kinflow_test::ld_vector pi = kinflow_test::ld_vector::Constant(P.cols(), 1.0L / static_cast<ld>(P.cols()));
      const kinflow_test::ld_vector sd = kinflow_test::ld_vector::Constant(P.cols(), width);
      const auto ref = kinflow_test::mixture_reference(pi, P, sd, X.col(j).cast<ld>(), t);
      const double scale = 1 + static_cast<double>(ref.velocity.cwiseAbs().maxCoeff());
      CHECK(static_cast<double>((Vc.col(j).cast<ld>() - ref.velocity).cwiseAbs().maxCoeff()) <= 1e-12 * scale);
      CHECK(std::abs(static_cast<double>(logp(j) - ref.log_density)) <= 1e-12 * (1 + std::abs(static_cast<double>(ref.log_density))));
      // The divergence against central differences of the conditional velocity.
      double fd = 0;
      for (int r = 0; r < 2; ++r) {
        dyn Xp = X.col(j), Xm = X.col(j), Vp, Vm;
        Xp(r, 0) += 1e-5;
        Xm(r, 0) -= 1e-5;
        field(t, Xp, class_labels::Constant(1, C(j)), Vp);
        field(t, Xm, class_labels::Constant(1, C(j)), Vm);
        fd += (Vp(r, 0) - Vm(r, 0)) / 2e-5;
      }
      CHECK(std::abs(Dc(j) - fd) <= 1e-6 * (1 + std::abs(fd)));
    }
    // v_u merged from the classes against the smoothed field of all points.
    const auto all = kinflow::smoothed_empirical(s.Y, width, o);
    dyn Vall;
    all(t, X, Vall);
    CHECK((U - Vall).cwiseAbs().maxCoeff() <= 1e-13 * (1 + Vall.cwiseAbs().maxCoeff()));
    CHECK((Du - all.divergence(t, X)).cwiseAbs().maxCoeff() <= 1e-12 * (1 + Du.cwiseAbs().maxCoeff()));
  }
  CHECK_THROWS_WITH(kinflow::smoothed_class_conditional(s.Y, s.labels, 0.0, o), kinflow_test::contains("s (smoothing std)"));
}

TEST_CASE("the class-conditional field has the same bits on any number of threads", "[conditional]") {
  const auto s = clusters(4, 6, 200, 17);
  dyn X(4, 300);
  kinflow_test::test_rng(2).fill_normal(X, 2.0);
  class_labels C(300);
  for (Eigen::Index j = 0; j < 300; ++j) C(j) = j % 7 - 1;
  auto opt = one_thread();
  const kinflow::class_conditional_field<double> one(s.Y, s.labels, opt);
  opt.threads = 2;
  const kinflow::class_conditional_field<double> two(s.Y, s.labels, opt);
  opt.memory_budget = std::size_t{64} << 10;  // blocks of 64 columns
  const kinflow::class_conditional_field<double> small(s.Y, s.labels, opt);
  dyn U1, V1, U2, V2, U3, V3;
  kinflow::per_sample<double> Du1, Dc1, Du2, Dc2, Du3, Dc3;
  one.velocity_pair_and_divergence(0.7, X, C, U1, V1, Du1, Dc1);
  two.velocity_pair_and_divergence(0.7, X, C, U2, V2, Du2, Dc2);
  small.velocity_pair_and_divergence(0.7, X, C, U3, V3, Du3, Dc3);
  CHECK(U1 == U2);
  CHECK(V1 == V2);
  CHECK(Du1 == Du2);
  CHECK(Dc1 == Dc2);
  CHECK((U3 - U1).cwiseAbs().maxCoeff() <= 1e-12 * (1 + U1.cwiseAbs().maxCoeff()));
  CHECK((V3 - V1).cwiseAbs().maxCoeff() <= 1e-12 * (1 + V1.cwiseAbs().maxCoeff()));
  CHECK((Dc3 - Dc1).cwiseAbs().maxCoeff() <= 1e-11 * (1 + Dc1.cwiseAbs().maxCoeff()));
}

TEST_CASE("shards of a labelled set merge to the whole field", "[conditional]") {
  const auto s = clusters(3, 4, 20, 23);  // 80 points, classes interleaved
  dyn X(3, 9);
  kinflow_test::test_rng(6).fill_normal(X, 2.0);
  class_labels C(9);
  C << 0, 1, 2, 3, -1, 3, 2, 1, 0;
  // Three shards of 30, 30 and 20 points; the last holds no point of class 3.
  std::vector<kinflow::class_conditional_field<double>> shards;
  for (const auto& [first, count] : {std::pair<Eigen::Index, Eigen::Index>{0, 30}, {30, 30}, {60, 20}}) {
    dyn Ys = s.Y.middleCols(first, count);
    class_labels Ls = s.labels.segment(first, count);
    if (first == 60)
      for (Eigen::Index i = 0; i < count; ++i)
        if (Ls(i) == 3) Ls(i) = 2;  // (the whole field below uses these labels too)
    shards.emplace_back(Ys, Ls, one_thread(), 4);
  }
  class_labels all = s.labels;
  for (Eigen::Index i = 60; i < 80; ++i)
    if (all(i) == 3) all(i) = 2;
  const kinflow::class_conditional_field<double> reference(s.Y, all, one_thread());
  auto [u, c] = shards[0].partial_states(0.6, X, C);
  for (std::size_t k = 1; k < shards.size(); ++k) {
    const auto [uk, ck] = shards[k].partial_states(0.6, X, C);
    u.merge(uk);
    c.merge(ck);
  }
  dyn U, Vc, Ur, Vr;
  shards[2].velocity_pair_from(0.6, X, u, c, U, Vc);
  reference.velocity_pair(0.6, X, C, Ur, Vr);
  CHECK((U - Ur).cwiseAbs().maxCoeff() <= 1e-13 * (1 + Ur.cwiseAbs().maxCoeff()));
  CHECK((Vc - Vr).cwiseAbs().maxCoeff() <= 1e-13 * (1 + Vr.cwiseAbs().maxCoeff()));
  // A class with no point in any shard is an error when finishing, not a NaN.
  const auto [u2, c2] = shards[2].partial_states(0.6, X, class_labels::Constant(9, 3));
  CHECK_THROWS_WITH(shards[2].velocity_pair_from(0.6, X, u2, c2, U, Vc), kinflow_test::contains("no point"));
}

TEST_CASE("one class: the conditional field is the unconditional one", "[conditional]") {
  const auto s = clusters(2, 1, 40, 3);
  const kinflow::class_conditional_field<double> field(s.Y, s.labels, one_thread());
  const kinflow::empirical_field<double> all(s.Y, one_thread());
  dyn X(2, 6);
  kinflow_test::test_rng(9).fill_normal(X);
  dyn U, Vc, V;
  field.velocity_pair(0.6, X, class_labels::Zero(6), U, Vc);
  all(0.6, X, V);
  CHECK(U == Vc);
  CHECK((Vc - V).cwiseAbs().maxCoeff() <= 1e-13 * (1 + V.cwiseAbs().maxCoeff()));
}

TEST_CASE("bound classes follow their samples through tiles, adaptive steps and probes", "[conditional]") {
  const auto s = clusters(2, 3, 30, 21);
  const kinflow::class_conditional_field<double> field(s.Y, s.labels, one_thread());
  kinflow_test::test_rng rng(4);
  const Eigen::Index B = 23;
  dyn X0(2, B);
  rng.fill_normal(X0);
  class_labels C(B);
  for (Eigen::Index j = 0; j < B; ++j) C(j) = (j * 5) % 4 - 1;  // -1, 0, 1, 2 mixed
  const auto bound = kinflow::conditioned(field, C);
  const auto grid = kinflow::time_grid<double>::uniform(20, 0.0, 0.95);

  kinflow::fixed_step_options fopt;
  fopt.tile_columns = 5;  // tiles of 5 columns: the field sees columns 0-4 of each tile
  dyn Xt = X0;
  const auto rt = kinflow::integrate(bound, kinflow::rk4, grid, Xt, fopt);

  kinflow::adaptive_options aopt;
  aopt.rtol = 1e-9;
  aopt.atol = 1e-9;
  dyn Xa = X0;
  Xa(0, 7) = std::numeric_limits<double>::quiet_NaN();  // an inactive sample shifts the columns
  const auto ra = kinflow::integrate_adaptive(bound, kinflow::dopri5, 0.0, 0.95, Xa, aopt);

  for (Eigen::Index c = -1; c < 3; ++c) {
    std::vector<Eigen::Index> idx;
    for (Eigen::Index j = 0; j < B; ++j)
      if (C(j) == c) idx.push_back(j);
    dyn Xc(2, static_cast<Eigen::Index>(idx.size()));
    for (std::size_t m = 0; m < idx.size(); ++m) Xc.col(static_cast<Eigen::Index>(m)) = X0.col(idx[m]);
    // The class on its own: the plain empirical field of its points (all points for -1).
    auto own = [&](double t, const dyn& X, dyn& V) {
      if (c < 0)
        field.unconditional(t, X, V);
      else
        field.class_field(c)(t, X, V);
    };
    dyn Yt = Xc;
    kinflow::integrate(own, kinflow::rk4, grid, Yt);
    dyn Ya = Xc;
    kinflow::integrate_adaptive(own, kinflow::dopri5, 0.0, 0.95, Ya, aopt);
    for (std::size_t m = 0; m < idx.size(); ++m) {
      const auto j = idx[m];
      CHECK((Xt.col(j) - Yt.col(static_cast<Eigen::Index>(m))).cwiseAbs().maxCoeff() <= 1e-11);
      if (j != 7) CHECK((Xa.col(j) - Ya.col(static_cast<Eigen::Index>(m))).cwiseAbs().maxCoeff() <= 1e-6);
    }
  }
  CHECK(rt.status[0] == kinflow::solve_status::success);
  CHECK(ra.status[7] == kinflow::solve_status::non_finite);

  // Hutchinson's estimate stacks 2P copies of the batch: every copy keeps its classes. The
  // same probes through a field that reads the classes from the stacked layout itself give
  // the same bits, and the estimate is within 5 standard errors of the exact divergence
  // (false alarm < 1.3e-5 over 23 samples).
  kinflow::hutchinson_options h;
  h.probes = 400;
  h.seed = 77;
  auto stacked = [&](double t, const dyn& X, dyn& V) {
    V.resize(X.rows(), X.cols());
    for (Eigen::Index m = 0; m < X.cols(); ++m) {
      dyn x = X.col(m), v;
      field(t, x, class_labels::Constant(1, C(m % B)), v);
      V.col(m) = v.col(0);
    }
  };
  kinflow::hutchinson_divergence<const std::remove_const_t<decltype(bound)>, double, Eigen::Dynamic> est(bound, 2, h);
  kinflow::hutchinson_divergence<decltype(stacked), double, Eigen::Dynamic> by_hand(stacked, 2, h);
  kinflow::per_sample<double> D, var, D_hand, exact;
  est(0.5, X0, D, var);
  by_hand(0.5, X0, D_hand);
  field.divergence(0.5, X0, C, exact);
  CHECK(D == D_hand);
  for (Eigen::Index j = 0; j < B; ++j)  // var is the variance of the mean estimate
    CHECK(std::abs(D(j) - exact(j)) <= 5 * std::sqrt(var(j)) + 1e-9);
}

TEST_CASE("guidance: its definition, its limits and its exact divergence", "[guidance]") {
  gaussian_classes g;
  g.mu = dyn(2, 2);
  g.mu << -2, 2, 1, 1;
  dyn X(2, 6);
  kinflow_test::test_rng(8).fill_normal(X, 1.5);
  class_labels C(6);
  C << 0, 1, 0, 1, -1, 1;

  kinflow::guidance_options opt{.scale = 3.0, .window_start = 0.2, .window_end = 0.6};
  const auto field = kinflow::guided(g, C, opt);
  for (const double t : {0.1, 0.2, 0.45, 0.6, 0.9}) {
    dyn V;
    field(t, X, V);
    const double w = (t >= 0.2 && t <= 0.6) ? 3.0 : 1.0;
    for (Eigen::Index j = 0; j < 6; ++j) {
      const Eigen::VectorXd vu = g.mixture_velocity(t, X.col(j));
      const Eigen::VectorXd vc = C(j) < 0 ? vu : g.class_velocity(t, X.col(j), C(j));
      const Eigen::VectorXd expect = vu + w * (vc - vu);
      CHECK((V.col(j) - expect).cwiseAbs().maxCoeff() <= 1e-12 * (1 + expect.norm()));
    }
  }
  // CFG-Zero*: zero before zero_until, the optimized scale after it.
  kinflow::guidance_options zs{.scale = 2.5, .zero_until = 0.3, .optimized_scale = true};
  const auto zfield = kinflow::guided(g, C, zs);
  dyn V;
  zfield(0.29, X, V);
  CHECK(V.cwiseAbs().maxCoeff() == 0.0);
  zfield(0.7, X, V);
  for (Eigen::Index j = 0; j < 6; ++j) {
    const Eigen::VectorXd vu = g.mixture_velocity(0.7, X.col(j));
    const Eigen::VectorXd vc = C(j) < 0 ? vu : g.class_velocity(0.7, X.col(j), C(j));
    const double star = vc.dot(vu) / vu.squaredNorm();
    const Eigen::VectorXd expect = star * vu + 2.5 * (vc - star * vu);
    CHECK((V.col(j) - expect).cwiseAbs().maxCoeff() <= 1e-12 * (1 + expect.norm()));
  }
  // A user's w(t).
  kinflow::guidance_options us;
  us.schedule = [](double t) { return 1 + 4 * t * (1 - t); };
  const auto ufield = kinflow::guided(g, C, us);
  ufield(0.5, X, V);
  const Eigen::VectorXd vu = g.mixture_velocity(0.5, X.col(1)), vc = g.class_velocity(0.5, X.col(1), 1);
  CHECK((V.col(1) - (vu + 2.0 * (vc - vu))).cwiseAbs().maxCoeff() <= 1e-12 * (1 + vc.norm()));

  // The exact field: w = 0 is the unconditional field and w = 1 the conditional one, bit for
  // bit; the divergence is that of the guided velocity (central differences).
  const auto s = clusters(2, 3, 25, 31);
  const kinflow::class_conditional_field<double> exact(s.Y, s.labels, one_thread());
  class_labels Ce(6);
  Ce << 0, 1, 2, 0, -1, 2;
  dyn U, Vc, V0, V1;
  exact.velocity_pair(0.4, X, Ce, U, Vc);
  kinflow::guided(exact, Ce, {.scale = 0.0})(0.4, X, V0);
  kinflow::guided(exact, Ce, {.scale = 1.0})(0.4, X, V1);
  CHECK(V0 == U);
  CHECK(V1 == Vc);
  const auto ge = kinflow::guided(exact, Ce, {.scale = 4.0});
  for (const double t : {0.3, 0.75}) {
    dyn Vg;
    kinflow::per_sample<double> D;
    ge.velocity_and_divergence(t, X, Vg, D);
    for (Eigen::Index j = 0; j < 6; ++j) {
      double fd = 0;
      const double h = 1e-5;
      for (int r = 0; r < 2; ++r) {
        dyn Xp = X.col(j), Xm = X.col(j), Vp, Vm;
        Xp(r, 0) += h;
        Xm(r, 0) -= h;
        kinflow::batch_columns::scope one(j);  // the sample this column is
        ge(t, Xp, Vp);
        ge(t, Xm, Vm);
        fd += (Vp(r, 0) - Vm(r, 0)) / (2 * h);
      }
      CHECK(std::abs(D(j) - fd) <= 1e-6 * (1 + std::abs(fd)));
    }
  }
  // The optimized scale has no exact divergence.
  const auto gz = kinflow::guided(exact, Ce, {.scale = 2.0, .optimized_scale = true});
  kinflow::per_sample<double> D;
  CHECK_THROWS_WITH(gz.divergence(0.5, X, D), kinflow_test::contains("optimized_scale"));
}

TEST_CASE("the energy guidance spends: parts that sum to the energy, at RK4's order, for free", "[guidance]") {
  gaussian_classes g;
  g.mu = dyn(2, 3);
  g.mu << -2, 2, 0, 1, 1, -2;
  dyn X0(2, 9);
  kinflow_test::test_rng(12).fill_normal(X0);
  class_labels C(9);
  for (Eigen::Index j = 0; j < 9; ++j) C(j) = j % 3;
  const auto field = kinflow::guided(g, C, {.scale = 2.5});

  auto parts_on = [&](int steps, kinflow::per_sample<double>* total) {
    dyn X = X0;
    const auto grid = kinflow::time_grid<double>::uniform(static_cast<std::size_t>(steps), 0.0, 0.9);
    const auto r = kinflow::integrate(field, kinflow::rk4, grid, X, {}, kinflow::guidance_energy(field));
    if (total) *total = r.kpe.total;
    return std::vector<kinflow::per_sample<double>>{r.integrals[0], r.integrals[1], r.integrals[2]};
  };
  kinflow::per_sample<double> total;
  const auto p40 = parts_on(40, &total);
  const auto p80 = parts_on(80, nullptr), p160 = parts_on(160, nullptr), ref = parts_on(1280, nullptr);
  const kinflow::per_sample<double> sum = p40[0] + p40[1] + p40[2];
  CHECK((sum - total).cwiseAbs().maxCoeff() <= 1e-12 * total.cwiseAbs().maxCoeff());
  CHECK(field.energy_extra_evaluations() == 0);
  // Fourth order: halving the step divides each part's error by about 16 (observed orders
  // above 3.5; a third-order quadrature would give 3).
  for (std::size_t p = 0; p < 3; ++p) {
    const double e40 = (p40[p] - ref[p]).cwiseAbs().maxCoeff();
    const double e80 = (p80[p] - ref[p]).cwiseAbs().maxCoeff();
    const double e160 = (p160[p] - ref[p]).cwiseAbs().maxCoeff();
    INFO("part " << p << ": errors " << e40 << ", " << e80 << ", " << e160);
    CHECK(std::log2(e40 / e80) > 3.5);
    CHECK(std::log2(e80 / e160) > 3.5);
  }
  // Shaped by a KTS gain and through the integrands of one type (guidance_energy_ref): the
  // parts scaled by η² sum to the energy of η ṽ.
  {
    const kinflow::kts_gain gain(kinflow::kts_options{.alpha0 = 0.3, .beta0 = 0.05, .tau = 0.5});
    const typename kinflow::guidance_energy_ref<double>::source_type source =
        [&field](int p, const kinflow::sample_times<double>& T, const dyn& X, kinflow::per_sample<double>& G) {
          field.energy_part(p, T, X, G);
        };
    field.track_energy();
    dyn X = X0;
    const auto grid = kinflow::time_grid<double>::uniform(40, 0.0, 0.9);
    const auto r = kinflow::integrate(kinflow::shaped(field, gain), kinflow::rk4, grid, X, {},
                                      kinflow::guidance_energy_refs<double>(&source, &gain));
    const kinflow::per_sample<double> shaped_sum = r.integrals[0] + r.integrals[1] + r.integrals[2];
    CHECK((shaped_sum - r.kpe.total).cwiseAbs().maxCoeff() <= 1e-12 * r.kpe.total.cwiseAbs().maxCoeff());
    CHECK((r.kpe.total - total).cwiseAbs().maxCoeff() > 1e-3);  // the gain changed the energy
  }
  // Adaptive: the parts still sum to the energy, with no extra evaluation.
  dyn X = X0;
  kinflow::adaptive_options aopt;
  aopt.rtol = 1e-8;
  const auto ra = kinflow::integrate_adaptive(field, kinflow::dopri5, 0.0, 0.9, X, aopt, kinflow::guidance_energy(field));
  const kinflow::per_sample<double> asum = ra.integrals[0] + ra.integrals[1] + ra.integrals[2];
  CHECK((asum - ra.kpe.total).cwiseAbs().maxCoeff() <= 1e-12 * ra.kpe.total.cwiseAbs().maxCoeff());
  CHECK(field.energy_extra_evaluations() == 0);
}

TEST_CASE("a guided solve's exact log-likelihood agrees with Hutchinson's estimate", "[guidance]") {
  const auto s = clusters(2, 2, 30, 41);
  const kinflow::class_conditional_field<double> exact(s.Y, s.labels, one_thread());
  dyn X0(2, 12);
  kinflow_test::test_rng(13).fill_normal(X0);
  class_labels C(12);
  for (Eigen::Index j = 0; j < 12; ++j) C(j) = j % 2;
  const auto field = kinflow::guided(exact, C, {.scale = 3.0});
  const auto grid = kinflow::time_grid<double>::uniform(30);
  kinflow::fixed_step_options ex;
  ex.likelihood.enabled = true;
  dyn X = X0;
  const auto re = kinflow::integrate(field, kinflow::rk4, grid, X, ex);
  kinflow::fixed_step_options hu = ex;
  hu.likelihood.divergence.method = kinflow::divergence_method::hutchinson;
  hu.likelihood.divergence.hutchinson.probes = 64;
  std::vector<kinflow::per_sample<double>> runs;
  for (std::uint64_t seed = 1; seed <= 8; ++seed) {
    hu.likelihood.divergence.hutchinson.seed = seed;
    dyn Xh = X0;
    runs.push_back(kinflow::integrate(field, kinflow::rk4, grid, Xh, hu).log_likelihood);
  }
  for (Eigen::Index j = 0; j < 12; ++j) {
    double mean = 0, sq = 0;
    for (const auto& r : runs) mean += r(j) / 8;
    for (const auto& r : runs) sq += (r(j) - mean) * (r(j) - mean) / 7;
    // 6 standard errors of the mean of 8 runs (t with 7 d.o.f.: false alarm < 1e-3 per sample).
    CHECK(std::abs(mean - re.log_likelihood(j)) <= 6 * std::sqrt(sq / 8) + 1e-9);
  }
}

TEST_CASE("conditional fields and guidance reject bad input with the parameter's name", "[conditional]") {
  const auto s = clusters(2, 3, 5, 1);
  using kinflow_test::contains;
  class_labels short_labels = s.labels.head(4);
  CHECK_THROWS_WITH(kinflow::class_conditional_field<double>(s.Y, short_labels), contains("labels"));
  class_labels negative = s.labels;
  negative(3) = -2;
  CHECK_THROWS_WITH(kinflow::class_conditional_field<double>(s.Y, negative), contains("labels[3]"));
  CHECK_THROWS_WITH(kinflow::class_conditional_field<double>(s.Y, s.labels, {}, 2), contains("[0, 2)"));
  const kinflow::class_conditional_field<double> field(s.Y, s.labels, {}, 5);  // classes 3, 4 empty
  dyn X = dyn::Zero(2, 2), V;
  class_labels C(2);
  C << 0, 4;
  CHECK_THROWS_WITH(field(0.5, X, C, V), contains("has none"));
  C << 0, 5;
  CHECK_THROWS_WITH(field(0.5, X, C, V), contains("C[1]"));
  CHECK_THROWS_WITH(field(0.5, X, class_labels::Zero(3), V), contains("one per column"));
  CHECK_THROWS_WITH(kinflow::conditioned(field, C), contains("classes[1]"));
  // The bound classes cover the batch solved: a larger batch names the sample.
  const auto bound = kinflow::conditioned(field, class_labels::Zero(1));
  CHECK_THROWS_WITH(bound(0.5, X, V), contains("one class per sample"));
  const double inf = std::numeric_limits<double>::infinity();
  CHECK_THROWS_WITH(kinflow::guided(field, class_labels::Zero(2), {.scale = inf}), contains("scale"));
  CHECK_THROWS_WITH(kinflow::guided(field, class_labels::Zero(2), {.window_start = 0.6, .window_end = 0.4}),
                    contains("window_end"));
  CHECK_THROWS_WITH(kinflow::guided(field, class_labels::Zero(2), {.window_start = -0.1}), contains("window_start"));
  CHECK_THROWS_WITH(kinflow::guided(field, class_labels::Zero(2), {.zero_until = 1.5}), contains("zero_until"));
  kinflow::guidance_options bad;
  bad.schedule = [](double) { return std::nan(""); };
  CHECK_THROWS_WITH(kinflow::guided(field, class_labels::Zero(2), bad)(0.5, X, V), contains("schedule"));
  const auto grid = kinflow::time_grid<double>::uniform(10);
  CHECK(kinflow::zero_start_time(grid, 2) == Approx(0.2));
  CHECK_THROWS_WITH(kinflow::zero_start_time(grid, 11), contains("K"));
}

TEST_CASE("the class-conditional field's recorded passes give the share touched per step", "[conditional][pruning]") {
  // Oracle: an observed solve (no tiling) that reads the summed counters of the classes
  // after every step; with Euler every evaluation of step n lies at t_n, so the passes of
  // all classes binned by the grid must give the same counts per step.
  const auto s = clusters(2, 3, 400, 33);
  kinflow::empirical_options<double> o = one_thread();
  o.pruning = kinflow::pruning_mode::on;
  o.pruning_eps = 1e-12;
  const kinflow::class_conditional_field<double> field(s.Y, s.labels, o);
  kinflow_test::test_rng rng(6);
  const Eigen::Index B = 40;
  dyn X(2, B);
  rng.fill_normal(X);
  class_labels C(B);
  for (Eigen::Index j = 0; j < B; ++j) C(j) = j % 4 - 1;  // the unconditional field visits every class
  const auto bound = kinflow::conditioned(field, C);
  const auto grid = kinflow::time_grid<double>::uniform(16);
  field.reset_pruning_statistics();
  field.record_pruning_passes(true);
  std::vector<kinflow::pruning_stats> seen;
  (void)kinflow::integrate(bound, kinflow::euler, grid, X, kinflow::fixed_step_options{},
                           kinflow_test::pruning_step_observer(field, seen));
  const auto by_step = kinflow::pruning_by_step(field.pruning_passes(), grid.times());
  REQUIRE(by_step.size() == 16);
  REQUIRE(seen.size() == 16);
  // A dense step of the conditional field alone passes every sample over its own class's
  // points only, and a sample of class -1 over every class's.
  std::uint64_t dense = 0;
  for (Eigen::Index j = 0; j < B; ++j)
    dense += static_cast<std::uint64_t>(C(j) == kinflow::null_class ? field.size() : field.class_size(C(j)));
  REQUIRE(dense < static_cast<std::uint64_t>(B * field.size()));
  for (std::size_t n = 0; n < 16; ++n) {
    CAPTURE(n);
    CHECK(by_step[n].evaluations == seen[n].evaluations);
    CHECK(by_step[n].pairs == seen[n].pairs);
    CHECK(by_step[n].dense_pairs == seen[n].dense_pairs);
    CHECK(by_step[n].dense_pairs == dense);
  }
  CHECK(by_step.back().touched_share() < by_step.front().touched_share());
  field.reset_pruning_statistics();
  CHECK(field.pruning_passes().empty());
  CHECK(field.pruning_statistics().pairs == 0);
}
