// Stochastic samplers (kinflow/integrators/stochastic.hpp). Oracles: Random123's published
// Philox4x32-10 answers; SiT's diffusion formulas written out; the Gaussian target's exact
// marginals N(t μ, σ_t² I) (the SDE keeps them for any diffusion) and, since its field is
// affine, each scheme's exact output law, identified by regressing the output on the
// start and the regenerated noise; the ODE solvers at norm 0; the empirical field's own
// score. Statistical checks allow 5 standard errors: a false alarm (for the fixed seeds,
// had they been drawn at random) of 5.7e-7 per check, below 1e-4 over the file.

#include <Eigen/Cholesky>
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <functional>
#include <numeric>
#include <string>
#include <vector>

#include "kinflow/data/random.hpp"
#include "kinflow/fields/empirical.hpp"
#include "kinflow/fields/smoothed_empirical.hpp"
#include "kinflow/integrators/explicit_rk.hpp"
#include "kinflow/integrators/stochastic.hpp"
#include "kinflow/metrics/wasserstein.hpp"
#include "kinflow_catch.hpp"
#include "support/oracles.hpp"

using kinflow::batch;
using kinflow::diffusion_form;
using kinflow::last_step_rule;

namespace {

using batch2 = batch<double, 2>;
using field_type = kinflow::gaussian_mixture_field<double, 2>;

const Eigen::Vector2d mu(1.5, -0.5);
constexpr double s_target = 0.5;

// N(μ, s² I): the smoothed field of one point.
field_type gaussian_field() {
  batch2 y(2, 1);
  y.col(0) = mu;
  return kinflow::smoothed_empirical(y, s_target);
}

// σ_t² of the Gaussian target, and its velocity's slope k(t): v = μ + k (x − tμ).
double sigma2(double t) { return (1 - t) * (1 - t) + t * t * s_target * s_target; }
[[maybe_unused]] double slope(double t) { return (t * s_target * s_target - (1 - t)) / sigma2(t); }

// SiT's compute_diffusion for its linear path, transcribed (norm n): the "decreasing"
// form as SiT writes it at n = 1.
double sit_w(diffusion_form f, double t, double n, double G) {
  const double pi = 3.14159265358979323846;
  switch (f) {
    case diffusion_form::constant: return n * G;
    case diffusion_form::sbdm: return n * ((1 / t) * (1 - t) * (1 - t) + (1 - t));  // α̇/α σ² − σ σ̇
    case diffusion_form::sigma: return n * (1 - t);
    case diffusion_form::linear: return n * (1 - t);
    case diffusion_form::decreasing: return n * 0.25 * std::pow(std::cos(pi * t) + 1, 2);
    case diffusion_form::increasing_decreasing: return n * std::pow(std::sin(pi * t), 2);
  }
  return 0;
}

struct moments {
  double mean = 0, mean_se = 0, var = 0, var_se = 0;
};

// Mean and variance of the pooled coordinates' deviations from their target means, with
// standard errors (the variance's from the fourth moment).
[[maybe_unused]] moments pooled(const batch2& X, const Eigen::Vector2d& centre) {
  moments m;
  std::vector<double> z;
  for (Eigen::Index j = 0; j < X.cols(); ++j)
    for (int r = 0; r < 2; ++r) z.push_back(X(r, j) - centre(r));
  const auto n = static_cast<double>(z.size());
  m.mean = std::accumulate(z.begin(), z.end(), 0.0) / n;
  double m2 = 0, m4 = 0;
  for (double v : z) {
    m2 += (v - m.mean) * (v - m.mean);
    m4 += std::pow(v - m.mean, 4);
  }
  m2 /= n;
  m4 /= n;
  m.var = m2;
  m.mean_se = std::sqrt(m2 / n);
  m.var_se = std::sqrt((m4 - m2 * m2) / n);
  return m;
}

kinflow::diffusion_coefficient form(diffusion_form f, double norm = 1) {
  kinflow::diffusion_coefficient d;
  d.form = f;
  d.norm = norm;
  d.constant = 0.5;
  return d;
}

// One observer type for every observed solve (one instantiation of the observed loop).
struct step_log {
  std::function<void(const kinflow::stochastic_step_view<double, 2>&)> f;
  void operator()(const kinflow::stochastic_step_view<double, 2>& v) const { f(v); }
};

constexpr std::array<diffusion_form, 6> all_forms{diffusion_form::constant,   diffusion_form::sbdm,
                                                  diffusion_form::sigma,      diffusion_form::linear,
                                                  diffusion_form::decreasing, diffusion_form::increasing_decreasing};

}  // namespace

