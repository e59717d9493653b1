// Multistep methods (kinflow/integrators/multistep.hpp). Oracles: the Gaussian target's
// exact trajectory, energy and log density (tests/support/oracles.hpp) for orders of
// convergence; a transcription of the published DPM-Solver++ and UniPC updates in the
// reference implementation's own σ convention; brute-force Lagrange integrals for the
// Adams–Bashforth weights.

#include <Eigen/LU>
#include <cmath>
#include <numbers>
#include <stdexcept>
#include <string>
#include <vector>

#include "kinflow/integrators/multistep.hpp"
#include "kinflow_catch.hpp"
#include "support/oracles.hpp"

using kinflow::batch;

namespace {

using ld_vector = Eigen::Matrix<long double, Eigen::Dynamic, 1>;

// The Gaussian target N(μ, s² I) in d = 3 with its exact divergence d·g(t).
struct flow3 : kinflow_test::gaussian_target<double, 3> {
  flow3() {
    mu = Eigen::Vector3d(1.5, -0.5, 0.25);
    s = 0.5;
  }
  void divergence(double t, const batch<double, 3>& X, kinflow::per_sample<double>& D) const {
    const double g = (t * s * s - (1 - t)) / ((1 - t) * (1 - t) + t * t * s * s);
    D.setConstant(X.cols(), 3 * g);
  }
};

batch<double, 3> starts() {
  batch<double, 3> X(3, 3);
  X << 0.3, -1.2, 2.0,  //
      1.1, 0.4, -0.9,   //
      -0.5, 0.8, 0.1;
  return X;
}

// The state at t1 of the exact trajectory through x(t0) = x.
ld_vector exact_from(const flow3& f, long double t0, long double t1, const ld_vector& x) {
  const long double s = f.s;
  auto sig = [&](long double t) { return std::sqrt((1 - t) * (1 - t) + t * t * s * s); };
  const ld_vector m = f.mu.cast<long double>();
  const ld_vector x0 = (x - t0 * m) / sig(t0);
  return t1 * m + sig(t1) * x0;
}

struct errors {
  double state = 0, energy = 0, loglik = 0;
};

// Largest errors of the state at the grid's end, of the energy and (over [0, 1]) of the
// log-likelihood, against the exact flow.
errors solve_errors(const kinflow::multistep_method& m, const kinflow::time_grid<double>& grid,
                    kinflow::multistep_start start, bool likelihood = false) {
  flow3 f;
  const batch<double, 3> X0 = starts();
  batch<double, 3> X = X0;
  kinflow::fixed_step_options opt;
  opt.start = start;
  opt.likelihood.enabled = likelihood;
  const auto r = kinflow::integrate(f, m, grid, X, opt);
  errors e;
  const long double a = grid[0], b = grid[grid.steps()];
  for (Eigen::Index i = 0; i < X.cols(); ++i) {
    const ld_vector x0 = X0.col(i).cast<long double>();
    const ld_vector xe = exact_from(f, a, b, x0);
    e.state = std::max(e.state, static_cast<double>((X.col(i).cast<long double>() - xe).norm()));
    // The energy of the trajectory through x0 at t = a, over [a, b].
    const long double s = f.s;
    const ld_vector z = (x0 - a * f.mu.cast<long double>()) / std::sqrt((1 - a) * (1 - a) + a * a * s * s);
    const long double E = f.exact_energy(z, a, b);
    e.energy = std::max(e.energy, static_cast<double>(std::abs(r.kpe.total(i) - E)));
    if (likelihood) {
      const long double d = 3, r2 = (xe - f.mu.cast<long double>()).squaredNorm();
      const long double exact = -0.5L * r2 / (s * s) - d * std::log(s) - 0.5L * d * std::log(2 * std::numbers::pi_v<long double>);
      e.loglik = std::max(e.loglik, static_cast<double>(std::abs(r.log_likelihood(i) - exact)));
    }
  }
  return e;
}

// Slope of log error against log step of the state (over N = n0, 2n0, 4n0, 8n0) and of the
// energy (over N = e0 · 2^k, k < 4; the third-order methods' energies leave their
// pre-asymptotic range later, e.g. ab3's local slopes 3.58, 3.42, 3.26, 3.15, 3.03 from
// N = 128 to 2048).
std::pair<double, double> slopes(const kinflow::multistep_method& m, kinflow::multistep_start start, double a,
                                 double b, int n0, bool cosine, int e0 = 0) {
  auto slope = [&](int first, bool energy) {
    std::vector<double> h, err;
    for (int N = first; N <= 8 * first; N *= 2) {
      const auto grid = cosine ? kinflow::time_grid<double>::cosine(static_cast<std::size_t>(N), a, b)
                               : kinflow::time_grid<double>::uniform(static_cast<std::size_t>(N), a, b);
      const errors e = solve_errors(m, grid, start);
      h.push_back(1.0 / N);
      err.push_back(energy ? e.energy : e.state);
    }
    return kinflow_test::convergence_slope(h, err);
  };
  return {slope(n0, false), slope(e0 > 0 ? e0 : n0, true)};
}

}  // namespace

