// Matrix products through Eigen and through BLAS (kinflow/core/products.hpp).
//
// In a build with KINFLOW_USE_BLAS the two backends are run on the same inputs and must
// agree to rounding, and each is also checked against an independent long-double reference
// (plain per-sample formulas; see ../fields/closed_form_reference.hpp). Without BLAS,
// matrix_products::blas must be refused with a message that says what to do, and
// matrix_products::automatic must be Eigen, bit for bit.

#include "kinflow/core/products.hpp"

#include <atomic>
#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include "fields/closed_form_reference.hpp"
#include "kinflow/detail/gemm.hpp"
#include "kinflow/fields/empirical.hpp"
#include "kinflow/fields/gaussian_mixture.hpp"
#include "kinflow/models/mlp.hpp"
#include "kinflow/models/mlp_npz.hpp"
#include "kinflow_catch.hpp"

using namespace kinflow_test;

namespace {

template <class Scalar>
constexpr ld unit_roundoff() {
  return static_cast<ld>(std::numeric_limits<Scalar>::epsilon());
}

template <class A>
ld max_abs(const A& a) {
  return a.cwiseAbs().maxCoeff();
}

// Largest |a - b| over the entries, divided by max(max |b|, 1).
template <class A, class B>
ld scaled_diff(const A& a, const B& b) {
  ld worst = 0, scale = 1;
  for (Eigen::Index j = 0; j < b.cols(); ++j)
    for (Eigen::Index i = 0; i < b.rows(); ++i) {
      worst = std::max(worst, std::abs(static_cast<ld>(a(i, j)) - static_cast<ld>(b(i, j))));
      scale = std::max(scale, std::abs(static_cast<ld>(b(i, j))));
    }
  return worst / scale;
}

// The rounding a logit may carry (see kinflow::distance_method::expanded): about
// 8 sqrt(d) u |L| from forming it, plus the u^(2/3) the product-based distances allow.
// What a check_* function computed: the velocities and, per sample, the tolerance each was
// checked against.
template <class Scalar>
struct result {
  kinflow::batch<Scalar> v;
  std::vector<ld> tol;
};

template <class Scalar>
ld logit_error(Eigen::Index d, ld logit_abs) {
  const ld u = unit_roundoff<Scalar>();
  return 8 * std::sqrt(static_cast<ld>(d)) * u * logit_abs + std::pow(u, 2.0L / 3);
}

// Empirical field, d = 48 (product-based distances), N over three point blocks, a batch
// over several sample blocks and both worker threads. Each velocity is checked against the
// long-double reference within what its logits' rounding allows (a logit error δ moves the
// mean by δ Σ w |y - m|), plus a few roundoffs of the magnitudes summed.
template <class Scalar>
result<Scalar> check_empirical(kinflow::matrix_products products, Scalar t) {
  test_rng rng(101);
  const Eigen::Index d = 48, n = 1100, b = 300;
  kinflow::batch<Scalar> Y(d, n), X(d, b), V;
  rng.fill_normal(Y);
  rng.fill_normal(X);
  kinflow::empirical_options<Scalar> opt;
  opt.threads = 2;
  opt.products = products;
  const kinflow::empirical_field<Scalar> field(Y, opt);
  field(t, X, V);
  REQUIRE(V.allFinite());
  const ld_matrix Yl = Y.template cast<ld>();
  const ld u = unit_roundoff<Scalar>(), sigma = static_cast<ld>(field.sigma(t));
  std::vector<ld> tol_of_column;
  for (Eigen::Index j = 0; j < b; ++j) {
    const ld_vector x = X.col(j).template cast<ld>();
    const auto ref = empirical_reference(Yl, x, static_cast<ld>(t), sigma);
    const ld tol = (64 * u * (ref.weighted_abs + x.cwiseAbs().maxCoeff()) +
                    4 * logit_error<Scalar>(d, ref.logit_abs) * ref.spread) / sigma;
    tol_of_column.push_back(tol);
    CAPTURE(t, j);
    CHECK(max_abs(V.col(j).template cast<ld>() - ref.velocity) <= tol);
  }
  return {V, tol_of_column};
}

// Gaussian mixture with a standard deviation per component (the per-point variance path),
// checked like check_empirical.
template <class Scalar>
result<Scalar> check_mixture(kinflow::matrix_products products) {
  test_rng rng(202);
  const Eigen::Index d = 16, k = 700, b = 200;
  kinflow::batch<Scalar> mu(d, k), X(d, b), V;
  rng.fill_normal(mu);
  rng.fill_normal(X);
  Eigen::Matrix<Scalar, Eigen::Dynamic, 1> w(k), s(k);
  for (Eigen::Index i = 0; i < k; ++i) {
    w(i) = static_cast<Scalar>(rng.uniform(0.5, 1.5));
    s(i) = static_cast<Scalar>(rng.uniform(0.2, 0.6));
  }
  w /= w.sum();
  kinflow::gaussian_mixture_options<Scalar> opt;
  opt.threads = 2;
  opt.products = products;
  const kinflow::gaussian_mixture_field<Scalar> field(w, mu, s, opt);
  const Scalar t = Scalar(0.7);
  field(t, X, V);
  REQUIRE(V.allFinite());
  const ld_matrix mul = mu.template cast<ld>();
  const ld_vector wl = w.template cast<ld>() / static_cast<ld>(w.sum());
  const ld_vector sl = s.template cast<ld>();
  const ld u = unit_roundoff<Scalar>();
  std::vector<ld> tol_of_column;
  for (Eigen::Index j = 0; j < b; ++j) {
    const auto ref = mixture_reference(wl, mul, sl, X.col(j).template cast<ld>(), static_cast<ld>(t));
    const ld tol = 64 * u * ref.v_abs + 4 * logit_error<Scalar>(d, ref.logit_abs) * ref.v_spread;
    tol_of_column.push_back(tol);
    CAPTURE(j);
    CHECK(max_abs(V.col(j).template cast<ld>() - ref.velocity) <= tol);
  }
  return {V, tol_of_column};
}

// A 3-layer SiLU network with a sinusoidal time embedding, d = 6, width 96.
template <class Scalar>
kinflow::mlp_field<Scalar> make_mlp(kinflow::matrix_products products) {
  test_rng rng(303);
  const Eigen::Index d = 6, width = 96;
  kinflow::time_features<Scalar> time;
  time.encoding = kinflow::time_encoding::sinusoidal;
  time.frequencies.resize(3);
  time.frequencies << Scalar(1), Scalar(3), Scalar(7);
  std::vector<kinflow::dense_layer<Scalar>> layers(3);
  const Eigen::Index in[3] = {d + 6, width, width}, out[3] = {width, width, d};
  for (int l = 0; l < 3; ++l) {
    layers[l].weight.resize(out[l], in[l]);
    layers[l].bias.resize(out[l]);
    rng.fill_normal(layers[l].weight, 1.0 / std::sqrt(static_cast<double>(in[l])));
    rng.fill_normal(layers[l].bias, 0.1);
  }
  return kinflow::mlp_field<Scalar>(std::move(layers), kinflow::mlp_activation::silu, time, products);
}

// The same network column by column in long double.
template <class Scalar>
ld_vector mlp_reference(const kinflow::mlp_field<Scalar>& net, const ld_vector& x, ld t) {
  const auto& f = net.time().frequencies;
  ld_vector h(x.size() + 2 * f.size());
  h.head(x.size()) = x;
  for (Eigen::Index k = 0; k < f.size(); ++k) {
    h(x.size() + k) = std::sin(static_cast<ld>(f(k)) * t);
    h(x.size() + f.size() + k) = std::cos(static_cast<ld>(f(k)) * t);
  }
  const auto& layers = net.layers();
  for (std::size_t l = 0; l < layers.size(); ++l) {
    ld_vector z = layers[l].weight.template cast<ld>() * h + layers[l].bias.template cast<ld>();
    if (l + 1 < layers.size())
      for (Eigen::Index i = 0; i < z.size(); ++i) z(i) = z(i) / (1 + std::exp(-z(i)));
    h = z;
  }
  return h;
}

// Tolerance of the MLP against its long-double forward pass: products of length ≤ 102 and
// three layers, each entry of size O(1).
template <class Scalar>
ld mlp_tol() {
  return 200 * unit_roundoff<Scalar>();
}

// Both entry points of the MLP; X also row-major, so BLAS gets a transposed operand.
template <class Scalar>
result<Scalar> check_mlp(kinflow::matrix_products products) {
  const ld tol = mlp_tol<Scalar>();
  const auto net = make_mlp<Scalar>(products);
  test_rng rng(404);
  const Eigen::Index b = 3000;  // more than one tile of columns
  REQUIRE(b > net.tile_columns());
  kinflow::batch<Scalar> X(6, b), V(6, b), Vt(6, b), Vr(6, b);
  rng.fill_normal(X);
  const Scalar t = Scalar(0.4);
  net(t, X, V);
  kinflow::sample_times<Scalar> T(b);
  for (Eigen::Index j = 0; j < b; ++j) T(j) = static_cast<Scalar>(j % 10) / Scalar(9);
  net.velocity_at_times(T, X, Vt);
  const Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> Xr = X;
  net(t, Xr, Vr);
  ld_matrix ref(6, b), ref_t(6, b);
  for (Eigen::Index j = 0; j < b; ++j) {
    ref.col(j) = mlp_reference(net, X.col(j).template cast<ld>(), static_cast<ld>(t));
    ref_t.col(j) = mlp_reference(net, X.col(j).template cast<ld>(), static_cast<ld>(T(j)));
  }
  CHECK(scaled_diff(V, ref) <= tol);
  CHECK(scaled_diff(Vt, ref_t) <= tol);
  CHECK(scaled_diff(Vr, ref) <= tol);
  const ld scale = std::max<ld>(1, ref.cwiseAbs().maxCoeff());
  return {V, std::vector<ld>(static_cast<std::size_t>(b), tol * scale)};
}


// Backends agree when every sample's difference is within the rounding its reference check
// allowed one of them.
template <class Scalar>
void check_agreement(const result<Scalar>& a, const result<Scalar>& b) {
  REQUIRE(a.v.cols() == b.v.cols());
  ld worst = 0;  // largest difference in units of the column's tolerance
  for (Eigen::Index j = 0; j < a.v.cols(); ++j)
    worst = std::max(worst, max_abs((a.v.col(j) - b.v.col(j)).template cast<ld>()) /
                                a.tol[static_cast<std::size_t>(j)]);
  INFO("largest BLAS-Eigen difference: " << static_cast<double>(worst) << " tolerances");
  CHECK(worst <= 1);
}

}  // namespace