TEST_CASE("Philox4x32-10 gives Random123's known answers; its normals are standard", "[stochastic][noise]") {
  using kinflow::detail::philox4x32_10;
  CHECK(philox4x32_10({0, 0, 0, 0}, {0, 0}) == std::array<std::uint32_t, 4>{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8});
  CHECK(philox4x32_10({0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff}) ==
        std::array<std::uint32_t, 4>{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd});
  CHECK(philox4x32_10({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0}) ==
        std::array<std::uint32_t, 4>{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1});

  // 400 000 normals over streams, steps and components: mean 0, variance 1, and no
  // correlation between neighbouring components, steps or streams (5 standard errors).
  const int n_streams = 2000, n_steps = 20, d = 10;
  double sum = 0, sum2 = 0, c_comp = 0, c_step = 0, c_stream = 0;
  std::vector<Eigen::VectorXd> prev(n_steps);
  for (int i = 0; i < n_streams; ++i) {
    Eigen::VectorXd last;
    for (int n = 0; n < n_steps; ++n) {
      const Eigen::VectorXd z = kinflow::sde_noise(42, static_cast<std::uint64_t>(i), static_cast<std::uint32_t>(n), d);
      sum += z.sum();
      sum2 += z.squaredNorm();
      c_comp += z.head(d - 1).dot(z.tail(d - 1)) / (d - 1);
      if (n > 0) c_step += z.dot(last) / d;
      if (i > 0) c_stream += z.dot(prev[static_cast<std::size_t>(n)]) / d;
      last = z;
      prev[static_cast<std::size_t>(n)] = z;
    }
  }
  const double count = double(n_streams) * n_steps * d;
  CHECK(std::abs(sum / count) < 5 / std::sqrt(count));
  CHECK(std::abs(sum2 / count - 1) < 5 * std::sqrt(2 / count));
  CHECK(std::abs(c_comp / (n_streams * n_steps)) < 5 / std::sqrt(n_streams * n_steps * (d - 1.0)));
  CHECK(std::abs(c_step / (n_streams * (n_steps - 1))) < 5 / std::sqrt(n_streams * (n_steps - 1.0) * d));
  CHECK(std::abs(c_stream / ((n_streams - 1) * n_steps)) < 5 / std::sqrt((n_streams - 1.0) * n_steps * d));
  // The quantile function against the normal distribution function, Φ(z) = ½ erfc(−z/√2),
  // in the central range, the tails and the far tails of AS 241.
  for (double p : {1e-300, 1e-20, 1e-10, 1e-5, 0.01, 0.07, 0.075, 0.2, 0.5, 0.6, 0.925, 0.93, 0.999, 1 - 1e-12}) {
    const double z = kinflow::detail::normal_quantile(p);
    INFO("p = " << p << " z = " << z);
    if (p <= 0.5)
      CHECK(0.5 * std::erfc(-z / std::sqrt(2.0)) == Approx(p).epsilon(1e-13));
    else  // the upper tail 1 − Φ(z) = ½ erfc(z/√2), against 1 − p (exact)
      CHECK(0.5 * std::erfc(z / std::sqrt(2.0)) == Approx(1 - p).epsilon(1e-13));
  }
  // Odd dimensions: the first components are those of the even dimension above them.
  const Eigen::VectorXd z3 = kinflow::sde_noise(3, 9, 4, 3), z4 = kinflow::sde_noise(3, 9, 4, 4);
  CHECK(z3 == z4.head(3));
}

TEST_CASE("diffusion forms: SiT's formulas, the score weight, parsing", "[stochastic][diffusion]") {
  for (diffusion_form f : all_forms) {
    for (double n : {0.0, 0.3, 1.0, 2.0}) {
      const auto dc = form(f, n);
      for (double t : {0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.999}) {
        INFO(to_string(f) << " n = " << n << " t = " << t);
        // SiT puts the norm of "decreasing" inside the square; kinflow scales it: equal at n = 1.
        const double sit = f == diffusion_form::decreasing ? n * sit_w(f, t, 1, 0.5) : sit_w(f, t, n, 0.5);
        CHECK(dc.w(t) == Approx(sit).epsilon(1e-12).margin(1e-15));
        CHECK(dc.g(t) == Approx(std::sqrt(2 * sit)).epsilon(1e-12).margin(1e-15));
        CHECK(dc.score_weight(t) * (1 - t) == Approx(sit).epsilon(1e-10).margin(1e-15));
      }
      INFO(to_string(f) << " n = " << n);
      CHECK(dc.vanishes_at_end() == (n == 0 || f != diffusion_form::constant));
    }
  }
  // At t = 1 the score weight has its limit; infinite only where w/(1 − t) is.
  CHECK(form(diffusion_form::linear, 2).score_weight(1) == 2);
  CHECK(form(diffusion_form::sbdm, 2).score_weight(1) == 2);
  CHECK(form(diffusion_form::decreasing).score_weight(1) == 0);
  CHECK(form(diffusion_form::increasing_decreasing).score_weight(1) == 0);
  CHECK(std::isinf(form(diffusion_form::constant).score_weight(1)));
  CHECK(std::isinf(form(diffusion_form::sbdm).w(0)));

  CHECK(kinflow::parse_diffusion("constant:0.25", 2).w(0.3) == 0.5);
  CHECK(kinflow::parse_diffusion("constant").w(0.3) == 1);
  CHECK(kinflow::parse_diffusion("increasing-decreasing").form == diffusion_form::increasing_decreasing);
  CHECK(kinflow::parse_diffusion("constant:0.25").text() == "constant:0.25");
  using kinflow_test::contains;
  CHECK_THROWS_WITH(kinflow::parse_diffusion("brownian"), contains("diffusion = brownian") && contains("sbdm"));
  CHECK_THROWS_WITH(kinflow::parse_diffusion("sbdm:2"), contains("only constant takes a parameter"));
  CHECK_THROWS_WITH(kinflow::parse_diffusion("constant:x"), contains("constant:G"));
  CHECK_THROWS_WITH(kinflow::parse_diffusion("constant:-1"), contains("constant:G"));
  CHECK_THROWS_WITH(kinflow::parse_diffusion("sigma", -0.5), contains("diffusion_norm = -0.5") && contains(">= 0"));
  CHECK_THROWS_WITH(kinflow::stochastic_method_by_name("sde-rk4"), contains("method = sde-rk4") && contains("sde-heun"));
  CHECK(kinflow::stochastic_method_by_name("renoise-euler").scheme == kinflow::stochastic_scheme::renoise_euler);
}