TEST_CASE("Adams weights integrate the interpolating polynomial", "[multistep]") {
  // The weights must integrate every polynomial of degree < k exactly, against its
  // antiderivative: beyond the points (Adams-Bashforth) and between them (Adams-Moulton).
  const std::array<long double, 3> times{0.5L, 0.3L, 0.05L};
  for (const auto& [a, b] : {std::pair{0.5L, 0.9L}, std::pair{0.3L, 0.5L}}) {
    for (int k = 1; k <= 3; ++k) {
      const auto w = kinflow::detail::adams_weights(k, times, a, b);
      for (int p = 0; p < k; ++p) {
        long double q = 0;
        for (int j = 0; j < k; ++j) q += w[j] * std::pow(times[j], p);
        const long double exact = (std::pow(b, p + 1) - std::pow(a, p + 1)) / (p + 1) / (b - a);
        CHECK(std::abs(static_cast<double>(q - exact)) < 1e-15);
      }
    }
  }
}

TEST_CASE("multistep orders of convergence on the Gaussian target", "[multistep][order]") {
  using kinflow::multistep_start;
  // Uniform grids in t take steps in λ = log(t/(1 − t)) that do not shrink at the ends
  // (λ_2 − λ_1 = log 2 for every N), where the data-prediction methods step: there
  // dpmpp2m's error decays like h² log(1/h) (local slopes 1.57, 1.72, 1.78, 1.81 from N = 32
  // to 512 over [0.1, 1]); cosine grids shrink them and show the order.
  SECTION("second-order methods over [0, 1]") {
    for (const bool cosine : {false, true}) {
      CAPTURE(cosine);
      const auto [ss, se] = slopes(kinflow::ab2, multistep_start::lower_order, 0, 1, 32, cosine);
      CHECK(std::abs(ss - 2) < 0.3);
      CHECK(std::abs(se - 2) < 0.3);
    }
    const auto [ss, se] = slopes(kinflow::dpmpp2m, multistep_start::lower_order, 0, 1, 32, true);
    CHECK(std::abs(ss - 2) < 0.3);
    CHECK(std::abs(se - 2) < 0.3);
  }
  SECTION("third-order methods with a Runge-Kutta start") {
    for (const auto* m : {&kinflow::ab3, &kinflow::dpmpp3m_exact}) {
      CAPTURE(m->name);
      const auto [ss, se] = slopes(*m, multistep_start::runge_kutta, 0.1, 0.9, 64, false, 512);
      CHECK(std::abs(ss - 3) < 0.3);
      CHECK(std::abs(se - 3) < 0.3);
    }
    const auto [ss, se] = slopes(kinflow::ab3, multistep_start::runge_kutta, 0, 1, 64, true, 512);
    CHECK(std::abs(ss - 3) < 0.3);
    CHECK(std::abs(se - 3) < 0.3);
  }
  SECTION("the published DPM-Solver++(3M) update is second order") {
    // Same start, same grids as dpmpp3m_exact above: only the D2 coefficient differs.
    const auto [ss, se] = slopes(kinflow::dpmpp3m, multistep_start::runge_kutta, 0.1, 0.9, 64, false);
    CHECK(std::abs(ss - 2) < 0.3);
    CHECK(std::abs(se - 2) < 0.3);
  }
  SECTION("a lower-order start bounds a third-order method at second order") {
    const auto [ss, se] = slopes(kinflow::ab3, multistep_start::lower_order, 0.1, 0.9, 64, false);
    CHECK(std::abs(ss - 2) < 0.3);
    CHECK(std::abs(se - 2) < 0.3);
  }
  SECTION("UniPC: the corrector raises the predictor's order by one") {
    for (const bool full : {false, true}) {
      CAPTURE(full);
      const auto [ss, se] = full ? slopes(kinflow::unipc, multistep_start::lower_order, 0, 1, 64, true)
                                 : slopes(kinflow::unipc, multistep_start::lower_order, 0.1, 0.9, 64, false);
      CHECK(std::abs(ss - 3) < 0.3);
      CHECK(std::abs(se - 3) < 0.3);
    }
  }
  SECTION("the log-likelihood converges at the method's order") {
    const std::vector<std::pair<const kinflow::multistep_method*, double>> cases{
        {&kinflow::ab2, 2}, {&kinflow::dpmpp2m, 2}, {&kinflow::unipc, 3}};
    for (const auto& [m, order] : cases) {
      CAPTURE(m->name);
      std::vector<double> h, el;
      for (int N = 64; N <= 512; N *= 2) {
        const auto e = solve_errors(*m, kinflow::time_grid<double>::cosine(static_cast<std::size_t>(N)),
                                    multistep_start::lower_order, true);
        h.push_back(1.0 / N);
        el.push_back(e.loglik);
      }
      CHECK(std::abs(kinflow_test::convergence_slope(h, el) - order) < 0.3);
    }
  }
}

