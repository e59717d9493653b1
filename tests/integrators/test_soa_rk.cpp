// The structure-of-arrays tile kernel (kinflow/integrators/kernels/soa_tiles.hpp): against the exact
// solution and energy of the Gaussian-target flow, its orders of convergence, and
// agreement with kinflow::integrate's fused per-sample kernel to a few ulps, including
// ragged last tiles, float and double, both energy quadratures and the early/late split.

#include <cmath>
#include <limits>
#include <vector>

#include "kinflow/integrators/kernels/soa_tiles.hpp"
#include "kinflow/integrators/explicit_rk.hpp"
#include "kinflow_catch.hpp"
#include "support/oracles.hpp"

using kinflow::batch;
using kinflow::time_grid;

namespace {

// The Gaussian-target flow v = mu + g(t) (x - t mu), g = (t s² - (1 - t)) / σ², written out per
// coordinate (the form the kernel vectorizes). The oracle is kinflow_test::gaussian_target.
template <class Scalar, int Dim>
struct gaussian_lanes {
  kinflow::point<Scalar, Dim> mu;
  Scalar s;
  kinflow::point<Scalar, Dim> operator()(Scalar t, const kinflow::point<Scalar, Dim>& x) const {
    const Scalar g = (t * s * s - (1 - t)) / ((1 - t) * (1 - t) + t * t * s * s);
    kinflow::point<Scalar, Dim> v;
    for (int r = 0; r < Dim; ++r) v(r) = mu(r) + g * (x(r) - t * mu(r));
    return v;
  }
};

// The same flow with Eigen vector arithmetic, returning an expression (not a plain vector).
template <class Scalar, int Dim>
struct gaussian_expression {
  kinflow::point<Scalar, Dim> mu;
  Scalar s;
  auto operator()(Scalar t, const kinflow::point<Scalar, Dim>& x) const {
    const Scalar g = (t * s * s - (1 - t)) / ((1 - t) * (1 - t) + t * t * s * s);
    return (x - t * mu) * g + mu;
  }
};

// The same flow returning a dynamic-size vector (checked at run time).
template <class Scalar, int Dim>
struct gaussian_dynamic {
  kinflow::point<Scalar, Dim> mu;
  Scalar s;
  Eigen::Index extra = 0;  // returns Dim + extra coordinates
  Eigen::Matrix<Scalar, Eigen::Dynamic, 1> operator()(Scalar t, const kinflow::point<Scalar, Dim>& x) const {
    const Scalar g = (t * s * s - (1 - t)) / ((1 - t) * (1 - t) + t * t * s * s);
    Eigen::Matrix<Scalar, Eigen::Dynamic, 1> v = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>::Zero(Dim + extra);
    v.head(Dim) = (x - t * mu) * g + mu;
    return v;
  }
};

template <class Scalar, int Dim>
kinflow::point<Scalar, Dim> test_mu() {
  kinflow::point<Scalar, Dim> mu;
  for (int r = 0; r < Dim; ++r) mu(r) = static_cast<Scalar>(1.5 - 2.0 * r / (Dim > 1 ? Dim - 1 : 1));
  return mu;
}

// Deterministic starts spread over [-2, 2]^Dim.
template <class Scalar, int Dim>
batch<Scalar, Dim> starts(Eigen::Index B) {
  batch<Scalar, Dim> X(Dim, B);
  for (Eigen::Index i = 0; i < B; ++i)
    for (int r = 0; r < Dim; ++r)
      X(r, i) = static_cast<Scalar>(4.0 * static_cast<double>((i * 7919 + r * 104729) % 1009) / 1009 - 2);
  return X;
}

struct soa_outcome {
  double state_error = 0, energy_error = 0;  // largest absolute errors against the oracle
};

// Runs the kernel from t = 0 to 1 in `steps` uniform steps; errors against the exact flow.
template <class Scalar, int Dim, std::size_t S>
soa_outcome against_oracle(const kinflow::butcher_tableau<S>& method, int steps, bool left = false) {
  const Eigen::Index B = 37;
  const Scalar s = Scalar(0.5);
  const auto mu = test_mu<Scalar, Dim>();
  const batch<Scalar, Dim> X0 = starts<Scalar, Dim>(B);
  batch<Scalar, Dim> X = X0;
  std::vector<Scalar> early(B, Scalar(0)), late(B, Scalar(0));
  kinflow::detail::soa_fixed_steps(gaussian_lanes<Scalar, Dim>{mu, s}, method, time_grid<>::uniform(steps),
                                   X, true, left, 0.6, early.data(), late.data());
  const kinflow_test::gaussian_target<Scalar, Dim> oracle{mu, s};
  soa_outcome out;
  for (Eigen::Index i = 0; i < B; ++i) {
    const Eigen::Matrix<long double, Eigen::Dynamic, 1> x0 = X0.col(i).template cast<long double>();
    const auto exact = oracle.exact_state(1.0L, x0);
    const long double dx = (X.col(i).template cast<long double>() - exact).cwiseAbs().maxCoeff();
    const long double e = static_cast<long double>(early[static_cast<std::size_t>(i)]) +
                          static_cast<long double>(late[static_cast<std::size_t>(i)]);
    out.state_error = std::max(out.state_error, static_cast<double>(dx));
    out.energy_error = std::max(out.energy_error, static_cast<double>(std::abs(e - oracle.exact_energy(x0))));
  }
  return out;
}

template <class Scalar, int Dim, std::size_t S>
void check_order(const kinflow::butcher_tableau<S>& method, const std::vector<int>& steps, double order,
                 bool left = false, double energy_order = -1) {
  std::vector<double> h, ex, ee;
  for (int n : steps) {
    const auto o = against_oracle<Scalar, Dim>(method, n, left);
    h.push_back(1.0 / n);
    ex.push_back(o.state_error);
    ee.push_back(o.energy_error);
  }
  INFO(method.name << (left ? " (left Riemann)" : "") << ", Dim " << Dim);
  CHECK(kinflow_test::convergence_slope(h, ex) == Approx(order).margin(0.2));
  CHECK(kinflow_test::convergence_slope(h, ee) == Approx(energy_order < 0 ? order : energy_order).margin(0.2));
}

// Kutta's third-order method: a_20 != 0, so the kernel's general (not subdiagonal) path runs.
inline constexpr kinflow::butcher_tableau<3> kutta3{
    {{{0, 0, 0}, {0.5L, 0, 0}, {-1, 2, 0}}}, {1.0L / 6, 2.0L / 3, 1.0L / 6}, {0, 0.5L, 1}, 3, "kutta3"};

// Agreement with the fused kernel. Both run the same operations in the same order, so they
// are bitwise equal wherever the compiler cannot fuse a multiply and an add (x86-64 without
// FMA: the portable build). With FMA the compiler contracts a different subset of the
// multiply-adds in each kernel: a few ulps per step, amplified by the flow (backward from
// t = 1 most, up to ~6 ulps seen at unit scale after 10 steps). Energies over 3+ coordinates
// may differ by an ulp or two even without FMA (the order of the sum in ‖k‖², see below).
#if (defined(__x86_64__) || defined(__i386__)) && !defined(__FMA__)
constexpr double agree_ulps = 0;
#else
constexpr double agree_ulps = 8;
#endif

// Largest |a - b| in units of eps · max(1, |b|) (ulps at unit scale).
template <class A, class B>
double ulps(const A& a, const B& b) {
  using Scalar = typename A::Scalar;
  const double eps = std::numeric_limits<Scalar>::epsilon();
  double worst = 0;
  for (Eigen::Index i = 0; i < a.size(); ++i) {
    const double x = static_cast<double>(a.data()[i]), y = static_cast<double>(b.data()[i]);
    if (std::isnan(x) && std::isnan(y)) continue;
    worst = std::max(worst, std::abs(x - y) / (eps * std::max(1.0, std::abs(y))));
  }
  return worst;
}

// The kernel (tile T) against kinflow::integrate's fused kernel with the same field.
template <Eigen::Index T, class Scalar, int Dim, std::size_t S, class Field>
void agrees_with_fused(const Field& field, const kinflow::butcher_tableau<S>& method,
                       const time_grid<double>& grid, Eigen::Index B, kinflow::kpe_quadrature q,
                       double tau, double max_ulps = agree_ulps) {
  const batch<Scalar, Dim> X0 = starts<Scalar, Dim>(B);
  kinflow::fixed_step_options opt;
  opt.kpe.quadrature = q;
  opt.kpe.tau = tau;
  batch<Scalar, Dim> Xf = X0;
  const auto rf = kinflow::integrate(field, method, grid, Xf, opt);

  const bool left = q == kinflow::kpe_quadrature::left_riemann;
  batch<Scalar, Dim> X = X0;
  kinflow::per_sample<Scalar> early = kinflow::per_sample<Scalar>::Zero(B), late = early;
  kinflow::detail::soa_fixed_steps_tiled<T>(field, method, grid, X, true, left, tau, early.data(), late.data());

  INFO(method.name << ", tile " << T << ", B " << B << ", Dim " << Dim << ", tau " << tau
                   << (left ? ", left Riemann" : ", stage energy") << ", " << sizeof(Scalar) << "-byte scalar");
  CHECK(ulps(X, Xf) <= max_ulps);
  // ‖k‖² over 3+ coordinates: the kernel sums them in order, Eigen in an order of its own.
  const double energy_ulps = Dim <= 2 ? max_ulps : std::max(max_ulps, 4.0);
  CHECK(ulps(early, rf.kpe.early) <= energy_ulps);
  CHECK(ulps(late, rf.kpe.late) <= energy_ulps);
  // Energy off: the same states, and the (null) energy pointers are never touched.
  batch<Scalar, Dim> Xn = X0;
  kinflow::detail::soa_fixed_steps_tiled<T>(field, method, grid, Xn, false, left, tau,
                                            static_cast<Scalar*>(nullptr), static_cast<Scalar*>(nullptr));
  CHECK(ulps(Xn, Xf) <= max_ulps);
}

}  // namespace