namespace {

// The exact law of coordinate 0 of a stochastic solve of the Gaussian target: the field is
// affine, so the output is `β₀ + β₁ x₀ + Σ_n β_{n+2} ξ_n` in the start x₀ and the steps'
// normals ξ_n (kinflow::sde_noise, regenerated here); least squares over more samples than
// unknowns recovers the β exactly (to rounding), and with it the mean β₀ and the second
// moment β₀² + β₁² + Σ β_{n+2}².
struct exact_law {
  double mean = 0, second = 0;
};

exact_law law_of(const kinflow::stochastic_method& m, const kinflow::time_grid<double>& grid,
                 kinflow::stochastic_options o) {
  field_type f = gaussian_field();
  const Eigen::Index N = static_cast<Eigen::Index>(grid.steps()) + (o.last_step_size ? 1 : 0);
  const Eigen::Index unknowns = N + 2, B = 3 * unknowns + 20;
  batch2 X = kinflow::standard_normal<double, 2>(2, B, 11);
  Eigen::MatrixXd R(B, unknowns);
  for (Eigen::Index i = 0; i < B; ++i) {
    R(i, 0) = 1;
    R(i, 1) = X(0, i);
    for (Eigen::Index n = 0; n < N; ++n)
      R(i, n + 2) = kinflow::sde_noise(o.noise_seed, static_cast<std::uint64_t>(i), static_cast<std::uint32_t>(n), 2)(0);
  }
  o.kpe.enabled = false;
  const auto r = kinflow::integrate(f, m, grid, X, o);
  REQUIRE(r.all_success());
  const Eigen::VectorXd y = X.row(0).transpose();
  const Eigen::VectorXd beta = (R.transpose() * R).ldlt().solve(R.transpose() * y);
  REQUIRE((R * beta - y).cwiseAbs().maxCoeff() < 1e-9);  // the map is affine
  return {beta(0), beta.squaredNorm() - beta(0) * beta(0) + beta(0) * beta(0)};
}

}  // namespace