namespace {

// A transcription of the reference multistep schedulers in their own convention: noise
// level σ = 1 − t (σ = 1 noise, 0 data), α = 1 − σ, λ = log α − log σ, the model output
// is the flow velocity dx/dσ = −v, the data prediction x0 = x − σ·output. Written after
// diffusers' DPMSolverMultistepScheduler (dpmsolver++, midpoint, final sigma 0) and
// UniPCMultistepScheduler (predict_x0, bh2, lower_order_final), step by step.
struct reference_sampler {
  flow3 f;
  std::vector<double> sigmas;

  Eigen::VectorXd output(double sigma, const Eigen::VectorXd& x) const {
    batch<double, 3> X = x, V(3, 1);
    f(1 - sigma, X, V);
    return -V.col(0);
  }
  double lambda(double sigma) const { return std::log(1 - sigma) - std::log(sigma); }

  Eigen::VectorXd dpmpp(Eigen::VectorXd x, int solver_order) const {
    const int N = static_cast<int>(sigmas.size()) - 1;
    std::vector<Eigen::VectorXd> m;  // model outputs (data predictions), oldest first
    int lower_order_nums = 0;
    for (int i = 0; i < N; ++i) {
      m.push_back(x - sigmas[i] * output(sigmas[i], x));
      const bool lower_order_final = i == N - 1 && sigmas[N] == 0;
      const double sigma_t = sigmas[i + 1], sigma_s0 = sigmas[i], alpha_t = 1 - sigma_t;
      const double lambda_t = lambda(sigma_t), lambda_s0 = lambda(sigma_s0);
      const double h = lambda_t - lambda_s0;
      const Eigen::VectorXd& m0 = m[m.size() - 1];
      if (solver_order == 1 || lower_order_nums < 1 || lower_order_final) {
        x = (sigma_t / sigma_s0) * x - (alpha_t * (std::exp(-h) - 1.0)) * m0;
      } else if (solver_order == 2 || lower_order_nums < 2) {
        const Eigen::VectorXd& m1 = m[m.size() - 2];
        const double h_0 = lambda_s0 - lambda(sigmas[i - 1]), r0 = h_0 / h;
        const Eigen::VectorXd D0 = m0, D1 = (1.0 / r0) * (m0 - m1);
        x = (sigma_t / sigma_s0) * x - (alpha_t * (std::exp(-h) - 1.0)) * D0 -
            0.5 * (alpha_t * (std::exp(-h) - 1.0)) * D1;
      } else {
        const Eigen::VectorXd &m1 = m[m.size() - 2], &m2 = m[m.size() - 3];
        const double lambda_s1 = lambda(sigmas[i - 1]), lambda_s2 = lambda(sigmas[i - 2]);
        const double h_0 = lambda_s0 - lambda_s1, h_1 = lambda_s1 - lambda_s2;
        const double r0 = h_0 / h, r1 = h_1 / h;
        const Eigen::VectorXd D0 = m0;
        const Eigen::VectorXd D1_0 = (1.0 / r0) * (m0 - m1), D1_1 = (1.0 / r1) * (m1 - m2);
        const Eigen::VectorXd D1 = D1_0 + (r0 / (r0 + r1)) * (D1_0 - D1_1);
        const Eigen::VectorXd D2 = (1.0 / (r0 + r1)) * (D1_0 - D1_1);
        x = (sigma_t / sigma_s0) * x - (alpha_t * (std::exp(-h) - 1.0)) * D0 +
            (alpha_t * ((std::exp(-h) - 1.0) / h + 1.0)) * D1 -
            (alpha_t * ((std::exp(-h) - 1.0 + h) / (h * h) - 0.5)) * D2;
      }
      if (lower_order_nums < solver_order) ++lower_order_nums;
    }
    return x;
  }

