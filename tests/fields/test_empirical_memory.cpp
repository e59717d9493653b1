// Peak memory of empirical-field evaluation: with N·B far beyond what fits (N = 200 000
// training points, B = 4 096 samples, d = 2: the N x B weight matrix would take 6.5 GB),
// one evaluation allocates at most the configured budget beyond its inputs and outputs.
//
// Every heap byte is seen: this executable replaces the global operator new/delete and
// counts live bytes while a measurement runs, and Eigen's own allocator (which calls
// malloc directly) is forbidden during the measurement (EIGEN_RUNTIME_NO_MALLOC, with an
// eigen_assert that records instead of aborting, so it also works with NDEBUG).
#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <new>

namespace memory_test {
inline std::atomic<int> eigen_assert_failures{0};
inline void eigen_assert_failed() noexcept { ++eigen_assert_failures; }
}  // namespace memory_test

#define EIGEN_RUNTIME_NO_MALLOC
#define eigen_assert(x) ((x) ? static_cast<void>(0) : ::memory_test::eigen_assert_failed())

#include "kinflow_catch.hpp"

#include <kinflow/fields/empirical.hpp>

#include <Eigen/Core>
#include <algorithm>
#include <cmath>

#include "closed_form_reference.hpp"

namespace memory_test {

std::atomic<bool> counting{false};
std::atomic<std::size_t> live{0}, peak{0}, allocations{0};

// Each block starts with a header holding its size and whether it was counted.
struct header {
  std::size_t size;
  bool counted;
};
constexpr std::size_t header_bytes = 64;  // keeps every alignment up to 64 intact

void* allocate(std::size_t size, std::size_t align) {
  align = std::max(align, header_bytes);
  const std::size_t total = (size + align + align - 1) / align * align;
  void* raw = std::aligned_alloc(align, total);
  if (raw == nullptr) throw std::bad_alloc();
  auto* user = static_cast<unsigned char*>(raw) + align;
  auto* h = reinterpret_cast<header*>(user - sizeof(header));
  h->size = size;
  h->counted = counting.load();
  // The offset back to the raw block is the alignment, stored just before the header.
  *reinterpret_cast<std::size_t*>(user - sizeof(header) - sizeof(std::size_t)) = align;
  if (h->counted) {
    ++allocations;
    const std::size_t now = live += size;
    std::size_t p = peak.load();
    while (now > p && !peak.compare_exchange_weak(p, now)) {
    }
  }
  return user;
}

void release(void* p) noexcept {
  if (p == nullptr) return;
  auto* user = static_cast<unsigned char*>(p);
  const auto* h = reinterpret_cast<const header*>(user - sizeof(header));
  if (h->counted) live -= h->size;
  const std::size_t align = *reinterpret_cast<const std::size_t*>(user - sizeof(header) - sizeof(std::size_t));
  std::free(user - align);
}

// Counts the bytes allocated while `f` runs: returns the peak of live counted bytes.
template <class F>
std::size_t peak_bytes(F&& f) {
  live = 0;
  peak = 0;
  allocations = 0;
  eigen_assert_failures = 0;
  Eigen::internal::set_is_malloc_allowed(false);
  counting = true;
  f();
  counting = false;
  Eigen::internal::set_is_malloc_allowed(true);
  return peak.load();
}

}  // namespace memory_test