namespace {

// The same law from the published updates, transcribed per coordinate with the Gaussian
// target's affine drift b = p + a x (v = (1 − kt)μ + kx, w ∇log p = c (t v − x)):
// Euler–Maruyama V' = (1 + ha)² V + 2wh; Kloeden–Platen's Heun x' = A x + C + √h (½ h a₁ g₀
// + ½ (g₀ + g₁)) ξ with A = 1 + ½h (a₀ + a₁ + h a₀ a₁); renoise-euler from x̂₁ and x̂₀; the
// rules' steps without noise. Also the expectations of the energies' sums, from the law of
// every point where the scheme evaluates (each coordinate N(m_r, V), independent).
struct transcription {
  long double mean[2] = {0, 0}, var = 1;  // x₀ ~ N(0, I)
  long double kpe = 0, drift = 0, control = 0;
  [[nodiscard]] exact_law law() const {
    return {static_cast<double>(mean[0]), static_cast<double>(var + mean[0] * mean[0])};
  }
};

transcription transcribe(const kinflow::stochastic_method& m, const kinflow::time_grid<double>& grid,
                         const kinflow::stochastic_options& o) {
  using ld = long double;
  transcription r;
  const ld mus[2] = {mu(0), mu(1)};
  // E ½ ‖α x + β μ‖² over x ~ N(m, V I).
  auto energy = [&](const ld* mean, ld var, ld alpha, ld beta) {
    ld e = 0;
    for (int c = 0; c < 2; ++c) e += (alpha * mean[c] + beta * mus[c]) * (alpha * mean[c] + beta * mus[c]) + alpha * alpha * var;
    return e / 2;
  };
  struct point_terms {
    ld p, a, g, kpe, drift, control;
  };
  // At a point of law (mean, var), time t: the drift b = p μ + a x, g, and the integrands'
  // expectations ½‖v‖², ½‖b‖², ½ c ‖t v − x‖²/(1 − t).
  auto at = [&](ld t, bool off, const ld* mean, ld var) {
    const ld k = slope(static_cast<double>(t));
    const ld c = off ? 0 : o.diffusion.score_weight(static_cast<double>(t));
    const ld w = off ? 0 : o.diffusion.w(static_cast<double>(t));
    const ld p = (1 - k * t) * (1 + c * t), a = k + c * (t * k - 1);
    const ld control = c == 0 || t >= 1 ? 0 : c / (1 - t) * energy(mean, var, t * k - 1, t * (1 - k * t));
    return point_terms{p, a, std::sqrt(2 * w), energy(mean, var, k, 1 - k * t), energy(mean, var, a, p), control};
  };
  const std::size_t N = grid.steps();
  const bool rule = o.last_step != last_step_rule::method;
  for (std::size_t n = 0; n < N; ++n) {
    const ld t = grid[n], t1 = grid[n + 1], h = t1 - t;
    const bool off = !std::isfinite(o.diffusion.w(static_cast<double>(t)));
    const point_terms P = at(t, off, r.mean, r.var);
    ld A = 0, C = 0, S = 0;  // x' = A x + C μ + S ξ
    if (rule && n + 1 == N) {
      r.kpe += h * P.kpe;
      if (o.last_step == last_step_rule::denoise || m.scheme == kinflow::stochastic_scheme::renoise_euler) {
        const ld k = slope(static_cast<double>(t));
        const ld hj = o.last_step == last_step_rule::denoise ? 1 - t : h;
        A = 1 + hj * k;
        C = hj * (1 - k * t);
        r.drift += h * P.kpe;
      } else {
        A = 1 + h * P.a;
        C = h * P.p;
        r.drift += h * P.drift;
        r.control += h * P.control;
      }
    } else if (m.scheme == kinflow::stochastic_scheme::renoise_euler) {
      const ld k = slope(static_cast<double>(t)), eta = o.churn, a = std::sqrt(1 - eta * eta);
      A = t1 * (1 + (1 - t) * k) + (1 - t1) * a * (1 - t * k);
      C = (t1 * (1 - t) - (1 - t1) * a * t) * (1 - k * t);
      S = (1 - t1) * eta;
      // b̄ = v − κ x̂₀ with κ = (1 − t')(1 − a)/h; the control ½ ((1 − a)/η)² ‖x̂₀‖².
      const ld kappa = (1 - t1) * (1 - a) / h, ratio = eta > 0 ? (1 - a) / eta : 0;
      r.kpe += h * P.kpe;
      r.drift += h * energy(r.mean, r.var, k - kappa * (1 - t * k), (1 - k * t) * (1 + kappa * t));
      r.control += ratio * ratio * energy(r.mean, r.var, 1 - t * k, -t * (1 - k * t));
    } else if (m.scheme == kinflow::stochastic_scheme::euler_maruyama) {
      A = 1 + h * P.a;
      C = h * P.p;
      S = P.g * std::sqrt(h);
      r.kpe += h * P.kpe;
      r.drift += h * P.drift;
      r.control += h * P.control;
    } else {
      // The predicted point x̃ = (1 + h a₀) x + h p₀ μ + g₀ √h ξ.
      ld mean_p[2];
      for (int c = 0; c < 2; ++c) mean_p[c] = (1 + h * P.a) * r.mean[c] + h * P.p * mus[c];
      const ld var_p = (1 + h * P.a) * (1 + h * P.a) * r.var + P.g * P.g * h;
      const point_terms Q = at(t1, off, mean_p, var_p);
      A = 1 + h / 2 * (P.a + Q.a + h * P.a * Q.a);
      C = h / 2 * (P.p + Q.p + h * Q.a * P.p);
      S = std::sqrt(h) * (h / 2 * Q.a * P.g + (P.g + Q.g) / 2);
      r.kpe += h / 2 * (P.kpe + Q.kpe);
      r.drift += h / 2 * (P.drift + Q.drift);
      r.control += h / 2 * (P.control + Q.control);
    }
    for (int c = 0; c < 2; ++c) r.mean[c] = A * r.mean[c] + C * mus[c];
    r.var = A * A * r.var + S * S;
  }
  return r;
}

exact_law transcribed_law(const kinflow::stochastic_method& m, const kinflow::time_grid<double>& grid,
                          const kinflow::stochastic_options& o) {
  return transcribe(m, grid, o).law();
}

}  // namespace

TEST_CASE("each scheme's exact law on the Gaussian target, and its weak order", "[stochastic][order]") {
  // The constant form does not vanish at t = 1: its solves stop at T = 0.9, without a rule
  // (a last-step rule drops the last step's noise, an O(h) change of the variance).
  for (diffusion_form f : all_forms) {
    const double T = f == diffusion_form::constant ? 0.9 : 1.0;
    const double exact_second = T * T * mu(0) * mu(0) + sigma2(T);
    for (const auto& m : {kinflow::sde_euler, kinflow::sde_heun}) {
      kinflow::stochastic_options o;
      o.diffusion = form(f, 1);
      o.noise_seed = 5;
      std::vector<double> h, err;
      for (std::size_t N : {8, 16, 32, 64, 128}) {
        const auto grid = kinflow::time_grid<double>::uniform(N, 0, T);
        const exact_law law = law_of(m, grid, o), reference = transcribed_law(m, grid, o);
        INFO(m.name << " " << to_string(f) << " N = " << N);
        CHECK(law.mean == Approx(reference.mean).epsilon(1e-10));
        CHECK(law.second == Approx(reference.second).epsilon(1e-10));
        CHECK(std::abs(law.mean - T * mu(0)) < 1e-12);  // the mean is exact: E x_t = tμ is linear
        h.push_back(1.0 / static_cast<double>(N));
        err.push_back(std::abs(law.second - exact_second));
      }
      const double slope = kinflow_test::convergence_slope(h, err);
      INFO(m.name << " " << to_string(f) << ": slope " << slope);
      // Euler–Maruyama's O(h) term of the second moment cancels on this target for sbdm and
      // increasing-decreasing (the transcription shows the same): there the slope is 2.
      const bool em_cancels = f == diffusion_form::sbdm || f == diffusion_form::increasing_decreasing;
      const double expected = m.scheme == kinflow::stochastic_scheme::heun || em_cancels ? 2.0 : 1.0;
      CHECK(slope == Approx(expected).margin(0.3));
    }
  }
  // renoise-euler with the churn η = √(κh) is Euler–Maruyama for g² = κ(1 − t)²: first
  // order; any fixed churn is its own law (here against the transcription).
  for (double kappa : {0.5, 2.0}) {
    std::vector<double> h, err;
    for (std::size_t N : {8, 16, 32, 64, 128}) {
      kinflow::stochastic_options o;
      o.churn = std::sqrt(kappa / static_cast<double>(N));
      const auto grid = kinflow::time_grid<double>::uniform(N);
      const exact_law law = law_of(kinflow::renoise_euler, grid, o), reference = transcribed_law(kinflow::renoise_euler, grid, o);
      CHECK(law.second == Approx(reference.second).epsilon(1e-10));
      h.push_back(1.0 / static_cast<double>(N));
      err.push_back(std::abs(law.second - mu(0) * mu(0) - s_target * s_target));
    }
    INFO("renoise-euler, kappa " << kappa);
    CHECK(kinflow_test::convergence_slope(h, err) == Approx(1.0).margin(0.3));
  }
  for (double churn : {0.0, 0.3, 1.0}) {
    kinflow::stochastic_options o;
    o.churn = churn;
    const auto grid = kinflow::time_grid<double>::cosine(20);
    const exact_law law = law_of(kinflow::renoise_euler, grid, o), reference = transcribed_law(kinflow::renoise_euler, grid, o);
    CHECK(law.second == Approx(reference.second).epsilon(1e-10));
  }
}