  // R, b of UniPC for `order` with the history ratios `rks` (the last one 1).
  static void unipc_system(double h, const std::vector<double>& rks, int order, Eigen::MatrixXd& R,
                           Eigen::VectorXd& b) {
    const double hh = -h, h_phi_1 = std::expm1(hh), B_h = std::expm1(hh);
    double h_phi_k = h_phi_1 / hh - 1, factorial_i = 1;
    R.resize(order, order);
    b.resize(order);
    for (int i = 1; i <= order; ++i) {
      for (int j = 0; j < order; ++j) R(i - 1, j) = std::pow(rks[static_cast<std::size_t>(j)], i - 1);
      b(i - 1) = h_phi_k * factorial_i / B_h;
      factorial_i *= (i + 1);
      h_phi_k = h_phi_k / hh - 1 / factorial_i;
    }
  }

  Eigen::VectorXd unipc(Eigen::VectorXd x) const {
    const int N = static_cast<int>(sigmas.size()) - 1, solver_order = 2;
    std::vector<Eigen::VectorXd> m;  // model outputs, oldest first
    Eigen::VectorXd last_sample;
    int lower_order_nums = 0, this_order = 1;
    for (int i = 0; i < N; ++i) {
      const Eigen::VectorXd model = x - sigmas[i] * output(sigmas[i], x);
      if (i > 0) {  // UniC with this_order of the previous predictor
        const double sigma_t = sigmas[i], sigma_s0 = sigmas[i - 1], alpha_t = 1 - sigma_t;
        const double h = lambda(sigma_t) - lambda(sigma_s0);
        const Eigen::VectorXd& m0 = m.back();
        std::vector<double> rks;
        std::vector<Eigen::VectorXd> D1s;
        for (int k = 1; k < this_order; ++k) {
          const double rk = (lambda(sigmas[i - (k + 1)]) - lambda(sigma_s0)) / h;
          rks.push_back(rk);
          D1s.push_back((m[m.size() - 1 - k] - m0) / rk);
        }
        rks.push_back(1.0);
        Eigen::MatrixXd R;
        Eigen::VectorXd b;
        unipc_system(h, rks, this_order, R, b);
        Eigen::VectorXd rhos_c(1);
        if (this_order == 1)
          rhos_c(0) = 0.5;
        else
          rhos_c = R.fullPivLu().solve(b);
        const double h_phi_1 = std::expm1(-h), B_h = std::expm1(-h);
        const Eigen::VectorXd x_t_ = (sigma_t / sigma_s0) * last_sample - alpha_t * h_phi_1 * m0;
        Eigen::VectorXd corr_res = Eigen::VectorXd::Zero(x.size());
        for (std::size_t k = 0; k < D1s.size(); ++k) corr_res += rhos_c(static_cast<Eigen::Index>(k)) * D1s[k];
        const Eigen::VectorXd D1_t = model - m0;
        x = x_t_ - alpha_t * B_h * (corr_res + rhos_c(rhos_c.size() - 1) * D1_t);
      }
      m.push_back(model);
      this_order = std::min({solver_order, N - i, lower_order_nums + 1});
      last_sample = x;
      // UniP-2 (bh2).
      const double sigma_t = sigmas[i + 1], sigma_s0 = sigmas[i], alpha_t = 1 - sigma_t;
      const double h = lambda(sigma_t) - lambda(sigma_s0);
      const Eigen::VectorXd& m0 = m.back();
      Eigen::VectorXd pred_res = Eigen::VectorXd::Zero(x.size());
      if (this_order == 2) {
        const double rk = (lambda(sigmas[i - 1]) - lambda(sigma_s0)) / h;
        pred_res = 0.5 * (m[m.size() - 2] - m0) / rk;
      }
      const double h_phi_1 = std::expm1(-h), B_h = std::expm1(-h);
      x = (sigma_t / sigma_s0) * x - alpha_t * h_phi_1 * m0 - alpha_t * B_h * pred_res;
      if (lower_order_nums < solver_order) ++lower_order_nums;
    }
    return x;
  }
};

}  // namespace