TEST_CASE("SoA kernel: the exact Gaussian flow at the methods' orders", "[soa_rk][order]") {
  // Step counts keep the error well above the rounding level and in the asymptotic regime
  // (RK4's error in float reaches the rounding level by 8 steps here: float is checked
  // against the fused kernel below instead).
  check_order<double, 2>(kinflow::euler, {32, 64, 128, 256}, 1);
  check_order<double, 2>(kinflow::rk4, {32, 64, 128, 256}, 4);
  check_order<double, 2>(kinflow::rk4, {32, 64, 128, 256}, 4, true, 1);  // left Riemann energy: order 1
  check_order<double, 3>(kutta3, {16, 32, 64, 128}, 3);
  check_order<double, 1>(kinflow::heun, {16, 32, 64, 128}, 2);
  check_order<float, 2>(kinflow::euler, {32, 64, 128, 256}, 1);
}

TEST_CASE("SoA kernel: absolute accuracy against the oracle", "[soa_rk]") {
  // RK4 with 100 steps: state and energy to ~1e-9 (the exact energy by long-double quadrature).
  const auto o = against_oracle<double, 2>(kinflow::rk4, 100);
  CHECK(o.state_error < 1e-8);
  CHECK(o.energy_error < 1e-8);
  CHECK(o.state_error > 0);  // (a real comparison, not two copies of the start)
}