TEST_CASE("marginals and energies of every form and scheme on the Gaussian target, B = 20000", "[stochastic][marginals]") {
  // Fine steps: each scheme's exact law (transcribed) is within one standard error of
  // N(μ, s² I), so the check against the exact marginal is one of the sampler, not of its
  // bias. The energies' sample means against the exact expectations of the schemes' sums.
  const Eigen::Index B = 20000;
  field_type f = gaussian_field();
  struct setup {
    kinflow::stochastic_method method;
    std::size_t steps;
  };
  // `walked`: the grid the solve walks (`grid` mapped, with a last-step size).
  auto check = [&](const kinflow::stochastic_method& m, const kinflow::time_grid<double>& grid,
                   const kinflow::stochastic_options& o, const kinflow::time_grid<double>& walked,
                   const std::string& what) {
    INFO(m.name << " " << what);
    batch2 X = kinflow::standard_normal<double, 2>(2, B, 2024);
    const auto r = kinflow::integrate(f, m, grid, X, o);
    REQUIRE(r.all_success());
    const std::size_t N = walked.steps();
    CHECK(r.nfe(0) == static_cast<std::int64_t>(m.scheme == kinflow::stochastic_scheme::heun ? 2 * N - (o.last_step == last_step_rule::method ? 0 : 1) : N));
    const transcription tr = transcribe(m, walked, o);
    const moments mo = pooled(X, mu);
    CHECK(std::abs(static_cast<double>(tr.var) - s_target * s_target) < mo.var_se);  // bias below one SE
    CHECK(std::abs(mo.mean) < 5 * mo.mean_se);
    CHECK(std::abs(mo.var - s_target * s_target) < 5 * mo.var_se);
    for (const auto& [name, values, expected] :
         {std::tuple{"kpe", &r.kpe.total, tr.kpe}, std::tuple{"drift", &r.drift_energy.total, tr.drift},
          std::tuple{"control", &r.control_energy.total, tr.control}}) {
      const double mean = values->mean();
      const double se = std::sqrt((values->array() - mean).square().sum() / double(B - 1) / double(B));
      INFO(name << " energy: " << mean << " +- " << se << ", expected " << static_cast<double>(expected));
      CHECK(std::abs(mean - static_cast<double>(expected)) < 5 * se + 1e-12);
    }
    CHECK((r.kpe.early + r.kpe.late - r.kpe.total).cwiseAbs().maxCoeff() < 1e-12);
    CHECK((r.drift_energy.early + r.drift_energy.late - r.drift_energy.total).cwiseAbs().maxCoeff() < 1e-12);
    CHECK((r.control_energy.early + r.control_energy.late - r.control_energy.total).cwiseAbs().maxCoeff() < 1e-12);
  };
  for (diffusion_form fm : all_forms) {
    for (const setup& st : {setup{kinflow::sde_euler, 256}, setup{kinflow::sde_heun, 64}}) {
      kinflow::stochastic_options o;
      o.diffusion = form(fm, 1);
      o.noise_seed = 99;
      const auto grid = kinflow::time_grid<double>::uniform(st.steps);
      auto walked = grid;
      if (fm == diffusion_form::constant) {
        o.last_step = last_step_rule::denoise;  // "mean": w(1) ≠ 0 needs a rule
      } else if (fm == diffusion_form::increasing_decreasing) {
        o.last_step = last_step_rule::euler;  // the drift without noise
      } else if (fm == diffusion_form::sbdm) {
        // The denoiser jump from 1 − H: the grid mapped onto [0, 1 − H].
        o.last_step = last_step_rule::denoise;
        o.last_step_size = 0.01;
        std::vector<double> t(st.steps + 2);
        for (std::size_t i = 0; i <= st.steps; ++i) t[i] = 0.99 * double(i) / double(st.steps);
        t[st.steps + 1] = 1;
        walked = kinflow::time_grid<double>(t);
      }
      check(st.method, grid, o, walked, std::string(to_string(fm)));
    }
  }
  kinflow::stochastic_options o;
  o.churn = std::sqrt(1.0 / 1024);  // η² = κh: Euler–Maruyama of g² = κ(1 − t)², here κ = 1
  const auto grid = kinflow::time_grid<double>::uniform(1024);
  check(kinflow::renoise_euler, grid, o, grid, "churn sqrt(h)");
}

