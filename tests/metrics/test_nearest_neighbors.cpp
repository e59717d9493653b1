// Tests of kinflow::nearest_neighbor_index and its helpers against a brute-force search
// written here: random sets in 1, 2, 3 and 5 dimensions (the tree) and in 17 to 196 (the
// scan with bounded matrix products, across its blocks; sets far from the origin, where the
// products cancel badly), many exact ties (integer grids, duplicated points, the
// (distance, index) tie rule), queries on the reference points, tiny leaves, float, and bad
// arguments.
#include "kinflow_catch.hpp"

#include <kinflow/metrics/nearest_neighbors.hpp>

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <random>
#include <utility>
#include <vector>

namespace {

// Brute force: the k reference columns sorted by (squared distance in long double, index).
std::vector<std::pair<long double, Eigen::Index>> brute_knn(const Eigen::MatrixXd& ref,
                                                            const Eigen::VectorXd& q, int k) {
  std::vector<std::pair<long double, Eigen::Index>> all;
  for (Eigen::Index j = 0; j < ref.cols(); ++j) {
    long double d2 = 0;
    for (Eigen::Index i = 0; i < ref.rows(); ++i) {
      const long double diff = static_cast<long double>(ref(i, j)) - q(i);
      d2 += diff * diff;
    }
    all.emplace_back(d2, j);
  }
  std::partial_sort(all.begin(), all.begin() + k, all.end());
  all.resize(static_cast<std::size_t>(k));
  return all;
}

Eigen::MatrixXd random_points(Eigen::Index d, Eigen::Index n, unsigned seed, double scale = 1) {
  std::mt19937_64 engine(seed);
  std::normal_distribution<double> normal(0.0, scale);
  Eigen::MatrixXd x(d, n);
  for (Eigen::Index j = 0; j < n; ++j)
    for (Eigen::Index i = 0; i < d; ++i) x(i, j) = normal(engine);
  return x;
}

Eigen::MatrixXd grid_points(Eigen::Index d, Eigen::Index n, unsigned seed, int levels) {
  std::mt19937_64 engine(seed);
  std::uniform_int_distribution<int> pick(0, levels - 1);
  Eigen::MatrixXd x(d, n);
  for (Eigen::Index j = 0; j < n; ++j)
    for (Eigen::Index i = 0; i < d; ++i) x(i, j) = pick(engine);
  return x;
}

using brute_lists = std::vector<std::vector<std::pair<long double, Eigen::Index>>>;

// The brute-force k_max nearest of every query, computed once per query set.
brute_lists brute_all(const Eigen::MatrixXd& ref, const Eigen::MatrixXd& queries, int k_max) {
  brute_lists out;
  for (Eigen::Index c = 0; c < queries.cols(); ++c) out.push_back(brute_knn(ref, queries.col(c), k_max));
  return out;
}

// Checks every query against brute force. With integer coordinates distances are exact in
// double, so tied neighbours must follow the (distance, index) rule exactly.
template <class Index>
void check_against_brute(const Index& index, const brute_lists& want,
                         const Eigen::MatrixXd& queries, int k) {
  const auto got = index.query(queries, k);
  REQUIRE(got.distances.rows() == k);
  REQUIRE(got.distances.cols() == queries.cols());
  for (Eigen::Index c = 0; c < queries.cols(); ++c) {
    const auto& w = want[static_cast<std::size_t>(c)];
    for (int r = 0; r < k; ++r) {
      INFO("query " << c << ", neighbour " << r);
      const double want_d = static_cast<double>(std::sqrt(w[static_cast<std::size_t>(r)].first));
      REQUIRE(static_cast<double>(got.distances(r, c)) == Approx(want_d).epsilon(1e-12).margin(1e-12));
      REQUIRE(got.indices(r, c) == w[static_cast<std::size_t>(r)].second);
    }
  }
}

}  // namespace

TEST_CASE("k nearest against brute force: random sets, several d, k and leaf sizes", "[nn]") {
  for (int d : {1, 2, 3, 5}) {
    const Eigen::MatrixXd ref = random_points(d, 700, 10 + d);
    const Eigen::MatrixXd q = random_points(d, 150, 20 + d, 1.5);
    const auto want = brute_all(ref, q, 7);
    for (int leaf : {1, 4, 16, 1000}) {
      INFO("d = " << d << ", leaf = " << leaf);
      const kinflow::nearest_neighbor_index<double> index(ref, leaf);
      REQUIRE(index.size() == 700);
      REQUIRE(index.dim() == d);
      for (int k : {1, 2, 7}) check_against_brute(index, want, q, k);
    }
  }
}