TEMPLATE_TEST_CASE("SoA kernel agrees with integrate's fused kernel to a few ulps", "[soa_rk][fused]",
                   float, double) {
  using S = TestType;
  const gaussian_lanes<S, 2> f2{test_mu<S, 2>(), S(0.5)};
  const gaussian_lanes<S, 3> f3{test_mu<S, 3>(), S(0.5)};
  const auto uniform = time_grid<>::uniform(10), cosine = time_grid<>::cosine(13);
  const auto backward = time_grid<>::uniform(10).reversed();
  for (auto q : {kinflow::kpe_quadrature::stage, kinflow::kpe_quadrature::left_riemann}) {
    for (double tau : {0.6, 0.0, 2.0}) {  // split inside the grid, all late, all early
      // Default tile with a ragged last tile, and one partial tile only.
      constexpr auto T = kinflow::detail::soa_default_tile<S, 2>;
      agrees_with_fused<T, S, 2>(f2, kinflow::euler, uniform, 3 * T + 37, q, tau);
      agrees_with_fused<T, S, 2>(f2, kinflow::rk4, uniform, 3 * T + 37, q, tau);
      agrees_with_fused<T, S, 2>(f2, kinflow::rk4, cosine, 5, q, tau);
      agrees_with_fused<T, S, 2>(f2, kinflow::rk4, backward, T + 1, q, tau);
      // Small and odd tiles; the other methods, incl. one with a_jl != 0 off the subdiagonal.
      agrees_with_fused<1, S, 2>(f2, kinflow::rk4, cosine, 11, q, tau);
      agrees_with_fused<7, S, 2>(f2, kinflow::heun, cosine, 52, q, tau);
      agrees_with_fused<16, S, 2>(f2, kinflow::midpoint, uniform, 100, q, tau);
      agrees_with_fused<16, S, 2>(f2, kinflow::ralston, uniform, 100, q, tau);
      agrees_with_fused<32, S, 3>(f3, kutta3, cosine, 77, q, tau);
      agrees_with_fused<32, S, 3>(f3, kinflow::rk4, backward, 77, q, tau);
    }
  }
}

