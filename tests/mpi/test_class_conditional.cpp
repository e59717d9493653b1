// kinflow::mpi::distributed_class_conditional_field under mpirun (1, 2 and 3 ranks). Oracle:
// the single-process kinflow::class_conditional_field over the whole labelled set, which
// every rank builds for itself. Checked: v_u and v_c (one time and one time per column),
// their exact divergences and the conditional log densities within 1e-12 relative, for
// balanced shards and shards where a rank holds no point (or no point of some class); a
// guided RK4 solve with its energy parts and exact log-likelihood equals the
// single-process one and has the same bits on every rank; bad classes fail every rank.
#include "kinflow_catch.hpp"

#include <kinflow/fields/class_conditional.hpp>
#include <kinflow/fields/guidance.hpp>
#include <kinflow/integrators/explicit_rk.hpp>
#include <kinflow/integrators/guidance_energy.hpp>
#include <kinflow/mpi/class_conditional.hpp>

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "fields/closed_form_reference.hpp"

namespace {

using kinflow::class_labels;
namespace kmpi = kinflow::mpi;
using dyn = Eigen::MatrixXd;

int rank() { return kmpi::rank_of(MPI_COMM_WORLD); }
int ranks() { return kmpi::size_of(MPI_COMM_WORLD); }

struct labelled {
  dyn Y;
  class_labels labels;
};

// n points in d dimensions around K centres; the points are sorted by class when `sorted`
// (so that a shard of a few ranks holds only some classes).
labelled make_set(Eigen::Index d, Eigen::Index n, Eigen::Index K, bool sorted, std::uint64_t seed) {
  kinflow_test::test_rng rng(seed);
  dyn centres(d, K);
  rng.fill_normal(centres, 3.0);
  labelled s{dyn(d, n), class_labels(n)};
  dyn noise(d, n);
  rng.fill_normal(noise, 0.7);
  for (Eigen::Index i = 0; i < n; ++i) {
    s.labels(i) = sorted ? i * K / n : (i * 7 + 3) % K;
    s.Y.col(i) = centres.col(s.labels(i)) + noise.col(i);
  }
  return s;
}

double rel_err(const dyn& a, const dyn& b) {
  return (a - b).cwiseAbs().maxCoeff() / std::max(b.cwiseAbs().maxCoeff(), 1e-300);
}

double rel_err_values(const Eigen::VectorXd& a, const Eigen::VectorXd& b) {
  double e = 0;
  for (Eigen::Index j = 0; j < a.size(); ++j) e = std::max(e, std::abs(a(j) - b(j)) / std::max(1.0, std::abs(b(j))));
  return e;
}

template <class M>
bool same_bits_on_every_rank(const M& m) {
  M copy = m;
  MPI_Bcast(copy.data(), static_cast<int>(copy.size()), MPI_DOUBLE, 0, MPI_COMM_WORLD);
  int same = std::memcmp(copy.data(), m.data(), static_cast<std::size_t>(m.size()) * sizeof(double)) == 0;
  int all = 0;
  MPI_Allreduce(&same, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  return all == 1;
}

kinflow::empirical_options<double> one_thread() {
  kinflow::empirical_options<double> o;
  o.threads = 1;
  return o;
}

void check_against_whole(const labelled& s, Eigen::Index K, const kmpi::distributed_class_conditional_field<double>& f) {
  const kinflow::class_conditional_field<double> whole(s.Y, s.labels, one_thread(), K);
  const Eigen::Index B = 13;
  dyn X(s.Y.rows(), B);
  kinflow_test::test_rng(9).fill_normal(X, 2.5);
  class_labels C(B);
  for (Eigen::Index j = 0; j < B; ++j) C(j) = j % (K + 1) - 1;
  CHECK(f.size() == s.Y.cols());
  for (const double t : {0.0, 0.35, 0.9, 1.0}) {
    INFO("t = " << t);
    dyn U, Vc, U1, Vc1;
    Eigen::VectorXd Du, Dc, Du1, Dc1;
    f.velocity_pair_and_divergence(t, X, C, U, Vc, Du, Dc);
    whole.velocity_pair_and_divergence(t, X, C, U1, Vc1, Du1, Dc1);
    CHECK(rel_err(U, U1) <= 1e-12);
    CHECK(rel_err(Vc, Vc1) <= 1e-12);
    // (the divergence's rounding is relative to its terms, about d / σ_t)
    const double scale = static_cast<double>(s.Y.rows()) / std::max(1 - t, 1e-6);
    CHECK((Du - Du1).cwiseAbs().maxCoeff() <= 1e-12 * std::max(scale, Du1.cwiseAbs().maxCoeff()));
    CHECK((Dc - Dc1).cwiseAbs().maxCoeff() <= 1e-12 * std::max(scale, Dc1.cwiseAbs().maxCoeff()));
    CHECK(rel_err_values(f.log_density(t, X, C), whole.log_density(t, X, C)) <= 1e-12);
    CHECK(same_bits_on_every_rank(Vc));
    // v_c alone and its divergence (each rank's classes stream only their own columns).
    dyn V, V1;
    Eigen::VectorXd D, D1;
    f(t, X, C, V);
    whole(t, X, C, V1);
    CHECK(rel_err(V, V1) <= 1e-12);
    f.divergence(t, X, C, D);
    whole.divergence(t, X, C, D1);
    CHECK((D - D1).cwiseAbs().maxCoeff() <= 1e-12 * std::max(scale, D1.cwiseAbs().maxCoeff()));
    const kinflow::sample_times<double> T = kinflow::sample_times<double>::LinSpaced(B, 0.1, t);
    dyn Ut, Vt, Ut1, Vt1;
    f.velocity_pair_at_times(T, X, C, Ut, Vt);
    whole.velocity_pair_at_times(T, X, C, Ut1, Vt1);
    CHECK(rel_err(Ut, Ut1) <= 1e-12);
    CHECK(rel_err(Vt, Vt1) <= 1e-12);
    f.velocity_at_times(T, X, C, Vt);
    CHECK(rel_err(Vt, Vt1) <= 1e-12);
  }
}

}  // namespace

TEST_CASE("the distributed class-conditional field equals the single-process field", "[mpi][conditional]") {
  const int p = ranks(), me = rank();
  SECTION("balanced shards, d = 2, classes mixed") {
    const labelled s = make_set(2, 90, 4, false, 1);
    check_against_whole(s, 4, kmpi::distributed_class_conditional_field<double>::balanced(MPI_COMM_WORLD, s.Y, s.labels,
                                                                                          4, one_thread()));
  }
  SECTION("sorted by class (a shard holds some classes only), d = 5") {
    const labelled s = make_set(5, 60, 3, true, 2);
    check_against_whole(s, 3, kmpi::distributed_class_conditional_field<double>::balanced(MPI_COMM_WORLD, s.Y, s.labels,
                                                                                          3, one_thread()));
  }
  SECTION("rank 0 holds no point") {
    const labelled s = make_set(2, 40, 3, false, 3);
    const kmpi::shard_range r = p == 1 ? kmpi::shard_range{0, 40}
                                : me == 0 ? kmpi::shard_range{0, 0}
                                          : kmpi::balanced_shard(40, me - 1, p - 1);
    const kmpi::distributed_class_conditional_field<double> f(
        MPI_COMM_WORLD, s.Y.middleCols(r.offset, r.count), class_labels(s.labels.segment(r.offset, r.count)), 3,
        one_thread());
    CHECK(f.local_size() == r.count);
    check_against_whole(s, 3, f);
  }
}

TEST_CASE("a guided solve of the distributed field", "[mpi][conditional][guidance]") {
  const labelled s = make_set(2, 80, 4, true, 4);
  const auto f = kmpi::distributed_class_conditional_field<double>::balanced(MPI_COMM_WORLD, s.Y, s.labels, 4,
                                                                            one_thread());
  const kinflow::class_conditional_field<double> whole(s.Y, s.labels, one_thread(), 4);
  const Eigen::Index B = 12;
  dyn X0(2, B);
  kinflow_test::test_rng(5).fill_normal(X0, 1.0);
  class_labels C(B);
  for (Eigen::Index j = 0; j < B; ++j) C(j) = j % 5 - 1;
  kinflow::fixed_step_options fo;
  fo.likelihood.enabled = true;
  const auto grid = kinflow::time_grid<>::uniform(30);
  const auto g = kinflow::guided(f, C, {.scale = 3.0, .window_start = 0.1, .window_end = 0.8});
  const auto g1 = kinflow::guided(whole, C, {.scale = 3.0, .window_start = 0.1, .window_end = 0.8});
  dyn X = X0, X1 = X0;
  const auto r = kinflow::integrate(g, kinflow::rk4, grid, X, fo, kinflow::guidance_energy(g));
  const auto r1 = kinflow::integrate(g1, kinflow::rk4, grid, X1, fo, kinflow::guidance_energy(g1));
  REQUIRE(r.all_success());
  CHECK(rel_err(X, X1) <= 1e-11);
  CHECK(rel_err_values(r.kpe.total, r1.kpe.total) <= 1e-11);
  CHECK(rel_err_values(r.log_likelihood, r1.log_likelihood) <= 1e-11);
  REQUIRE(r.integrals.size() == 3);
  for (std::size_t k = 0; k < 3; ++k) CHECK(rel_err_values(r.integrals[k], r1.integrals[k]) <= 1e-11);
  CHECK(same_bits_on_every_rank(X));
  CHECK(same_bits_on_every_rank(r.log_likelihood));
}

TEST_CASE("the distributed class-conditional field rejects bad classes on every rank", "[mpi][conditional][errors]") {
  const int p = ranks(), me = rank();
  const labelled s = make_set(2, 30, 3, false, 6);
  // Four classes, of which class 3 has no point on any rank.
  const auto f = kmpi::distributed_class_conditional_field<double>::balanced(MPI_COMM_WORLD, s.Y, s.labels, 4,
                                                                            one_thread());
  CHECK(f.classes() == 4);
  CHECK(f.options().threads == 1);  // the options given, as every rank evaluates with them
  CHECK(f.class_size(3) == 0);
  dyn X = dyn::Zero(2, 3), V;
  class_labels C(3);
  C << 0, 3, 1;
  CHECK_THROWS_WITH(f(0.5, X, C, V), kinflow_test::contains("C[1]") && kinflow_test::contains("none on any rank"));
  C << 0, 4, 1;
  CHECK_THROWS_AS(f(0.5, X, C, V), kmpi::collective_error);
  // Only one rank's classes are bad: every rank fails.
  C << 0, me == p - 1 ? 7 : 1, 1;
  CHECK_THROWS_AS(f(0.5, X, C, V), kmpi::collective_error);
  // The number of classes differs between ranks.
  if (p > 1) {
    const kmpi::shard_range r = kmpi::balanced_shard(30, me, p);
    CHECK_THROWS_WITH(kmpi::distributed_class_conditional_field<double>(
                          MPI_COMM_WORLD, s.Y.middleCols(r.offset, r.count),
                          class_labels(s.labels.segment(r.offset, r.count)), me == 0 ? 3 : 5, one_thread()),
                      kinflow_test::contains("same number of classes"));
  }
  // A label at or beyond the classes.
  const kmpi::shard_range r = kmpi::balanced_shard(30, me, p);
  CHECK_THROWS_AS(kmpi::distributed_class_conditional_field<double>(MPI_COMM_WORLD, s.Y.middleCols(r.offset, r.count),
                                                                    class_labels(s.labels.segment(r.offset, r.count)), 2,
                                                                    one_thread()),
                  kmpi::collective_error);
}