void* operator new(std::size_t n) { return memory_test::allocate(n, alignof(std::max_align_t)); }
void* operator new[](std::size_t n) { return memory_test::allocate(n, alignof(std::max_align_t)); }
void* operator new(std::size_t n, std::align_val_t a) {
  return memory_test::allocate(n, static_cast<std::size_t>(a));
}
void* operator new[](std::size_t n, std::align_val_t a) {
  return memory_test::allocate(n, static_cast<std::size_t>(a));
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return memory_test::allocate(n, alignof(std::max_align_t));
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return memory_test::allocate(n, alignof(std::max_align_t));
  } catch (...) {
    return nullptr;
  }
}
void operator delete(void* p) noexcept { memory_test::release(p); }
void operator delete[](void* p) noexcept { memory_test::release(p); }
void operator delete(void* p, std::size_t) noexcept { memory_test::release(p); }
void operator delete[](void* p, std::size_t) noexcept { memory_test::release(p); }
void operator delete(void* p, std::align_val_t) noexcept { memory_test::release(p); }
void operator delete[](void* p, std::align_val_t) noexcept { memory_test::release(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { memory_test::release(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { memory_test::release(p); }

#if defined(__SANITIZE_ADDRESS__)
#define KINFLOW_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KINFLOW_TEST_SANITIZED 1
#endif
#endif

TEST_CASE("empirical field: peak extra memory stays within the budget for any N and B",
          "[empirical][memory]") {
  const Eigen::Index n = 200000;
#ifdef KINFLOW_TEST_SANITIZED
  const Eigen::Index B = 256;  // the same code path, a shorter run under the sanitizers
#else
  const Eigen::Index B = 4096;
#endif
  kinflow_test::test_rng rng(41);
  kinflow::batch<double, 2> Y(2, n), X(2, B), V(2, B);
  rng.fill_normal(Y);
  rng.fill_normal(X, 0.5);
  const double t = 0.9;

  const kinflow_test::ld_matrix Yl = Y.cast<long double>();
  for (const std::size_t budget : {std::size_t{32} << 20, std::size_t{64} << 10}) {
    CAPTURE(budget);
    kinflow::empirical_options<double> opt;
    opt.memory_budget = budget;
    const kinflow::empirical_field<double, 2> field(kinflow::keep_reference, Y, opt);
    // The first evaluation that can prune builds the field's pruning index (once per field,
    // not per evaluation); what is measured is an evaluation's own scratch.
    (void)field.velocity(t, X.leftCols(2));
    V.setZero();
    const std::size_t used = memory_test::peak_bytes([&] { field(t, X, V); });
    CAPTURE(used, memory_test::allocations.load());
    CHECK(memory_test::eigen_assert_failures.load() == 0);  // Eigen allocated nothing
    CHECK(used > 0);                                        // the counter sees the scratch
    CHECK(used <= budget);
    CHECK(memory_test::live.load() == 0);                   // and all of it is returned

    // The result is right: a few columns against a plain long-double reference.
    for (const Eigen::Index j : {Eigen::Index(0), B / 2, B - 1}) {
      const auto ref = kinflow_test::empirical_reference(Yl, X.col(j).cast<long double>(), t, 1 - t);
      const long double err = (V.col(j).cast<long double>() - ref.velocity).cwiseAbs().maxCoeff();
      CHECK(err <= 1e-9L * (1 + ref.velocity.cwiseAbs().maxCoeff()));
    }
  }
}

TEST_CASE("posterior quantities other than the velocity also stay within the budget",
          "[empirical][memory]") {
  const Eigen::Index n = 20000, B = 512;
  kinflow_test::test_rng rng(43);
  kinflow::batch<double, 2> Y(2, n), X(2, B), M(2, B), S(2, B);
  rng.fill_normal(Y);
  rng.fill_normal(X);
  kinflow::empirical_options<double> opt;
  opt.memory_budget = std::size_t{128} << 10;
  const kinflow::empirical_field<double, 2> field(Y, opt);
  Eigen::VectorXd out(B);
  (void)field.velocity(0.5, X.leftCols(2));  // builds the pruning index where it is needed
  // Outputs are allocated outside the measurement; inside only scratch counts.
  CHECK(memory_test::peak_bytes([&] { field.posterior_mean(0.5, X, M); }) <= opt.memory_budget);
  CHECK(memory_test::peak_bytes([&] { field.score(0.5, X, S); }) <= opt.memory_budget);
  CHECK(memory_test::eigen_assert_failures.load() == 0);
  // log_density and divergence return their B-entry result (output, allocated by Eigen).
  CHECK(memory_test::peak_bytes([&] { out = field.log_density(0.5, X); }) <= opt.memory_budget);
  CHECK(memory_test::peak_bytes([&] { out = field.divergence(0.5, X); }) <= opt.memory_budget);
}