TEST_CASE("SoA kernel: fields returning expressions or dynamic-size vectors", "[soa_rk][fields]") {
  const auto mu = test_mu<double, 2>();
  const auto grid = time_grid<>::cosine(9);
  for (auto q : {kinflow::kpe_quadrature::stage, kinflow::kpe_quadrature::left_riemann}) {
    agrees_with_fused<64, double, 2>(gaussian_expression<double, 2>{mu, 0.5}, kinflow::rk4, grid, 150, q, 0.6);
    agrees_with_fused<64, double, 2>(gaussian_dynamic<double, 2>{mu, 0.5}, kinflow::rk4, grid, 150, q, 0.6);
  }
  // The three forms give the same numbers as the per-coordinate one.
  const batch<double, 2> X0 = starts<double, 2>(99);
  batch<double, 2> Xa = X0, Xb = X0;
  kinflow::per_sample<double> ea = kinflow::per_sample<double>::Zero(99), la = ea, eb = ea, lb = ea;
  kinflow::detail::soa_fixed_steps(gaussian_lanes<double, 2>{mu, 0.5}, kinflow::rk4, grid, Xa, true, false,
                                   0.6, ea.data(), la.data());
  kinflow::detail::soa_fixed_steps(gaussian_expression<double, 2>{mu, 0.5}, kinflow::rk4, grid, Xb, true,
                                   false, 0.6, eb.data(), lb.data());
  CHECK(ulps(Xa, Xb) <= agree_ulps);
  CHECK(ulps(ea, eb) <= agree_ulps);
  CHECK(ulps(la, lb) <= agree_ulps);
}

TEST_CASE("SoA kernel: a velocity of the wrong dimension throws", "[soa_rk][errors]") {
  batch<double, 2> X = starts<double, 2>(10);
  kinflow::per_sample<double> e = kinflow::per_sample<double>::Zero(10), l = e;
  gaussian_dynamic<double, 2> wrong{test_mu<double, 2>(), 0.5, 1};
  CHECK_THROWS_AS(kinflow::detail::soa_fixed_steps(wrong, kinflow::rk4, time_grid<>::uniform(2), X, true,
                                                   false, 0.6, e.data(), l.data()),
                  kinflow::dimension_mismatch);
  CHECK_THROWS_WITH(kinflow::detail::soa_fixed_steps(wrong, kinflow::euler, time_grid<>::uniform(2), X,
                                                     false, false, 0.6, e.data(), l.data()),
                    kinflow_test::contains("dimension mismatch") && kinflow_test::contains("per-sample field"));
}

TEST_CASE("SoA kernel: energies are added to early/late, split by each step's lower end", "[soa_rk][kpe]") {
  // v = 1 in every coordinate; with the midpoint rule (weights 0, 1) each step adds ½|h|·2 =
  // 1/8 exactly, to early when min(t_n, t_n+1) < τ, and the state moves by h exactly.
  auto ones = [](double, const kinflow::point<double, 2>&) { return kinflow::point<double, 2>(1.0, 1.0); };
  const Eigen::Index B = 300;  // more than one default tile
  batch<double, 2> X = batch<double, 2>::Zero(2, B);
  kinflow::per_sample<double> early = kinflow::per_sample<double>::Constant(B, 10.0), late = early;
  kinflow::detail::soa_fixed_steps(ones, kinflow::midpoint, time_grid<>::uniform(8), X, true, false, 0.5,
                                   early.data(), late.data());
  CHECK((X.array() == 1.0).all());
  CHECK((early.array() == 10.0 + 4 * 0.125).all());  // steps starting at 0 .. 3/8
  CHECK((late.array() == 10.0 + 4 * 0.125).all());
  // Backward over the same grid: the split is by the lower end of each step, as forward.
  kinflow::per_sample<double> e2 = kinflow::per_sample<double>::Zero(B), l2 = e2;
  kinflow::detail::soa_fixed_steps(ones, kinflow::euler, time_grid<>::uniform(8).reversed(), X, true, true,
                                   0.3, e2.data(), l2.data());
  CHECK((X.array() == 0.0).all());
  CHECK((e2.array() == 3 * 0.125).all());  // [0, 1/8], [1/8, 2/8], [2/8, 3/8]
  CHECK((l2.array() == 5 * 0.125).all());
}

