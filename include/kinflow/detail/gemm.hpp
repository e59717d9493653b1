#pragma once
/// @file
/// @brief Private machinery: a matrix product `C = A B` (or `C += A B`) through Eigen or,
/// in builds with `KINFLOW_USE_BLAS`, through BLAS; and the scope that keeps OpenBLAS
/// single-threaded inside kinflow's worker threads. See kinflow/core/products.hpp.

#include <Eigen/Core>
#include <climits>
#include <string_view>
#include <type_traits>

#include "kinflow/core/errors.hpp"
#include "kinflow/core/products.hpp"

#if defined(KINFLOW_USE_BLAS)
#include <cblas.h>
#include <mutex>
#endif

#if defined(KINFLOW_USE_BLAS) && defined(KINFLOW_BLAS_OPENBLAS)
extern "C" {
// As declared by OpenBLAS's cblas.h.
int openblas_get_num_threads(void);
void openblas_set_num_threads(int num_threads);
}
#endif

namespace kinflow::detail {

/// Whether a field configured with @p choice multiplies through BLAS. Throws
/// kinflow::invalid_argument, naming @p param, for matrix_products::blas in a build
/// without BLAS.
inline bool resolve_products(matrix_products choice, std::string_view param) {
  require(choice != matrix_products::blas || blas_available, param, "matrix_products::blas",
          "BLAS products need kinflow compiled with KINFLOW_USE_BLAS (link kinflow::blas); "
          "expected matrix_products::automatic or matrix_products::eigen");
  return choice == matrix_products::blas || (choice == matrix_products::automatic && blas_available);
}

/// While alive, OpenBLAS runs single-threaded (see kinflow/core/products.hpp). Scopes on
/// several threads nest: the first saves OpenBLAS's thread count, the last restores it.
/// Does nothing when @p active is false or the BLAS is not OpenBLAS.
class blas_single_thread_scope {
public:
  explicit blas_single_thread_scope(bool active) : active_(active) {
#if defined(KINFLOW_USE_BLAS) && defined(KINFLOW_BLAS_OPENBLAS)
    if (!active_) return;
    state& s = shared();
    const std::lock_guard<std::mutex> lock(s.mutex);
    if (s.users++ == 0) {
      s.saved = openblas_get_num_threads();
      if (s.saved != 1) openblas_set_num_threads(1);
    }
#endif
  }
  ~blas_single_thread_scope() {
#if defined(KINFLOW_USE_BLAS) && defined(KINFLOW_BLAS_OPENBLAS)
    if (!active_) return;
    state& s = shared();
    const std::lock_guard<std::mutex> lock(s.mutex);
    if (--s.users == 0 && s.saved != 1) openblas_set_num_threads(s.saved);
#endif
  }
  blas_single_thread_scope(const blas_single_thread_scope&) = delete;
  blas_single_thread_scope& operator=(const blas_single_thread_scope&) = delete;

private:
#if defined(KINFLOW_USE_BLAS) && defined(KINFLOW_BLAS_OPENBLAS)
  struct state {
    std::mutex mutex;
    int users = 0;
    int saved = 1;
  };
  static state& shared() {
    static state s;
    return s;
  }
#endif
  [[maybe_unused]] bool active_;
};

#if defined(KINFLOW_USE_BLAS)
/// One operand as BLAS sees it: its data, whether it is stored transposed (row-major)
/// and its leading dimension. `ok` is false when BLAS cannot take it as it is.
struct blas_operand {
  bool ok = false;
  bool transposed = false;
  int ld = 0;
};

template <class Derived>
blas_operand blas_view(const Eigen::MatrixBase<Derived>& m) {
  blas_operand op;
  if (m.innerStride() != 1) return op;
  op.transposed = bool(static_cast<unsigned>(Derived::Flags) & Eigen::RowMajorBit);
  const Eigen::Index stored_rows = op.transposed ? m.cols() : m.rows();
  const Eigen::Index ld = m.outerStride();
  if (ld < stored_rows || ld < 1 || ld > INT_MAX) return op;
  op.ld = static_cast<int>(ld);
  op.ok = true;
  return op;
}

inline void blas_gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float* a,
                      int lda, const float* b, int ldb, float beta, float* c, int ldc) {
  cblas_sgemm(CblasColMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m,
              n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
inline void blas_gemm(bool ta, bool tb, int m, int n, int k, double alpha, const double* a,
                      int lda, const double* b, int ldb, double beta, double* c, int ldc) {
  cblas_dgemm(CblasColMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m,
              n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
#endif

/// `C = A B`, or `C += A B` with @p accumulate. Through BLAS when @p use_blas, the build
/// has BLAS, all three are float or double of one type, in memory with unit inner stride
/// and C column-major; through Eigen (`noalias`) otherwise. C must not alias A or B.
/// C is taken by const reference, as Eigen recommends for writable expressions.
template <class DA, class DB, class DC>
void product_into(const Eigen::MatrixBase<DA>& A, const Eigen::MatrixBase<DB>& B,
                  const Eigen::MatrixBase<DC>& C_, bool accumulate, bool use_blas) {
  auto& C = const_cast<Eigen::MatrixBase<DC>&>(C_);
#if defined(KINFLOW_USE_BLAS)
  using S = typename DC::Scalar;
  constexpr bool same_scalar =
      std::is_same_v<S, typename DA::Scalar> && std::is_same_v<S, typename DB::Scalar>;
  constexpr bool blas_scalar = std::is_same_v<S, float> || std::is_same_v<S, double>;
  constexpr auto flags = [](unsigned f) { return f; };  // (Eigen's flags are enums of different types)
  constexpr bool in_memory = bool(flags(DA::Flags) & flags(DB::Flags) & flags(DC::Flags) &
                                  Eigen::DirectAccessBit);
  if constexpr (same_scalar && blas_scalar && in_memory && !bool(flags(DC::Flags) & Eigen::RowMajorBit)) {
    if (use_blas) {
      const Eigen::Index m = C.rows(), n = C.cols(), k = A.cols();
      if (m == 0 || n == 0) return;
      const blas_operand a = blas_view(A), b = blas_view(B), c = blas_view(C);
      if (a.ok && b.ok && c.ok && m <= INT_MAX && n <= INT_MAX && k <= INT_MAX) {
        if (k == 0) {
          if (!accumulate) C.setZero();
          return;
        }
        blas_gemm(a.transposed, b.transposed, static_cast<int>(m), static_cast<int>(n),
                  static_cast<int>(k), S(1), A.derived().data(), a.ld, B.derived().data(), b.ld,
                  accumulate ? S(1) : S(0), C.derived().data(), c.ld);
        return;
      }
    }
  }
#else
  (void)use_blas;
#endif
  if (accumulate)
    C.noalias() += A * B;
  else
    C.noalias() = A * B;
}

}  // namespace kinflow::detail
