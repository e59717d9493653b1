// kinflow::mpi::distributed_empirical_field under mpirun (1, 2 and 3 ranks). Oracle: the
// single-process kinflow::empirical_field over the whole training set, which every rank of
// the test builds for itself (the distributed field only ever gets the rank's own columns).
// Checked: velocity (one time and one time per column), posterior mean, log density and
// divergence (relative to its terms' size d/σ_t) within 1e-12 relative in double, 64 ulps
// in float, for balanced, uneven and empty shards, d = 2
// and d = 64, float and double; integrator runs with KPE, KTS and the log-likelihood equal
// the single-process runs; results are the same bits on every rank and run after run; bad
// shards and failing ranks make every rank throw one error.
#include "kinflow_catch.hpp"

#include <kinflow/data/csv.hpp>
#include <kinflow/fields/empirical.hpp>
#include <kinflow/fields/shaped.hpp>
#include <kinflow/integrators/adaptive.hpp>
#include <kinflow/integrators/explicit_rk.hpp>
#include <kinflow/mpi/empirical.hpp>

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "fields/closed_form_reference.hpp"

namespace {

using kinflow::batch;
using kinflow::per_sample;
namespace kmpi = kinflow::mpi;

int rank() { return kmpi::rank_of(MPI_COMM_WORLD); }
int ranks() { return kmpi::size_of(MPI_COMM_WORLD); }

// Shard layouts over the ranks of MPI_COMM_WORLD: the columns each rank holds.
enum class layout { balanced, uneven, empty_first, empty_last };

const char* name(layout l) {
  switch (l) {
    case layout::balanced: return "balanced";
    case layout::uneven: return "uneven";
    case layout::empty_first: return "empty_first";
    case layout::empty_last: return "empty_last";
  }
  return "?";
}

// Rank r's range of n columns under layout l: uneven gives rank r a share proportional to
// 1 + 3r; empty_first / empty_last leave rank 0 / the last rank without points (P > 1).
kmpi::shard_range range_of(layout l, Eigen::Index n, int r, int p) {
  if (l == layout::balanced || p == 1) return kmpi::balanced_shard(n, r, p);
  if (l == layout::empty_first || l == layout::empty_last) {
    const int empty = l == layout::empty_first ? 0 : p - 1;
    if (r == empty) return {l == layout::empty_first ? 0 : n, 0};
    const int k = l == layout::empty_first ? r - 1 : r;
    const kmpi::shard_range s = kmpi::balanced_shard(n, k, p - 1);
    return {s.offset, s.count};
  }
  Eigen::Index weight_sum = 0;
  for (int k = 0; k < p; ++k) weight_sum += 1 + 3 * k;
  Eigen::Index offset = 0;
  for (int k = 0; k < r; ++k) offset += n * (1 + 3 * k) / weight_sum;
  const Eigen::Index count = r == p - 1 ? n - offset : n * (1 + 3 * r) / weight_sum;
  return {offset, count};
}

template <class Scalar>
using matrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;

template <class Scalar>
matrix<Scalar> normal_matrix(Eigen::Index rows, Eigen::Index cols, std::uint64_t seed, double scale = 1) {
  kinflow_test::test_rng rng(seed);
  Eigen::MatrixXd m(rows, cols);
  rng.fill_normal(m, scale);
  return m.cast<Scalar>();
}

// max |a - b| / max |b| (both in double).
template <class A, class B>
double rel_err(const A& a, const B& b) {
  const Eigen::MatrixXd x = a.template cast<double>(), y = b.template cast<double>();
  const double scale = std::max(y.cwiseAbs().maxCoeff(), std::numeric_limits<double>::min());
  return (x - y).cwiseAbs().maxCoeff() / scale;
}

// max |a - b| / max(max |b|, floor): for the divergence, whose rounding is relative to its
// terms `t tr Cov / σ_t³` and `d / σ_t` rather than to their difference; at t = 1 the exact
// divergence of generic samples is e^(-1e11)-small and both fields return rounding noise.
template <class A, class B>
double rel_err_floor(const A& a, const B& b, double floor) {
  const Eigen::MatrixXd x = a.template cast<double>(), y = b.template cast<double>();
  return (x - y).cwiseAbs().maxCoeff() / std::max(y.cwiseAbs().maxCoeff(), floor);
}

// max_j |a_j - b_j| / max(1, |b_j|).
template <class Scalar>
double rel_err_values(const per_sample<Scalar>& a, const per_sample<Scalar>& b) {
  double e = 0;
  for (Eigen::Index j = 0; j < a.size(); ++j)
    e = std::max(e, std::abs(static_cast<double>(a(j)) - static_cast<double>(b(j))) /
                        std::max(1.0, std::abs(static_cast<double>(b(j)))));
  return e;
}

// The tolerance: 1e-12 in double; in float the same count of unit roundoffs relative to the
// type (1e-12 / 2.2e-16 ≈ 4500 ulps would be meaningless there): 64 ulps of float.
template <class Scalar>
double tolerance() {
  return std::is_same_v<Scalar, double> ? 1e-12 : 64 * static_cast<double>(std::numeric_limits<float>::epsilon());
}

// True when @p m has the same bits on every rank as on rank 0.
template <class M>
bool same_bits_on_every_rank(const M& m) {
  using Scalar = typename M::Scalar;
  M copy = m;
  MPI_Bcast(copy.data(), static_cast<int>(copy.size()), kmpi::datatype_of<Scalar>(), 0, MPI_COMM_WORLD);
  int same = std::memcmp(copy.data(), m.data(), static_cast<std::size_t>(m.size()) * sizeof(Scalar)) == 0;
  int all = 0;
  MPI_Allreduce(&same, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  return all == 1;
}

template <class M>
bool same_bits(const M& a, const M& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() &&
         std::memcmp(a.data(), b.data(), static_cast<std::size_t>(a.size()) * sizeof(typename M::Scalar)) == 0;
}

template <class Scalar, int Dim>
void check_field(Eigen::Index d, Eigen::Index n, Eigen::Index b, layout l, std::uint64_t seed,
                 kinflow::distance_method distances) {
  CAPTURE(d, n, b, name(l), ranks());
  const matrix<Scalar> Y = normal_matrix<Scalar>(d, n, seed);
  const batch<Scalar, Dim> X = normal_matrix<Scalar>(d, b, seed + 1, 1.3);
  kinflow::empirical_options<Scalar> opt;
  opt.threads = 1;
  opt.distances = distances;
  const kinflow::empirical_field<Scalar, Dim> whole(Y, opt);
  const kmpi::shard_range s = range_of(l, n, rank(), ranks());
  const matrix<Scalar> mine = Y.middleCols(s.offset, s.count);
  const kmpi::distributed_empirical_field<Scalar, Dim> field(MPI_COMM_WORLD, mine, opt);
  CHECK(field.dim() == d);
  CHECK(field.size() == n);
  CHECK(field.local_size() == s.count);
  CHECK(field.local_offset() == s.offset);
  const double tol = tolerance<Scalar>();

  for (const Scalar t : {Scalar(0), Scalar(0.3), Scalar(0.7), Scalar(0.9), Scalar(1)}) {
    CAPTURE(t);
    batch<Scalar, Dim> V, V_ref, M, M_ref;
    field(t, X, V);
    whole(t, X, V_ref);
    CHECK(rel_err(V, V_ref) <= tol);
    CHECK(same_bits_on_every_rank(V));
    field.posterior_mean(t, X, M);
    whole.posterior_mean(t, X, M_ref);
    CHECK(rel_err(M, M_ref) <= tol);
    const per_sample<Scalar> logp = field.log_density(t, X), logp_ref = whole.log_density(t, X);
    CHECK(rel_err_values(logp, logp_ref) <= tol);
    CHECK(same_bits_on_every_rank(logp));
    const per_sample<Scalar> div = field.divergence(t, X), div_ref = whole.divergence(t, X);
    const double div_scale = static_cast<double>(d) / static_cast<double>(whole.sigma(t));
    CHECK(rel_err_floor(div, div_ref, div_scale) <= tol);
    CHECK(same_bits_on_every_rank(div));
    // Evaluated again: the same bits.
    CHECK(same_bits(field.velocity(t, X), V));
  }
  // One time per column.
  kinflow::sample_times<Scalar> T(b);
  for (Eigen::Index j = 0; j < b; ++j) T(j) = static_cast<Scalar>(j) / static_cast<Scalar>(b - 1);
  batch<Scalar, Dim> V, V_ref;
  field.velocity_at_times(T, X, V);
  whole.velocity_at_times(T, X, V_ref);
  CHECK(rel_err(V, V_ref) <= tol);
  per_sample<Scalar> D, D_ref;
  field.divergence_at_times(T, X, D);
  whole.divergence_at_times(T, X, D_ref);
  for (Eigen::Index j = 0; j < b; ++j) {
    CAPTURE(j, T(j));
    const double scale = std::max(std::abs(static_cast<double>(D_ref(j))),
                                  static_cast<double>(d) / static_cast<double>(whole.sigma(T(j))));
    CHECK(std::abs(static_cast<double>(D(j)) - static_cast<double>(D_ref(j))) <= tol * scale);
  }
  // Velocity and divergence from one reduction: as the single-process field's.
  batch<Scalar, Dim> Vp;
  per_sample<Scalar> Dp;
  field.velocity_and_divergence_at_times(T, X, Vp, Dp);
  CHECK(rel_err(Vp, V_ref) <= tol);
  CHECK(same_bits(Dp, D));
  CHECK(same_bits_on_every_rank(Vp));
  // A second field over the same shards gives the same bits.
  const kmpi::distributed_empirical_field<Scalar, Dim> again(MPI_COMM_WORLD, mine, opt);
  batch<Scalar, Dim> V_again;
  again.velocity_at_times(T, X, V_again);
  CHECK(same_bits(V_again, V));
}

}  // namespace

TEMPLATE_TEST_CASE("distributed field equals the single-process field, d = 2", "[mpi][field]", float,
                   double) {
  for (const layout l : {layout::balanced, layout::uneven, layout::empty_first, layout::empty_last})
    check_field<TestType, 2>(2, 101, 13, l, 3, kinflow::distance_method::automatic);
  // Dynamic dimension, two points: with three ranks one shard is empty.
  check_field<TestType, Eigen::Dynamic>(2, 2, 5, layout::balanced, 9, kinflow::distance_method::automatic);
}

TEMPLATE_TEST_CASE("distributed field equals the single-process field, d = 64", "[mpi][field]", float,
                   double) {
  check_field<TestType, Eigen::Dynamic>(64, 157, 9, layout::uneven, 5, kinflow::distance_method::automatic);
  check_field<TestType, Eigen::Dynamic>(64, 157, 9, layout::empty_last, 6, kinflow::distance_method::direct);
}

TEST_CASE("distributed field: integrator runs with KPE, KTS and the log-likelihood", "[mpi][sampling]") {
  const Eigen::Index d = 2, n = 60, b = 16;
  const matrix<double> Y = normal_matrix<double>(d, n, 21, 2.0);
  const batch<double, 2> X0 = normal_matrix<double>(d, b, 22);
  kinflow::empirical_options<double> opt;
  opt.threads = 1;
  const kinflow::empirical_field<double, 2> whole(Y, opt);
  const auto field = kmpi::distributed_empirical_field<double, 2>::balanced(MPI_COMM_WORLD, Y, opt);
  const double tol = 1e-12;

  SECTION("fixed grid, Heun, KPE") {
    batch<double, 2> X = X0, X_ref = X0, X_again = X0;
    const auto grid = kinflow::time_grid<>::uniform(30);
    const auto r = kinflow::integrate(field, kinflow::heun, grid, X);
    const auto r_ref = kinflow::integrate(whole, kinflow::heun, grid, X_ref);
    const auto r_again = kinflow::integrate(field, kinflow::heun, grid, X_again);
    REQUIRE(r.all_success());
    CHECK(rel_err(X, X_ref) <= tol);
    CHECK(rel_err_values(r.kpe.total, r_ref.kpe.total) <= tol);
    CHECK(rel_err_values(r.kpe.early, r_ref.kpe.early) <= tol);
    CHECK(rel_err_values(r.kpe.late, r_ref.kpe.late) <= tol);
    CHECK(same_bits(X, X_again));
    CHECK(same_bits(r.kpe.total, r_again.kpe.total));
    CHECK(same_bits_on_every_rank(X));
    CHECK(same_bits_on_every_rank(r.kpe.total));
  }
  SECTION("fixed grid, Euler, shaped by KTS") {
    batch<double, 2> X = X0, X_ref = X0;
    const auto grid = kinflow::time_grid<>::uniform(40);
    const auto gain = kinflow::kts_gain::balanced();
    const auto r = kinflow::integrate(kinflow::shaped(field, gain), kinflow::euler, grid, X);
    const auto r_ref = kinflow::integrate(kinflow::shaped(whole, gain), kinflow::euler, grid, X_ref);
    CHECK(rel_err(X, X_ref) <= tol);
    CHECK(rel_err_values(r.kpe.total, r_ref.kpe.total) <= tol);
    CHECK(r.kpe.tau == r_ref.kpe.tau);
  }
  SECTION("fixed grid, RK4, log-likelihood from the exact divergence") {
    batch<double, 2> X = X0, X_ref = X0;
    kinflow::fixed_step_options fo;
    fo.likelihood.enabled = true;
    const auto grid = kinflow::time_grid<>::uniform(50);
    const auto r = kinflow::integrate(field, kinflow::rk4, grid, X, fo);
    const auto r_ref = kinflow::integrate(whole, kinflow::rk4, grid, X_ref, fo);
    REQUIRE(r.all_success());
    CHECK(rel_err(X, X_ref) <= tol);
    CHECK(rel_err_values(r.log_likelihood, r_ref.log_likelihood) <= tol);
    CHECK(same_bits_on_every_rank(r.log_likelihood));
  }
  SECTION("adaptive, Dormand-Prince (one time per sample), to t = 0.99") {
    // To t = 0.99, not 1: over the last adaptive steps to t = 1 (σ_t down to 1e-6) the
    // solve amplifies last-bit differences of the field ~1e4-fold — the single-process
    // field with direct and with product-based distances differs there by 3e-12 in the
    // samples and 2e-11 in the KPE — so no evaluation order meets 1e-12 at t = 1.
    batch<double, 2> X = X0, X_ref = X0;
    kinflow::adaptive_options ao;
    ao.rtol = ao.atol = 1e-7;
    const auto r = kinflow::integrate_adaptive(field, kinflow::dopri5, 0.0, 0.99, X, ao);
    const auto r_ref = kinflow::integrate_adaptive(whole, kinflow::dopri5, 0.0, 0.99, X_ref, ao);
    REQUIRE(r.all_success());
    CHECK(r.nfe == r_ref.nfe);
    CHECK(rel_err(X, X_ref) <= tol);
    CHECK(rel_err_values(r.kpe.total, r_ref.kpe.total) <= tol);
    CHECK(same_bits_on_every_rank(X));
  }
}

TEST_CASE("distributed field: every rank prunes its shard, and the merge stays within the bound",
          "[mpi][pruning]") {
  // Clustered data in d = 8, late times: each rank leaves out at most ε = 1e-12 of the mass
  // it finds (docs/math.md §4.6), so the merged field agrees with the dense single-process
  // field to rounding, and a whole solve lands where the dense one does.
  const Eigen::Index d = 8, n = 3000, b = 64;
  const matrix<double> C = normal_matrix<double>(d, 12, 31, 3.0);
  matrix<double> Y = normal_matrix<double>(d, n, 32, 0.2);
  for (Eigen::Index i = 0; i < n; ++i) Y.col(i) += C.col(i % 12);
  const matrix<double> X0 = normal_matrix<double>(d, b, 33);
  kinflow::empirical_options<double> dense_opt, pruned_opt;
  dense_opt.threads = pruned_opt.threads = 1;
  dense_opt.pruning = kinflow::pruning_mode::off;
  pruned_opt.pruning = kinflow::pruning_mode::on;
  const kinflow::empirical_field<double> whole(Y, dense_opt);
  const auto field = kmpi::distributed_empirical_field<double>::balanced(MPI_COMM_WORLD, Y, pruned_opt);
  const matrix<double> X = 0.9 * Y.leftCols(b) + 0.1 * X0;
  const matrix<double> V = field.velocity(0.9, X), V_ref = whole.velocity(0.9, X);
  CHECK(rel_err(V, V_ref) <= 1e-10);
  matrix<double> Xs = X0, Xs_ref = X0;
  const auto grid = kinflow::time_grid<>::uniform(40);
  const auto r = kinflow::integrate(field, kinflow::rk4, grid, Xs);
  kinflow::integrate(whole, kinflow::rk4, grid, Xs_ref);
  REQUIRE(r.all_success());
  CHECK((Xs - Xs_ref).cwiseAbs().maxCoeff() <= 1e-10);
  CHECK(same_bits_on_every_rank(Xs));
}

TEST_CASE("distributed field: its pruning counts are its shards' counts, summed", "[mpi][pruning]") {
  // Every rank also evaluates the field of every rank's shard alone (the same queries, so the
  // same passes); the distributed field's counts, overall and per step of a grid,
  // must be their sums. The dense count is independent of pruning: N B per evaluation.
  const Eigen::Index d = 8, n = 1500, b = 48;
  const matrix<double> C = normal_matrix<double>(d, 12, 41, 3.0);
  matrix<double> Y = normal_matrix<double>(d, n, 42, 0.2);
  for (Eigen::Index i = 0; i < n; ++i) Y.col(i) += C.col(i % 12);
  const matrix<double> X0 = normal_matrix<double>(d, b, 43);
  kinflow::empirical_options<double> opt;
  opt.threads = 1;
  opt.pruning = kinflow::pruning_mode::on;
  const auto field = kmpi::distributed_empirical_field<double>::balanced(MPI_COMM_WORLD, Y, opt);
  std::vector<kinflow::empirical_field<double>> shards;
  for (int r = 0; r < ranks(); ++r) {
    const kmpi::shard_range s = kmpi::balanced_shard(n, r, ranks());
    shards.emplace_back(Y.middleCols(s.offset, s.count), opt);
  }
  // One evaluation at the start of each step of a grid, at points along straight paths.
  const auto grid = kinflow::time_grid<>::uniform(12);
  const std::size_t steps = grid.times().size() - 1;
  auto query = [&](std::size_t k) -> matrix<double> {
    const double t = grid.times()[k];
    return t * Y.leftCols(b) + (1 - t) * X0;
  };
  field.reset_pruning_statistics();
  field.record_pruning_passes(true);
  for (std::size_t k = 0; k < steps; ++k) (void)field.velocity(grid.times()[k], query(k));
  kinflow::pruning_stats sum;
  std::vector<kinflow::pruning_stats> sum_by_step(steps);
  for (const auto& f : shards) {
    f.record_pruning_passes(true);
    for (std::size_t k = 0; k < steps; ++k) (void)f.velocity(grid.times()[k], query(k));
    sum += f.pruning_statistics();
    const auto counts = kinflow::pruning_by_step(f.pruning_passes(), grid.times());
    for (std::size_t k = 0; k < steps; ++k) sum_by_step[k] += counts[k];
  }
  const kinflow::pruning_stats got = field.pruning_statistics();
  const auto evaluations = static_cast<std::uint64_t>(steps);
  CHECK(got.evaluations == evaluations * static_cast<std::uint64_t>(ranks()));
  CHECK(got.dense_pairs == evaluations * static_cast<std::uint64_t>(n * b));
  CHECK(got.pairs == sum.pairs);
  CHECK(got.pruned_evaluations == sum.pruned_evaluations);
  CHECK(got.pairs < got.dense_pairs);  // clustered points at late times: some are left out
  const std::vector<kinflow::pruning_stats> by_step = field.pruning_by_step(grid.times());
  REQUIRE(by_step.size() == sum_by_step.size());
  for (std::size_t k = 0; k < by_step.size(); ++k) {
    CAPTURE(k);
    CHECK(by_step[k].pairs == sum_by_step[k].pairs);
    CHECK(by_step[k].dense_pairs == sum_by_step[k].dense_pairs);
  }
  field.record_pruning_passes(false);
}

TEST_CASE("distributed field: bad shards are errors on every rank", "[mpi][errors]") {
  const int p = ranks(), me = rank();
  SECTION("a rank over its memory limit") {
    const matrix<double> Y = normal_matrix<double>(3, 40, 1);
    const kmpi::shard_range s = kmpi::balanced_shard(40, me, p);
    const matrix<double> mine = Y.middleCols(s.offset, s.count);
    // The last rank's limit is one byte short of its shard.
    const Eigen::Index last_count = kmpi::balanced_shard(40, p - 1, p).count;
    const std::size_t bytes = static_cast<std::size_t>(3 * last_count) * sizeof(double);
    const kmpi::shard_settings settings{.memory_limit = me == p - 1 ? bytes - 1 : 0};
    try {
      const kmpi::distributed_empirical_field<double> f(MPI_COMM_WORLD, mine, {}, settings);
      FAIL("no error");
    } catch (const kmpi::collective_error& e) {
      CHECK(e.failed_rank() == p - 1);
      CHECK(e.failed_ranks() == 1);
      CHECK_THAT(e.what(), kinflow_test::contains("rank " + std::to_string(p - 1) + " of " + std::to_string(p)));
      CHECK_THAT(e.what(), kinflow_test::contains("memory_limit"));
      CHECK_THAT(e.what(), kinflow_test::contains(std::to_string(bytes) + " bytes"));
    }
  }
  SECTION("invalid options on one rank") {
    const matrix<double> Y = normal_matrix<double>(3, 2 * p, 2);
    const kmpi::shard_range s = kmpi::balanced_shard(2 * p, me, p);
    kinflow::empirical_options<double> opt;
    if (me == 0) opt.eps = 2.0;
    CHECK_THROWS_AS(kmpi::distributed_empirical_field<double>(MPI_COMM_WORLD, Y.middleCols(s.offset, s.count), opt),
                    kmpi::collective_error);
  }
  SECTION("a rank whose file cannot be read") {
    // Only the last rank reads a file; it does not exist.
    const std::string missing = "kinflow-mpi-test-missing-" + std::to_string(p - 1) + ".csv";
    try {
      kmpi::collectively(MPI_COMM_WORLD, [&] {
        if (me == p - 1) static_cast<void>(kinflow::read_csv(missing));
      });
      FAIL("no error");
    } catch (const kmpi::collective_error& e) {
      CHECK(e.failed_rank() == p - 1);
      CHECK_THAT(e.what(), kinflow_test::contains(missing));
    }
  }
  SECTION("ranks with different dimensions") {
    const Eigen::Index d = p > 1 && me == p - 1 ? 3 : 2;
    const matrix<double> mine = normal_matrix<double>(d, 4, 3);
    if (p > 1)
      CHECK_THROWS_WITH(kmpi::distributed_empirical_field<double>(MPI_COMM_WORLD, mine),
                        kinflow_test::contains("same d on every rank"));
  }
  SECTION("no points on any rank") {
    const matrix<double> none(2, 0);
    CHECK_THROWS_WITH(kmpi::distributed_empirical_field<double>(MPI_COMM_WORLD, none),
                      kinflow_test::contains("N >= 1"));
  }
  SECTION("a rank whose evaluation fails: the others do not wait, all throw") {
    const auto f = kmpi::distributed_empirical_field<double>::balanced(MPI_COMM_WORLD, normal_matrix<double>(2, 9, 4));
    const Eigen::MatrixXd X = normal_matrix<double>(2, 4, 5);
    // The last rank gives one time too many.
    const kinflow::sample_times<double> T = kinflow::sample_times<double>::Constant(me == p - 1 ? 5 : 4, 0.5);
    Eigen::MatrixXd V;
    try {
      f.velocity_at_times(T, X, V);
      FAIL("no error");
    } catch (const kmpi::collective_error& e) {
      CHECK(e.failed_rank() == p - 1);
      CHECK_THAT(e.what(), kinflow_test::contains("number of times T"));
    }
    // The field works on afterwards.
    const kinflow::sample_times<double> good = kinflow::sample_times<double>::Constant(4, 0.5);
    f.velocity_at_times(good, X, V);
    CHECK(V.allFinite());
  }
  SECTION("a batch of the wrong dimension") {
    const auto f = kmpi::distributed_empirical_field<double>::balanced(MPI_COMM_WORLD, normal_matrix<double>(2, 9, 4));
    const Eigen::MatrixXd X(3, 4);
    CHECK_THROWS_AS(f.velocity(0.5, X), kinflow::dimension_mismatch);
  }
}

TEST_CASE("balanced shards", "[mpi][shards]") {
  for (const Eigen::Index n : {0, 1, 2, 7, 100})
    for (int p = 1; p <= 5; ++p) {
      Eigen::Index next = 0;
      for (int r = 0; r < p; ++r) {
        const kmpi::shard_range s = kmpi::balanced_shard(n, r, p);
        CHECK(s.offset == next);
        CHECK((s.count == n / p || s.count == n / p + 1));
        next += s.count;
      }
      CHECK(next == n);
    }
  CHECK_THROWS_WITH(kmpi::balanced_shard(5, 3, 3), kinflow_test::contains("rank"));
  CHECK_THROWS_WITH(kmpi::balanced_shard(-1, 0, 3), kinflow_test::contains("n (number of items"));
  CHECK_THROWS_WITH(kmpi::balanced_shard(5, 0, 0), kinflow_test::contains("ranks"));
}