TEST_CASE("fixed dimension 2 and the free helpers", "[nn]") {
  const Eigen::MatrixXd ref = random_points(2, 2000, 1);
  const Eigen::MatrixXd q = random_points(2, 300, 2, 2.0);
  const kinflow::batch<double, 2> ref2 = ref;
  const kinflow::nearest_neighbor_index<double, 2> index(ref2);
  check_against_brute(index, brute_all(ref, q, 2), q, 2);
  const auto knn = kinflow::k_nearest_neighbors(q, ref2, 3);
  const auto nd = kinflow::nearest_distances(q, ref2);
  REQUIRE(nd.size() == q.cols());
  for (Eigen::Index c = 0; c < q.cols(); ++c) {
    const auto want = brute_knn(ref, q.col(c), 3);
    REQUIRE(knn.indices(2, c) == want[2].second);
    REQUIRE(nd(c) == Approx(static_cast<double>(std::sqrt(want[0].first))));
  }
  // Queries on the reference points: distance 0 to themselves.
  const auto self = index.query(ref2.leftCols(50), 1);
  for (Eigen::Index c = 0; c < 50; ++c) {
    REQUIRE(self.distances(0, c) == 0.0);
    REQUIRE(self.indices(0, c) == c);
  }
}

TEST_CASE("exact ties: integer grids with many duplicates follow the (distance, index) rule",
          "[nn]") {
  for (int d : {1, 2, 3}) {
    const Eigen::MatrixXd ref = grid_points(d, 600, 30 + d, 5);  // many duplicates
    Eigen::MatrixXd q = grid_points(d, 200, 40 + d, 7);
    q.array() -= 1;  // some queries outside the grid, many on grid points
    const auto want = brute_all(ref, q, 40);
    for (int leaf : {1, 3, 16}) {
      INFO("d = " << d << ", leaf = " << leaf);
      const kinflow::nearest_neighbor_index<double> index(ref, leaf);
      for (int k : {1, 2, 5, 40}) check_against_brute(index, want, q, k);
    }
  }
  // All reference points identical.
  const Eigen::MatrixXd same = Eigen::MatrixXd::Constant(2, 100, 3.0);
  const kinflow::nearest_neighbor_index<double> index(same, 2);
  const auto r = index.query(Eigen::Vector2d(0, 0), 4);
  for (int i = 0; i < 4; ++i) {
    REQUIRE(r.indices(i, 0) == i);
    REQUIRE(r.distances(i, 0) == Approx(std::sqrt(18.0)));
  }
}

TEST_CASE("above d = 16: the scan with bounded products against brute force", "[nn]") {
  // 3000 points and 150 queries cross the scan's blocks (2048 points, 64 queries).
  for (int d : {17, 64, 196}) {
    INFO("d = " << d);
    const Eigen::MatrixXd ref = random_points(d, 3000, 50 + d);
    const Eigen::MatrixXd q = random_points(d, 150, 60 + d, 1.2);
    const kinflow::nearest_neighbor_index<double> index(ref);
    const auto want = brute_all(ref, q, 40);
    for (int k : {1, 7, 40}) check_against_brute(index, want, q, k);
  }
  // Far from the origin (norms 10^4 times the distances): ‖x‖² + ‖y‖² − 2x·y cancels to
  // about 10^-5 of its terms' size, and only the bound keeps the answer exact.
  Eigen::MatrixXd far = random_points(32, 2500, 70, 1e-3);
  Eigen::MatrixXd qfar = random_points(32, 80, 71, 1e-3);
  far.array() += 10.0;
  qfar.array() += 10.0;
  const kinflow::nearest_neighbor_index<double> far_index(far);
  const auto want_far = brute_all(far, qfar, 10);
  for (int k : {1, 10}) check_against_brute(far_index, want_far, qfar, k);
  // Integer grids: many exact ties, which the (distance, index) rule orders.
  const Eigen::MatrixXd grid = grid_points(24, 2200, 72, 3);
  Eigen::MatrixXd qgrid = grid_points(24, 70, 73, 4);
  qgrid.leftCols(10) = grid.leftCols(10);  // queries on reference points
  const kinflow::nearest_neighbor_index<double> grid_index(grid);
  const auto want_grid = brute_all(grid, qgrid, 30);
  for (int k : {1, 5, 30}) check_against_brute(grid_index, want_grid, qgrid, k);
  // Every point identical.
  const kinflow::nearest_neighbor_index<double> same(Eigen::MatrixXd::Constant(20, 300, 2.0));
  const auto r = same.query(Eigen::VectorXd::Zero(20), 3);
  for (int i = 0; i < 3; ++i) {
    REQUIRE(r.indices(i, 0) == i);
    REQUIRE(r.distances(i, 0) == Approx(std::sqrt(80.0)));
  }
}

