// Sample sharding under mpirun (1, 2 and 3 ranks): kinflow::mpi::solve_sharded splits the
// batch over the ranks, every rank integrates its share with the whole (small) training
// set, and the samples and per-sample results are gathered in rank order. Oracle: the
// single-process solve of the whole batch. Also the gathers themselves (rank order, uneven
// and empty shares, to one root) and a failing rank.
#include "kinflow_catch.hpp"

#include <kinflow/fields/empirical.hpp>
#include <kinflow/integrators/adaptive.hpp>
#include <kinflow/integrators/explicit_rk.hpp>
#include <kinflow/mpi/samples.hpp>

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "fields/closed_form_reference.hpp"

namespace {

using kinflow::batch;
using kinflow::per_sample;
namespace kmpi = kinflow::mpi;

int rank() { return kmpi::rank_of(MPI_COMM_WORLD); }
int ranks() { return kmpi::size_of(MPI_COMM_WORLD); }

Eigen::MatrixXd normal_matrix(Eigen::Index rows, Eigen::Index cols, std::uint64_t seed, double scale = 1) {
  kinflow_test::test_rng rng(seed);
  Eigen::MatrixXd m(rows, cols);
  rng.fill_normal(m, scale);
  return m;
}

template <class A, class B>
double rel_err(const A& a, const B& b) {
  const Eigen::MatrixXd x = a.template cast<double>(), y = b.template cast<double>();
  if (y.size() == 0) return x.size() == 0 ? 0.0 : 1.0;
  return (x - y).cwiseAbs().maxCoeff() / std::max(y.cwiseAbs().maxCoeff(), 1e-300);
}

}  // namespace

TEST_CASE("gathers put every rank's columns and values in rank order", "[mpi][gather]") {
  const int me = rank(), p = ranks();
  // Rank r holds r + 1 columns (the last rank none when P > 1), entry (i, j) = 100 r + 10 j + i.
  const Eigen::Index mine = p > 1 && me == p - 1 ? 0 : me + 1;
  Eigen::MatrixXd local(3, mine);
  for (Eigen::Index j = 0; j < mine; ++j)
    for (Eigen::Index i = 0; i < 3; ++i) local(i, j) = 100.0 * me + 10.0 * static_cast<double>(j) + static_cast<double>(i);
  for (const int root : {-1, 0, p - 1}) {
    CAPTURE(root);
    const Eigen::MatrixXd all = kmpi::gather_columns(MPI_COMM_WORLD, local, root);
    if (root < 0 || me == root) {
      Eigen::Index col = 0;
      for (int r = 0; r < p; ++r) {
        const Eigen::Index count = p > 1 && r == p - 1 ? 0 : r + 1;
        for (Eigen::Index j = 0; j < count; ++j, ++col)
          for (Eigen::Index i = 0; i < 3; ++i)
            CHECK(all(i, col) == 100.0 * r + 10.0 * static_cast<double>(j) + static_cast<double>(i));
      }
      CHECK(all.cols() == col);
      CHECK(all.rows() == 3);
    } else {
      CHECK(all.cols() == 0);
    }
  }
  const Eigen::Matrix<std::int64_t, Eigen::Dynamic, 1> counts =
      Eigen::Matrix<std::int64_t, Eigen::Dynamic, 1>::Constant(mine, me);
  const auto gathered = kmpi::gather_values(MPI_COMM_WORLD, counts);
  CHECK(std::is_sorted(gathered.data(), gathered.data() + gathered.size()));
}