TEST_CASE("diffusion norm 0 is the ODE solve; churn 0 is Euler", "[stochastic][ode]") {
  field_type f = gaussian_field();
  const batch2 X0 = kinflow::standard_normal<double, 2>(2, 500, 8);
  const auto grid = kinflow::time_grid<double>::cosine(16);
  auto compare = [&](const kinflow::stochastic_method& m, const auto& tableau, kinflow::stochastic_options o) {
    INFO(m.name);
    batch2 X = X0, Y = X0, Z = X0;
    const auto ode = kinflow::integrate(f, tableau, grid, Y);
    const auto r = kinflow::integrate(f, m, grid, X, o);
    o.noise_seed = 12345;  // without noise, the seed changes nothing
    const auto r2 = kinflow::integrate(f, m, grid, Z, o);
    CHECK((X - Y).cwiseAbs().maxCoeff() < 1e-12);
    CHECK(X == Z);
    CHECK((r.kpe.total - ode.kpe.total).cwiseAbs().maxCoeff() < 1e-12);
    CHECK((r.kpe.early - ode.kpe.early).cwiseAbs().maxCoeff() < 1e-12);
    CHECK(r.nfe == ode.nfe);
    CHECK((r.drift_energy.total - r.kpe.total).cwiseAbs().maxCoeff() < 1e-12);
    CHECK(r.control_energy.total.cwiseAbs().maxCoeff() == 0);
    CHECK(r2.kpe.total == r.kpe.total);
  };
  for (diffusion_form fm : all_forms) {
    kinflow::stochastic_options o;
    o.diffusion = form(fm, 0);
    compare(kinflow::sde_euler, kinflow::euler, o);
    compare(kinflow::sde_heun, kinflow::heun, o);
  }
  kinflow::stochastic_options o;
  o.churn = 0;
  compare(kinflow::renoise_euler, kinflow::euler, o);
}

TEST_CASE("a sample's path is the same whatever the tiles, threads, batch order or shard", "[stochastic][reproducible]") {
  batch2 train = kinflow::standard_normal<double, 2>(2, 200, 4);
  kinflow::empirical_options<double> one, two;
  one.threads = 1;
  two.threads = 2;
  const kinflow::empirical_field<double, 2> f1(train, one), f2(train, two);
  const Eigen::Index B = 300;
  const batch2 X0 = kinflow::standard_normal<double, 2>(2, B, 5);
  const auto grid = kinflow::time_grid<double>::uniform(12);
  for (const auto& m : {kinflow::sde_euler, kinflow::sde_heun, kinflow::renoise_euler}) {
    INFO(m.name);
    kinflow::stochastic_options o;
    o.diffusion = form(diffusion_form::sigma, 0.7);
    o.last_step = last_step_rule::denoise;
    o.noise_seed = 77;
    o.churn = 0.5;
    o.tile_columns = B;
    batch2 X = X0;
    const auto base = kinflow::integrate(f1, m, grid, X, o);
    auto same = [&](const batch2& Y, const auto& r, Eigen::Index first, Eigen::Index n) {
      CHECK(Y == X.middleCols(first, n));
      CHECK(r.kpe.total == base.kpe.total.segment(first, n));
      CHECK(r.drift_energy.early == base.drift_energy.early.segment(first, n));
      CHECK(r.control_energy.late == base.control_energy.late.segment(first, n));
    };
    for (Eigen::Index tile : {1, 7, 64, 0}) {
      INFO("tile " << tile);
      kinflow::stochastic_options ot = o;
      ot.tile_columns = tile;
      batch2 Y = X0;
      same(Y, kinflow::integrate(f1, m, grid, Y, ot), 0, B);
      Y = X0;
      same(Y, kinflow::integrate(f2, m, grid, Y, ot), 0, B);  // two threads
    }
    {  // an observer walks the whole batch at once
      batch2 Y = X0;
      std::size_t steps = 0;
      const auto r = kinflow::integrate(f2, m, grid, Y, o, step_log{[&](const kinflow::stochastic_step_view<double, 2>& v) {
        ++steps;
        if (v.rule) {
          CHECK(v.noise.cols() == 0);
        } else {  // the step's noise is the stream's
          CHECK(v.noise.col(17) == kinflow::sde_noise(77, 17, static_cast<std::uint32_t>(v.step), 2));
        }
      }});
      CHECK(steps == grid.steps());
      same(Y, r, 0, B);
    }
    {  // reversed batch order, each column keeping its stream id
      std::vector<std::uint64_t> ids(static_cast<std::size_t>(B));
      batch2 Y(2, B);
      for (Eigen::Index i = 0; i < B; ++i) {
        ids[static_cast<std::size_t>(i)] = static_cast<std::uint64_t>(B - 1 - i);
        Y.col(i) = X0.col(B - 1 - i);
      }
      kinflow::stochastic_options op = o;
      op.sample_ids = ids;
      const auto r = kinflow::integrate(f1, m, grid, Y, op);
      for (Eigen::Index i = 0; i < B; ++i) {
        CHECK(Y.col(i) == X.col(B - 1 - i));
        CHECK(r.kpe.total(i) == base.kpe.total(B - 1 - i));
      }
    }
    {  // a shard: columns [100, 300) with first_sample = 100
      kinflow::stochastic_options os = o;
      os.first_sample = 100;
      batch2 Y = X0.middleCols(100, 200);
      same(Y, kinflow::integrate(f1, m, grid, Y, os), 100, 200);
    }
  }
}