TEMPLATE_TEST_CASE("matrix products: Eigen matches the long-double references", "[products]", float,
                   double) {
  using kinflow::matrix_products;
  for (const TestType t : {TestType(0.2), TestType(0.9)}) check_empirical<TestType>(matrix_products::eigen, t);
  check_mixture<TestType>(matrix_products::eigen);
  check_mlp<TestType>(matrix_products::eigen);
}

#if defined(KINFLOW_USE_BLAS)

TEMPLATE_TEST_CASE("matrix products: BLAS matches the references and agrees with Eigen",
                   "[products][blas]", float, double) {
  using kinflow::matrix_products;
  STATIC_REQUIRE(kinflow::blas_available);
  for (const TestType t : {TestType(0.2), TestType(0.9)})
    check_agreement(check_empirical<TestType>(matrix_products::blas, t),
                    check_empirical<TestType>(matrix_products::eigen, t));
  check_agreement(check_mixture<TestType>(matrix_products::blas),
                  check_mixture<TestType>(matrix_products::eigen));
  const auto blas = check_mlp<TestType>(matrix_products::blas);
  check_agreement(blas, check_mlp<TestType>(matrix_products::eigen));
  // automatic means BLAS in this build: the same bits.
  CHECK((check_mlp<TestType>(matrix_products::automatic).v - blas.v).cwiseAbs().maxCoeff() == 0);
}