TEST_CASE("sample sharding equals the single-process solve", "[mpi][samples]") {
  const Eigen::Index d = 2, n = 30;
  const Eigen::MatrixXd Y = normal_matrix(d, n, 31, 2.0);
  kinflow::empirical_options<double> opt;
  opt.threads = 1;
  const kinflow::empirical_field<double, 2> field(Y, opt);
  const double tol = 1e-12;

  SECTION("fixed grid, Heun, per-sample KPE profile, to every rank and to rank 0") {
    const Eigen::Index b = 25;  // uneven over 2 and 3 ranks
    const batch<double, 2> X0 = normal_matrix(d, b, 32);
    kinflow::fixed_step_options opt;
    opt.kpe.profile = kinflow::kpe_profile::per_sample;
    const auto grid = kinflow::time_grid<>::uniform(20);
    batch<double, 2> X_ref = X0;
    const auto ref = kinflow::integrate(field, kinflow::heun, grid, X_ref, opt);
    for (const int root : {-1, 0}) {
      CAPTURE(root);
      batch<double, 2> X = X0;
      const auto r = kmpi::solve_sharded(
          MPI_COMM_WORLD, X,
          [&](batch<double, 2>& share) { return kinflow::integrate(field, kinflow::heun, grid, share, opt); },
          root, kinflow::kpe_profile::per_sample);
      if (root < 0 || rank() == root) {
        REQUIRE(X.cols() == b);
        CHECK(rel_err(X, X_ref) <= tol);
        REQUIRE(r.status.size() == ref.status.size());
        CHECK(r.status == ref.status);
        CHECK(r.nfe == ref.nfe);
        CHECK(rel_err(r.kpe.total, ref.kpe.total) <= tol);
        CHECK(rel_err(r.kpe.early, ref.kpe.early) <= tol);
        CHECK(rel_err(r.kpe.late, ref.kpe.late) <= tol);
        REQUIRE(r.kpe.profile.rows() == b);
        CHECK(rel_err(r.kpe.profile, ref.kpe.profile) <= tol);
        CHECK(r.kpe.tau == ref.kpe.tau);
      } else {
        CHECK(X == X0);  // not a receiver: X untouched
      }
    }
  }
  SECTION("adaptive with the log-likelihood; a batch-mean profile of a fixed grid") {
    // Fewer samples than ranks with three ranks: one rank solves nothing.
    const Eigen::Index b = 2;
    const batch<double, 2> X0 = normal_matrix(d, b, 33);
    kinflow::adaptive_options ao;
    ao.rtol = ao.atol = 1e-8;
    ao.likelihood.enabled = true;
    batch<double, 2> X_ref = X0, X = X0;
    const auto ref = kinflow::integrate_adaptive(field, kinflow::dopri5, 0.0, 1.0, X_ref, ao);
    const auto r = kmpi::solve_sharded(MPI_COMM_WORLD, X, [&](batch<double, 2>& share) {
      return kinflow::integrate_adaptive(field, kinflow::dopri5, 0.0, 1.0, share, ao);
    });
    CHECK(rel_err(X, X_ref) <= tol);
    CHECK(r.accepted == ref.accepted);
    CHECK(r.rejected == ref.rejected);
    CHECK(rel_err(r.log_likelihood, ref.log_likelihood) <= tol);

    kinflow::fixed_step_options opt;
    opt.kpe.profile = kinflow::kpe_profile::batch_mean;
    const auto grid = kinflow::time_grid<>::uniform(10);
    batch<double, 2> Xm_ref = normal_matrix(d, 7, 34), Xm = Xm_ref;
    const auto mean_ref = kinflow::integrate(field, kinflow::euler, grid, Xm_ref, opt);
    const auto mean = kmpi::solve_sharded(
        MPI_COMM_WORLD, Xm,
        [&](batch<double, 2>& share) { return kinflow::integrate(field, kinflow::euler, grid, share, opt); }, -1,
        kinflow::kpe_profile::batch_mean);
    REQUIRE(mean.kpe.profile.rows() == 10);
    CHECK(rel_err(mean.kpe.profile, mean_ref.kpe.profile) <= tol);
  }
}

TEST_CASE("sample sharding: a rank whose solve throws fails every rank", "[mpi][samples][errors]") {
  const int p = ranks();
  batch<double, 2> X = normal_matrix(2, 6, 35);
  try {
    const auto r = kmpi::solve_sharded(MPI_COMM_WORLD, X, [&](batch<double, 2>&) -> kinflow::solve_result<double> {
      if (rank() == p - 1) throw std::runtime_error("share of the last rank refused");
      return {};
    });
    FAIL("no error");
  } catch (const kmpi::collective_error& e) {
    CHECK(e.failed_rank() == p - 1);
    CHECK_THAT(e.what(), kinflow_test::contains("share of the last rank refused"));
  }
}