TEST_CASE("the empirical field's own score and the conversion from its velocity agree", "[stochastic][score]") {
  batch2 train = kinflow::standard_normal<double, 2>(2, 50, 6);
  const kinflow::empirical_field<double, 2> f(train);
  const batch2 X0 = kinflow::standard_normal<double, 2>(2, 200, 7);
  const auto grid = kinflow::time_grid<double>::uniform(25);
  for (const auto& m : {kinflow::sde_euler, kinflow::sde_heun}) {
    for (diffusion_form fm : {diffusion_form::sbdm, diffusion_form::linear, diffusion_form::increasing_decreasing}) {
      INFO(m.name << " " << to_string(fm));
      kinflow::stochastic_options o;
      o.diffusion = form(fm, 1);
      o.last_step = last_step_rule::denoise;
      batch2 X = X0, Y = X0;
      const auto converted = kinflow::integrate(f, m, grid, Y, o);
      o.score = kinflow::score_source::field;
      const auto own = kinflow::integrate(f, m, grid, X, o);
      CHECK(own.score_from_field);
      CHECK_FALSE(converted.score_from_field);
      CHECK(own.nfe(0) > converted.nfe(0));  // the score's passes are evaluations
      CHECK((X - Y).cwiseAbs().maxCoeff() < 1e-9);
      CHECK((own.control_energy.total - converted.control_energy.total).cwiseAbs().maxCoeff() <
            1e-9 * (1 + own.control_energy.total.cwiseAbs().maxCoeff()));
      CHECK((own.drift_energy.total - converted.drift_energy.total).cwiseAbs().maxCoeff() <
            1e-9 * (1 + own.drift_energy.total.cwiseAbs().maxCoeff()));
    }
  }
  // The mean rule lands on the posterior mean of the last step's start.
  batch2 X = X0, M;
  kinflow::stochastic_options o;
  o.diffusion = form(diffusion_form::linear, 1);
  o.last_step = last_step_rule::denoise;
  std::vector<double> times;
  batch2 before;
  kinflow::integrate(f, kinflow::sde_euler, grid, X, o, step_log{[&](const kinflow::stochastic_step_view<double, 2>& v) {
    if (v.step + 2 == grid.steps()) before = v.x;
  }});
  f.posterior_mean(grid[grid.steps() - 1], before, M);
  CHECK((X - M).cwiseAbs().maxCoeff() < 1e-12);
}

TEST_CASE("last-step rules and the last-step size", "[stochastic][last-step]") {
  field_type f = gaussian_field();
  const batch2 X0 = kinflow::standard_normal<double, 2>(2, 40, 9);
  kinflow::stochastic_options o;
  o.diffusion = form(diffusion_form::sigma, 1);
  o.noise_seed = 3;
  const kinflow::time_grid<double> grid({0.0, 0.25, 0.5, 1.0}), head({0.0, 0.25, 0.5});
  for (const auto& m : {kinflow::sde_euler, kinflow::sde_heun, kinflow::renoise_euler}) {
    INFO(m.name);
    batch2 Y = X0, V;
    o.last_step = last_step_rule::method;
    kinflow::integrate(f, m, head, Y, o);  // the steps before the last
    kinflow::evaluate(f, 0.5, Y, V);
    batch2 X = X0;
    o.last_step = last_step_rule::denoise;
    auto r = kinflow::integrate(f, m, grid, X, o);
    CHECK(X == Y + 0.5 * V);  // x + (1 − t) v
    CHECK(r.nfe(0) == (m.scheme == kinflow::stochastic_scheme::heun ? 5 : 3));
    X = X0;
    o.last_step = last_step_rule::euler;
    kinflow::integrate(f, m, grid, X, o);
    // the drift without noise: x + h (v + c (t v − x)), c = 1 for sigma; renoise's is v
    const double c = m.scheme == kinflow::stochastic_scheme::renoise_euler ? 0.0 : 1.0;
    CHECK((X - (Y + 0.5 * (V + c * (0.5 * V - Y)))).cwiseAbs().maxCoeff() < 1e-14);
  }
  // A last-step size maps the grid onto [0, 1 − H] and adds the last step.
  o.last_step = last_step_rule::denoise;
  o.last_step_size = 0.2;
  std::vector<double> times;
  batch2 X = X0;
  const auto r = kinflow::integrate(f, kinflow::sde_euler, kinflow::time_grid<double>::uniform(4), X, o,
                                    step_log{[&](const kinflow::stochastic_step_view<double, 2>& v) { times.push_back(v.t + v.dt); }});
  CHECK(r.nfe(0) == 5);
  REQUIRE(times.size() == 5);
  CHECK(times[0] == Approx(0.2));
  CHECK(times[3] == Approx(0.8));
  CHECK(times[4] == 1);
}