TEST_CASE("matrix products: product_into against a plain triple loop", "[products][blas]") {
  test_rng rng(505);
  Eigen::MatrixXd A(37, 23), B(23, 19), C0(37, 19);
  rng.fill_normal(A);
  rng.fill_normal(B);
  rng.fill_normal(C0);
  ld_matrix ref = C0.cast<ld>();
  for (Eigen::Index i = 0; i < 37; ++i)
    for (Eigen::Index j = 0; j < 19; ++j)
      for (Eigen::Index k = 0; k < 23; ++k) ref(i, j) += static_cast<ld>(A(i, k)) * B(k, j);
  const ld tol = 64 * unit_roundoff<double>();
  // C += A B, with A given transposed (row-major view) and C a block with an outer stride.
  Eigen::MatrixXd At = A.transpose(), big = Eigen::MatrixXd::Zero(50, 19);
  big.topRows(37) = C0;
  kinflow::detail::product_into(At.transpose(), B, big.topRows(37), true, true);
  CHECK(scaled_diff(big.topRows(37), ref) <= tol);
  CHECK(big.bottomRows(13).cwiseAbs().maxCoeff() == 0);  // rows past the block untouched
  // C = A B.
  Eigen::MatrixXd C(37, 19);
  kinflow::detail::product_into(A, B, C, false, true);
  CHECK(scaled_diff(C, ref - C0.cast<ld>()) <= tol);
}