TEST_CASE("float reference sets", "[nn]") {
  const Eigen::MatrixXd ref = random_points(2, 500, 5);
  const Eigen::MatrixXd q = random_points(2, 100, 6);
  const Eigen::MatrixXf reff = ref.cast<float>();
  const kinflow::nearest_neighbor_index<float> index(reff);
  const auto got = index.query(q.cast<float>(), 2);
  const Eigen::MatrixXd refd = reff.cast<double>(), qd = q.cast<float>().cast<double>();
  for (Eigen::Index c = 0; c < q.cols(); ++c) {
    const auto want = brute_knn(refd, qd.col(c), 2);
    REQUIRE(got.distances(0, c) ==
            Approx(static_cast<double>(std::sqrt(want[0].first))).epsilon(1e-5).margin(1e-6));
    REQUIRE(got.distances(1, c) ==
            Approx(static_cast<double>(std::sqrt(want[1].first))).epsilon(1e-5).margin(1e-6));
  }
  // Above d = 16 (the scan): float products with float bounds, exact float distances.
  const Eigen::MatrixXf ref40 = random_points(40, 2100, 8).cast<float>();
  const Eigen::MatrixXf q40 = random_points(40, 70, 9).cast<float>();
  const auto got40 = kinflow::nearest_neighbor_index<float>(ref40).query(q40, 3);
  for (Eigen::Index c = 0; c < q40.cols(); ++c) {
    const auto want = brute_knn(ref40.cast<double>(), q40.col(c).cast<double>(), 3);
    for (int r = 0; r < 3; ++r) {
      REQUIRE(got40.indices(r, c) == want[static_cast<std::size_t>(r)].second);
      REQUIRE(got40.distances(r, c) ==
              Approx(static_cast<double>(std::sqrt(want[static_cast<std::size_t>(r)].first))).epsilon(1e-5));
    }
  }
}

TEST_CASE("bad arguments", "[nn]") {
  const Eigen::MatrixXd ref = random_points(2, 10, 7);
  const kinflow::nearest_neighbor_index<double> index(ref);
  REQUIRE_THROWS_WITH(index.query(ref, 11), kinflow_test::contains("k = 11") &&
                                                kinflow_test::contains("N = 10"));
  REQUIRE_THROWS_AS(index.query(ref, 0), kinflow::invalid_argument);
  REQUIRE_THROWS_AS(index.query(Eigen::MatrixXd::Zero(3, 4), 1), kinflow::dimension_mismatch);
  Eigen::MatrixXd bad = ref;
  bad(1, 3) = std::nan("");
  REQUIRE_THROWS_AS(kinflow::nearest_neighbor_index<double>(bad), kinflow::invalid_argument);
  REQUIRE_THROWS_AS(index.query(bad, 1), kinflow::invalid_argument);
  REQUIRE_THROWS_AS(kinflow::nearest_neighbor_index<double>(Eigen::MatrixXd(2, 0)),
                    kinflow::invalid_argument);
  REQUIRE_THROWS_AS(kinflow::nearest_neighbor_index<double>(ref, 0), kinflow::invalid_argument);
  REQUIRE_THROWS_AS((kinflow::nearest_neighbor_index<double, 3>(ref)), kinflow::dimension_mismatch);
  // Zero queries: empty result.
  REQUIRE(index.query(Eigen::MatrixXd(2, 0), 2).distances.cols() == 0);
}
