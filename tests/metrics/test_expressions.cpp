// The metrics take any Eigen expression for their point sets. A column of an expression
// nests a copy of the whole expression, and an indexed view (`X(Eigen::all, indices)`, how
// kinflow-sample picks the finite samples) copies its index vector with it: a metric that
// took columns of the expression itself would copy that vector once per point, O(Q²) work
// in all. Checked here by counting heap allocations (operator new, which std::vector uses):
// on an indexed view, each metric may allocate only a few times more than on the same
// points as a matrix, at two sizes, and returns the same numbers.
#include "kinflow_catch.hpp"

#include <kinflow/metrics/density.hpp>
#include <kinflow/metrics/memorization.hpp>
#include <kinflow/metrics/mmd.hpp>
#include <kinflow/metrics/nearest_neighbors.hpp>
#include <kinflow/metrics/wasserstein.hpp>

#include <Eigen/Core>
#include <atomic>
#include <cstdlib>
#include <new>
#include <random>
#include <vector>

namespace {
std::atomic<long> g_allocations{0};

// Out of line, so that the compiler does not pair an inlined malloc/free with new/delete.
[[gnu::noinline]] void* counted_allocate(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void counted_release(void* p) noexcept { std::free(p); }
}  // namespace

// Counting global allocation functions, plain and nothrow (std::vector allocates through
// these; over-aligned allocations keep the library's own pair).
void* operator new(std::size_t size) { return counted_allocate(size); }
void* operator new[](std::size_t size) { return counted_allocate(size); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  try {
    return counted_allocate(size);
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
}
void* operator new[](std::size_t size, const std::nothrow_t& tag) noexcept { return ::operator new(size, tag); }
void operator delete(void* p) noexcept { counted_release(p); }
void operator delete[](void* p) noexcept { counted_release(p); }
void operator delete(void* p, std::size_t) noexcept { counted_release(p); }
void operator delete[](void* p, std::size_t) noexcept { counted_release(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { counted_release(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { counted_release(p); }

namespace {

template <class F>
long allocations_of(F&& f) {
  const long before = g_allocations.load();
  f();
  return g_allocations.load() - before;
}

Eigen::MatrixXd random_points(Eigen::Index d, Eigen::Index n, unsigned seed) {
  std::mt19937_64 engine(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  Eigen::MatrixXd x(d, n);
  for (Eigen::Index j = 0; j < n; ++j)
    for (Eigen::Index i = 0; i < d; ++i) x(i, j) = normal(engine);
  return x;
}

// Every other column of a larger set, as an index vector (what an indexed view copies).
std::vector<Eigen::Index> every_other(Eigen::Index n) {
  std::vector<Eigen::Index> idx;
  for (Eigen::Index j = 0; j < n; j += 2) idx.push_back(j);
  return idx;
}

// Evaluating the view copies its index vector a few times (about 10 with Eigen 3.4, whatever
// the number of points); copies per point would be Q = 400 or 4000 more.
constexpr long slack = 20;

}  // namespace

TEST_CASE("metrics on an indexed view cost what they cost on a matrix", "[metrics][expressions]") {
  const Eigen::MatrixXd train = random_points(2, 300, 1);
  const kinflow::nearest_neighbor_index<double, Eigen::Dynamic> index(train);
  for (const Eigen::Index q : {400, 4000}) {
    const Eigen::MatrixXd all = random_points(2, 2 * q, 2);
    const auto idx = every_other(all.cols());
    const auto view = all(Eigen::all, idx);
    const Eigen::MatrixXd plain = view;
    INFO("Q = " << q);

    kinflow::knn_result<double> a, b;
    const long on_view = allocations_of([&] { a = index.query(view, 3); });
    const long on_plain = allocations_of([&] { b = index.query(plain, 3); });
    CHECK(on_view <= on_plain + slack);
    CHECK(a.indices == b.indices);
    CHECK(a.distances == b.distances);

    kinflow::per_sample<double> da, db;
    CHECK(allocations_of([&] { da = kinflow::knn_log_density(view, index); }) <=
          allocations_of([&] { db = kinflow::knn_log_density(plain, index); }) + slack);
    CHECK(da == db);

    kinflow::memorization_result ma, mb;
    CHECK(allocations_of([&] { ma = kinflow::memorization(view, index); }) <=
          allocations_of([&] { mb = kinflow::memorization(plain, index); }) + slack);
    CHECK(ma.fraction == mb.fraction);
    CHECK(ma.d1 == mb.d1);

    double sa = 0, sb = 0;
    CHECK(allocations_of([&] { sa = kinflow::sliced_wasserstein2(view, train); }) <=
          allocations_of([&] { sb = kinflow::sliced_wasserstein2(plain, train); }) + slack);
    CHECK(sa == sb);

    double pa = 0, pb = 0;
    CHECK(allocations_of([&] { pa = kinflow::median_pairwise_distance(view, train); }) <=
          allocations_of([&] { pb = kinflow::median_pairwise_distance(plain, train); }) + slack);
    CHECK(pa == pb);
  }
}

TEST_CASE("exact W2 on indexed views costs what it costs on matrices", "[metrics][expressions]") {
  for (const Eigen::Index n : {20, 60}) {
    const Eigen::MatrixXd x = random_points(3, 2 * n, 3), y = random_points(3, 2 * n, 4);
    const auto idx = every_other(2 * n);
    const auto xv = x(Eigen::all, idx), yv = y(Eigen::all, idx);
    const Eigen::MatrixXd xp = xv, yp = yv;
    INFO("n = " << n);
    kinflow::exact_wasserstein_result a, b;
    CHECK(allocations_of([&] { a = kinflow::exact_wasserstein2(xv, yv); }) <=
          allocations_of([&] { b = kinflow::exact_wasserstein2(xp, yp); }) + slack);
    CHECK(a.squared == b.squared);
    CHECK(a.matching == b.matching);
  }
}