#if defined(KINFLOW_BLAS_OPENBLAS)
TEST_CASE("matrix products: OpenBLAS is single-threaded inside kinflow, restored after",
          "[products][blas][threads]") {
  openblas_set_num_threads(2);
  REQUIRE(openblas_get_num_threads() == 2);
  {
    // Scopes from several threads at once: OpenBLAS stays at 1 until the last one ends.
    std::atomic<int> inside{0}, wrong{0};
    std::vector<std::thread> pool;
    for (int w = 0; w < 4; ++w)
      pool.emplace_back([&] {
        const kinflow::detail::blas_single_thread_scope scope(true);
        ++inside;
        while (inside.load() < 4) std::this_thread::yield();
        if (openblas_get_num_threads() != 1) ++wrong;
      });
    for (auto& th : pool) th.join();
    CHECK(wrong.load() == 0);
  }
  CHECK(openblas_get_num_threads() == 2);
  // A field evaluation leaves the caller's setting as it was.
  (void)check_empirical<double>(kinflow::matrix_products::blas, 0.5);
  CHECK(openblas_get_num_threads() == 2);
}
#endif

#else  // no BLAS in this build

TEST_CASE("matrix products: BLAS is refused without KINFLOW_USE_BLAS; automatic is Eigen",
          "[products]") {
  using kinflow::matrix_products;
  STATIC_REQUIRE(!kinflow::blas_available);
  kinflow::batch<double> Y(8, 4);
  Y.setOnes();
  kinflow::empirical_options<double> opt;
  opt.products = matrix_products::blas;
  CHECK_THROWS_WITH(kinflow::empirical_field<double>(Y, opt),
                    contains("products = matrix_products::blas is invalid") &&
                        contains("KINFLOW_USE_BLAS"));
  CHECK_THROWS_AS(make_mlp<double>(matrix_products::blas), kinflow::invalid_argument);
  CHECK_THROWS_WITH(kinflow::load_mlp_field<double>("no-such-file.npz", matrix_products::blas),
                    contains("KINFLOW_USE_BLAS"));

  for (const bool mlp : {true, false}) {
    const auto a = mlp ? check_mlp<double>(matrix_products::automatic)
                       : check_empirical<double>(matrix_products::automatic, 0.5);
    const auto b = mlp ? check_mlp<double>(matrix_products::eigen)
                       : check_empirical<double>(matrix_products::eigen, 0.5);
    CHECK((a.v - b.v).cwiseAbs().maxCoeff() == 0);
  }
}

#endif