TEST_CASE("stochastic bad input", "[stochastic][errors]") {
  using kinflow_test::contains;
  field_type f = gaussian_field();
  batch2 X = kinflow::standard_normal<double, 2>(2, 4, 1);
  const auto grid = kinflow::time_grid<double>::uniform(8);
  auto solve = [&](kinflow::stochastic_options o, const kinflow::time_grid<double>& g) {
    batch2 Y = X;
    (void)kinflow::integrate(f, kinflow::sde_euler, g, Y, o);
  };
  kinflow::stochastic_options o;
  o.likelihood.enabled = true;
  CHECK_THROWS_WITH(solve(o, grid), contains("likelihood = on") && contains("not defined for a stochastic solve"));
  o = {};
  o.diffusion.norm = -1;
  CHECK_THROWS_WITH(solve(o, grid), contains("diffusion_norm = -1"));
  o = {};
  o.churn = 1.5;
  CHECK_THROWS_WITH(solve(o, grid), contains("churn = 1.5") && contains("[0, 1]"));
  for (double H : {0.0, 1.0, -0.1, 1.5}) {
    o = {};
    o.last_step = last_step_rule::denoise;
    o.last_step_size = H;
    CHECK_THROWS_WITH(solve(o, grid), contains("last_step_size = " + kinflow::detail::to_text(H)) && contains("(0, 1)"));
  }
  o = {};
  o.last_step_size = 0.1;
  CHECK_THROWS_WITH(solve(o, grid), contains("last_step_size = 0.1") && contains("last_step = none"));
  o = {};
  o.diffusion = form(diffusion_form::constant, 1);
  CHECK_THROWS_WITH(solve(o, grid), contains("last_step = none") && contains("constant:0.5"));
  CHECK_NOTHROW(solve(o, kinflow::time_grid<double>::uniform(8, 0, 0.9)));  // ends before t = 1
  o = {};
  o.last_step = last_step_rule::denoise;
  CHECK_THROWS_WITH(solve(o, kinflow::time_grid<double>::uniform(8, 0, 0.9)), contains("last_step = mean"));
  CHECK_THROWS_WITH(solve({}, grid.reversed()), contains("forward grid"));
  CHECK_THROWS_WITH(solve({}, kinflow::time_grid<double>::uniform(8, 0, 1.5)), contains("times in [0, 1]"));
  o = {};
  o.score = kinflow::score_source::field;  // the mixture field has no score of its own
  CHECK_THROWS_WITH(solve(o, grid), contains("score = field"));
  const std::vector<std::uint64_t> ids(3);
  o = {};
  o.sample_ids = ids;
  CHECK_THROWS_WITH(solve(o, grid), contains("sample_ids = 3"));
}

TEST_CASE("a mixture target: the SDE's samples and the ODE's agree to the two-sample floor of sliced W2", "[stochastic][mixture]") {
  // Four Gaussians (std 0.3) at the corners of a square. Null distribution: sliced W2²
  // between the exact ODE's samples from one start and from K other independent starts
  // (Heun, 100 steps: its error is far below the floor). The SDE's samples from yet another
  // start must fall within mean + 5 std of it: if the SDE's law is the ODE's, its distance
  // is one more draw from that distribution (Chebyshev bounds the false alarm at 4 %, a
  // normal approximation at 3e-7). (Its power is limited: renoise-euler with a fixed full
  // churn, whose per-coordinate variance stays about 1 % short of p₁'s at any step count
  // here, passes it too.)
  batch2 means(2, 4);
  means << 2, -2, 2, -2,  //
      2, 2, -2, -2;
  const kinflow::gaussian_mixture_field<double, 2> f(Eigen::Vector4d::Constant(0.25), means, Eigen::Vector4d::Constant(0.3));
  const Eigen::Index B = 4000;
  kinflow::sliced_wasserstein_options so;
  so.projections = 64;
  so.threads = 1;
  auto ode = [&](std::uint64_t seed) {
    batch2 X = kinflow::standard_normal<double, 2>(2, B, seed);
    kinflow::fixed_step_options o;
    o.kpe.enabled = false;
    (void)kinflow::integrate(f, kinflow::heun, kinflow::time_grid<double>::uniform(100), X, o);
    return X;
  };
  const batch2 reference = ode(100);
  std::vector<double> null;
  for (std::uint64_t k = 1; k <= 6; ++k) null.push_back(std::pow(kinflow::sliced_wasserstein2(reference, ode(100 + k), so), 2));
  const double mean = std::accumulate(null.begin(), null.end(), 0.0) / double(null.size());
  double var = 0;
  for (double v : null) var += (v - mean) * (v - mean);
  const double bound = mean + 5 * std::sqrt(var / double(null.size() - 1));
  auto sde = [&](const kinflow::stochastic_method& m, kinflow::stochastic_options o) {
    batch2 X = kinflow::standard_normal<double, 2>(2, B, 200);
    o.noise_seed = 9;
    o.kpe.enabled = false;
    (void)kinflow::integrate(f, m, kinflow::time_grid<double>::uniform(100), X, o);
    return std::pow(kinflow::sliced_wasserstein2(reference, X, so), 2);
  };
  for (diffusion_form fm : {diffusion_form::sbdm, diffusion_form::sigma, diffusion_form::increasing_decreasing}) {
    kinflow::stochastic_options o;
    o.diffusion = form(fm, 1);
    o.last_step = last_step_rule::denoise;
    const double sw2 = sde(kinflow::sde_heun, o);
    INFO(to_string(fm) << ": SW2² " << sw2 << ", null mean " << mean << ", bound " << bound);
    CHECK(sw2 < bound);
  }
}