TEST_CASE("DPM-Solver++ and UniPC against the reference's updates in its own convention", "[multistep][reference]") {
  auto compare = [](const kinflow::multistep_method& m, const std::vector<double>& t, auto&& reference) {
    CAPTURE(m.name, t.size());
    reference_sampler ref;
    for (double ti : t) ref.sigmas.push_back(1 - ti);
    batch<double, 3> X = starts();
    const batch<double, 3> X0 = X;
    kinflow::integrate(ref.f, m, kinflow::time_grid<double>(t), X);
    for (Eigen::Index i = 0; i < X.cols(); ++i) {
      const Eigen::VectorXd expected = reference(ref, Eigen::VectorXd(X0.col(i)));
      CHECK((X.col(i) - expected).cwiseAbs().maxCoeff() <= 1e-12 * (1 + expected.cwiseAbs().maxCoeff()));
    }
  };
  auto dpm2 = [](const reference_sampler& r, const Eigen::VectorXd& x) { return r.dpmpp(x, 2); };
  auto dpm3 = [](const reference_sampler& r, const Eigen::VectorXd& x) { return r.dpmpp(x, 3); };
  auto uni = [](const reference_sampler& r, const Eigen::VectorXd& x) { return r.unipc(x); };
  // From pure noise (λ = −∞: the reference's infinities) to data, and from inside.
  const std::vector<double> full{0, 0.1, 0.25, 0.45, 0.6, 0.8, 1}, inner{0.05, 0.2, 0.3, 0.5, 0.7, 0.85, 0.9, 1};
  std::vector<double> sixteen;
  for (int i = 0; i <= 16; ++i) sixteen.push_back(0.02 + 0.98 * std::pow(i / 16.0, 1.3));
  sixteen.back() = 1;
  compare(kinflow::dpmpp2m, full, dpm2);
  compare(kinflow::dpmpp2m, inner, dpm2);
  compare(kinflow::dpmpp3m, full, dpm3);
  compare(kinflow::dpmpp3m, sixteen, dpm3);
  compare(kinflow::dpmpp2m, sixteen, dpm2);
  compare(kinflow::unipc, inner, uni);
  compare(kinflow::unipc, sixteen, uni);
}

TEST_CASE("multistep solves: counts, observer, start and landing", "[multistep]") {
  flow3 f;
  const auto grid = kinflow::time_grid<double>::uniform(10);
  SECTION("one evaluation per step; a Runge-Kutta start costs order - 1 more per start step") {
    batch<double, 3> X = starts();
    auto r = kinflow::integrate(f, kinflow::dpmpp2m, grid, X);
    CHECK(r.nfe(0) == 10);
    CHECK(r.all_success());
    X = starts();
    kinflow::fixed_step_options opt;
    opt.start = kinflow::multistep_start::runge_kutta;
    r = kinflow::integrate(f, kinflow::ab3, grid, X, opt);
    CHECK(r.nfe(0) == 14);
  }
  SECTION("the observer sees every step and its order: lower at the start and the landing") {
    batch<double, 3> X = starts();
    std::vector<int> orders;
    kinflow::integrate(f, kinflow::dpmpp3m, grid, X, {}, [&](const kinflow::multistep_step_view<double, 3>& v) {
      CHECK(v.step == orders.size());
      orders.push_back(v.order);
    });
    // t_0 = 0: the history's infinite λ-difference lowers the second and third steps' order
    // by itself, but the step still reports the formula it ran.
    CHECK(orders == std::vector<int>{1, 2, 3, 3, 3, 3, 3, 3, 3, 1});
  }
  SECTION("the first step from t = 0 is an Euler step") {
    batch<double, 3> X = starts(), V(3, 3);
    const batch<double, 3> X0 = X;
    f(0.0, X0, V);
    const kinflow::time_grid<double> g({0.0, 0.3});
    kinflow::integrate(f, kinflow::dpmpp2m, g, X);
    CHECK((X - (X0 + 0.3 * V)).cwiseAbs().maxCoeff() < 1e-15);
  }
}

TEST_CASE("multistep bad input", "[multistep][errors]") {
  flow3 f;
  batch<double, 3> X = starts();
  auto message = [&](const kinflow::multistep_method& m, const kinflow::time_grid<double>& g,
                     const kinflow::fixed_step_options& o = {}) -> std::string {
    try {
      kinflow::integrate(f, m, g, X, o);
    } catch (const kinflow::invalid_argument& e) {
      return e.what();
    }
    return "";
  };
  const kinflow::time_grid<double> backward = kinflow::time_grid<double>::uniform(5).reversed();
  CHECK_THAT(message(kinflow::dpmpp2m, backward), kinflow_test::contains("grid[0]"));
  CHECK_THAT(message(kinflow::unipc, kinflow::time_grid<double>({0.0, 0.5, 1.5})),
             kinflow_test::contains("grid[2]"));
  kinflow::fixed_step_options o;
  o.last_step = kinflow::last_step_rule::denoise;
  CHECK_THAT(message(kinflow::ab2, kinflow::time_grid<double>::uniform(5, 0.0, 0.9), o),
             kinflow_test::contains("last_step"));
  // Adams-Bashforth integrates backward from t = 1 like the Runge-Kutta methods.
  CHECK(message(kinflow::ab2, backward).empty());
}