TEMPLATE_TEST_CASE("integrate with per_sample_kernel::structure_of_arrays", "[soa_rk][integrate]", float, double) {
  using Scalar = TestType;
  const auto mu = test_mu<Scalar, 2>();
  const gaussian_lanes<Scalar, 2> f{mu, Scalar(0.5)};
  const auto grid = time_grid<>::cosine(23);
  const batch<Scalar, 2> X0 = starts<Scalar, 2>(1031);  // not a multiple of the tile
  kinflow::fixed_step_options soa;
  soa.kernel = kinflow::per_sample_kernel::structure_of_arrays;
  kinflow::fixed_step_options interleaved;
  interleaved.kernel = kinflow::per_sample_kernel::interleaved;
  for (const bool left : {false, true}) {
    soa.kpe.quadrature = interleaved.kpe.quadrature =
        left ? kinflow::kpe_quadrature::left_riemann : kinflow::kpe_quadrature::stage;
    batch<Scalar, 2> X = X0, Y = X0;
    const auto a = kinflow::integrate(f, kinflow::rk4, grid, X, soa);
    const auto b = kinflow::integrate(f, kinflow::rk4, grid, Y, interleaved);
    // The same front door: statuses, counters and the energy split as for the other kernel.
    CHECK(ulps(X, Y) <= agree_ulps);
    CHECK(ulps(a.kpe.early, b.kpe.early) <= agree_ulps);
    CHECK(ulps(a.kpe.late, b.kpe.late) <= agree_ulps);
    CHECK(ulps(a.kpe.total, b.kpe.total) <= agree_ulps + 1);
    CHECK(a.nfe == b.nfe);
    CHECK(a.all_success());
    CHECK(a.kpe.tau == b.kpe.tau);
  }
  // A per-step profile is not kept by the tiles: the option falls back to interleaved
  // (bitwise that kernel's result).
  soa.kpe.quadrature = interleaved.kpe.quadrature = kinflow::kpe_quadrature::stage;
  soa.kpe.profile = interleaved.kpe.profile = kinflow::kpe_profile::per_sample;
  batch<Scalar, 2> X = X0, Y = X0;
  const auto a = kinflow::integrate(f, kinflow::rk4, grid, X, soa);
  const auto b = kinflow::integrate(f, kinflow::rk4, grid, Y, interleaved);
  CHECK(X == Y);
  CHECK(a.kpe.profile == b.kpe.profile);
  // A sample that starts non-finite is reported as with the other kernel.
  batch<Scalar, 2> Z = X0.leftCols(5);
  Z(1, 3) = std::numeric_limits<Scalar>::quiet_NaN();
  soa.kpe.profile = kinflow::kpe_profile::none;
  const auto z = kinflow::integrate(f, kinflow::rk4, grid, Z, soa);
  CHECK(z.count(kinflow::solve_status::non_finite) == 1);
  CHECK(z.status[3] == kinflow::solve_status::non_finite);
}

TEMPLATE_TEST_CASE("per_sample_kernel::automatic runs one of the two kernels on every sample",
                   "[soa_rk][integrate]", float, double) {
  // Whichever kernel the timing probe picks, every sample goes through it: the result is
  // one of the two kernels' results for the whole batch (they agree to rounding), the
  // counters are the solve's, and the probe leaves the batch and the energies untouched.
  // A batch of 20 tiles is probed; the field's form decides nothing the test could rely on.
  using Scalar = TestType;
  const auto mu = test_mu<Scalar, 2>();
  const gaussian_lanes<Scalar, 2> f{mu, Scalar(0.5)};
  const auto grid = time_grid<>::uniform(12);
  const Eigen::Index B = 20 * kinflow::detail::soa_default_tile<Scalar, 2> + 7;
  const batch<Scalar, 2> X0 = starts<Scalar, 2>(B);
  kinflow::fixed_step_options automatic, soa, interleaved;
  soa.kernel = kinflow::per_sample_kernel::structure_of_arrays;
  interleaved.kernel = kinflow::per_sample_kernel::interleaved;
  CHECK(automatic.kernel == kinflow::per_sample_kernel::automatic);  // the default
  batch<Scalar, 2> X = X0, Y = X0, Z = X0;
  const auto r = kinflow::integrate(f, kinflow::rk4, grid, X, automatic);
  const auto a = kinflow::integrate(f, kinflow::rk4, grid, Y, soa);
  const auto b = kinflow::integrate(f, kinflow::rk4, grid, Z, interleaved);
  const bool as_soa = X == Y && r.kpe.total == a.kpe.total;
  const bool as_interleaved = X == Z && r.kpe.total == b.kpe.total;
  CHECK((as_soa || as_interleaved));
  CHECK(r.nfe == b.nfe);
  CHECK(r.all_success());
}
