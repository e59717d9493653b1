#pragma once
// Independent references for the closed-form field tests: the formulas of docs/math.md §2 and
// §3 written out plainly, one sample at a time, in long double, with nothing shared with
// the library's implementation (no blocking, no expansion of the distances, no threads).
// Also a small deterministic random source (the same numbers on every standard library) and
// the test inputs the field tests share (samples about a training set, random mixtures).

#include <Eigen/Core>
#include <kinflow/core/batch.hpp>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>
#include <vector>

namespace kinflow_test {

using ld = long double;
using ld_matrix = Eigen::Matrix<ld, Eigen::Dynamic, Eigen::Dynamic>;
using ld_vector = Eigen::Matrix<ld, Eigen::Dynamic, 1>;

/// SplitMix64 with Box–Muller normals: reproducible across compilers and libraries.
class test_rng {
public:
  explicit test_rng(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  /// Uniform in (0, 1).
  double uniform() { return (static_cast<double>(next() >> 11) + 0.5) * 0x1.0p-53; }
  /// Uniform in (a, b).
  double uniform(double a, double b) { return a + (b - a) * uniform(); }
  double normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    const double u = uniform(), v = uniform();
    const double r = std::sqrt(-2.0 * std::log(u));
    spare_ = r * std::sin(2.0 * std::numbers::pi * v);
    has_spare_ = true;
    return r * std::cos(2.0 * std::numbers::pi * v);
  }
  template <class Matrix>
  void fill_normal(Matrix& m, double scale = 1.0) {
    for (Eigen::Index j = 0; j < m.cols(); ++j)
      for (Eigen::Index i = 0; i < m.rows(); ++i)
        m(i, j) = static_cast<typename Matrix::Scalar>(scale * normal());
  }

private:
  std::uint64_t state_;
  double spare_ = 0;
  bool has_spare_ = false;
};

/// Everything docs/math.md §2 defines, for one sample x, in long double. `sigma` is the noise
/// level used (already clamped), `c = 1 - σ_min`.
struct empirical_values {
  ld_vector weights, mean, velocity, score;
  ld log_density = 0, divergence = 0;
  ld weighted_abs = 0;  // Σ_i w_i ‖y_i‖∞: the scale of the rounding of Σ_i w_i y_i
  ld logit_abs = 0;     // Σ_i w_i |L_i|: the scale of the rounding of the logits
  ld spread = 0;        // Σ_i w_i ‖y_i - m‖∞
  ld trace = 0;         // Σ_i w_i ‖y_i - m‖²
};

// At t ≥ 1 with σ_min = 0 (c = 1) the documented velocity is the posterior mean m (the
// conditional expectation E[x1 - x0 | x_1 = x]) and the divergence that of m.
inline empirical_values empirical_reference(const ld_matrix& Y, const ld_vector& x, ld t, ld sigma,
                                            ld c = 1) {
  const bool data_time = c == 1 && t >= 1;
  const Eigen::Index d = Y.rows(), n = Y.cols();
  empirical_values r;
  ld_vector logit(n);
  for (Eigen::Index i = 0; i < n; ++i) {
    ld q = 0;
    for (Eigen::Index k = 0; k < d; ++k) {
      const ld diff = x(k) - t * Y(k, i);
      q += diff * diff;
    }
    logit(i) = -q / (2 * sigma * sigma);
  }
  const ld mx = logit.maxCoeff();
  ld z = 0;
  r.weights.resize(n);
  for (Eigen::Index i = 0; i < n; ++i) z += (r.weights(i) = std::exp(logit(i) - mx));
  r.weights /= z;
  r.mean = ld_vector::Zero(d);
  for (Eigen::Index i = 0; i < n; ++i) {
    r.mean += r.weights(i) * Y.col(i);
    r.weighted_abs += r.weights(i) * Y.col(i).cwiseAbs().maxCoeff();
  }
  ld trace = 0;
  for (Eigen::Index i = 0; i < n; ++i) {
    trace += r.weights(i) * (Y.col(i) - r.mean).squaredNorm();
    r.spread += r.weights(i) * (Y.col(i) - r.mean).cwiseAbs().maxCoeff();
    r.logit_abs += r.weights(i) * std::abs(logit(i));
  }
  r.trace = trace;
  r.velocity = data_time ? ld_vector(r.mean) : ld_vector((r.mean - c * x) / sigma);
  r.score = (t * r.mean - x) / (sigma * sigma);
  r.log_density = mx + std::log(z) - std::log(static_cast<ld>(n)) -
                  static_cast<ld>(d) * std::log(sigma) -
                  0.5L * static_cast<ld>(d) * std::log(2 * std::numbers::pi_v<ld>);
  r.divergence = data_time ? t / (sigma * sigma) * trace
                            : t / (sigma * sigma * sigma) * trace - c * static_cast<ld>(d) / sigma;
  return r;
}

/// docs/math.md §3 for one sample: velocity, component posterior and log density.
struct mixture_values {
  ld_vector weights, velocity;
  ld log_density = 0;
  ld logit_abs = 0;  // Σ_k w_k |L_k|
  ld v_spread = 0;   // Σ_k w_k ‖v_k - v‖∞
  ld v_abs = 0;      // Σ_k w_k ‖v_k‖∞
};

inline mixture_values mixture_reference(const ld_vector& pi, const ld_matrix& mu, const ld_vector& s,
                                        const ld_vector& x, ld t) {
  const Eigen::Index d = mu.rows(), K = mu.cols();
  ld_vector logit(K), var(K);
  for (Eigen::Index k = 0; k < K; ++k) {
    var(k) = (1 - t) * (1 - t) + t * t * s(k) * s(k);
    ld q = 0;
    for (Eigen::Index i = 0; i < d; ++i) {
      const ld diff = x(i) - t * mu(i, k);
      q += diff * diff;
    }
    logit(k) = std::log(pi(k)) - q / (2 * var(k)) - 0.5L * static_cast<ld>(d) * std::log(var(k));
  }
  const ld mx = logit.maxCoeff();
  mixture_values r;
  r.weights.resize(K);
  ld z = 0;
  for (Eigen::Index k = 0; k < K; ++k) z += (r.weights(k) = std::exp(logit(k) - mx));
  r.weights /= z;
  r.velocity = ld_vector::Zero(d);
  ld_matrix vk(d, K);
  for (Eigen::Index k = 0; k < K; ++k) {
    const ld g = (t * s(k) * s(k) - (1 - t)) / var(k);
    vk.col(k) = mu.col(k) + g * (x - t * mu.col(k));
    r.velocity += r.weights(k) * vk.col(k);
  }
  for (Eigen::Index k = 0; k < K; ++k) {
    r.logit_abs += r.weights(k) * std::abs(logit(k));
    r.v_spread += r.weights(k) * (vk.col(k) - r.velocity).cwiseAbs().maxCoeff();
    r.v_abs += r.weights(k) * vk.col(k).cwiseAbs().maxCoeff();
  }
  r.log_density = mx + std::log(z) - 0.5L * static_cast<ld>(d) * std::log(2 * std::numbers::pi_v<ld>);
  return r;
}

/// Relative perturbation by at most `rel` of every entry (deterministic from the rng).
inline ld_matrix perturbed(const ld_matrix& m, ld rel, test_rng& rng) {
  ld_matrix p = m;
  for (Eigen::Index j = 0; j < m.cols(); ++j)
    for (Eigen::Index i = 0; i < m.rows(); ++i) p(i, j) *= 1 + rel * static_cast<ld>(rng.uniform(-1, 1));
  return p;
}

// Largest |a_i - b_i|.
template <class A, class B>
ld max_abs_diff(const A& a, const B& b) {
  return (a.template cast<ld>() - b.template cast<ld>()).cwiseAbs().maxCoeff();
}

// A column vector of Scalar.
template <class Scalar>
using vec = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;

// Samples at time t: half on the probability path (t y_k + σ z), the rest spread wider,
// the last one far from all data.
template <class Batch>
Batch make_samples(const Batch& Y, Eigen::Index B, double t, double sigma, test_rng& rng) {
  const Eigen::Index d = Y.rows();
  Batch X(d, B);
  for (Eigen::Index j = 0; j < B; ++j) {
    const auto k = static_cast<Eigen::Index>(rng.next() % static_cast<std::uint64_t>(Y.cols()));
    for (Eigen::Index i = 0; i < d; ++i) {
      const double z = rng.normal();
      const double v = j < B / 2 ? t * static_cast<double>(Y(i, k)) + sigma * z : 2.0 * z;
      X(i, j) = static_cast<typename Batch::Scalar>(v);
    }
  }
  X.col(B - 1).setConstant(typename Batch::Scalar(30));
  return X;
}

// A random mixture: K components in dimension d, weights summing to one.
template <class Scalar, int Dim>
struct random_mixture {
  vec<Scalar> pi, s;
  kinflow::batch<Scalar, Dim> mu;
  random_mixture(Eigen::Index d, Eigen::Index K, bool equal_stds, bool equal_weights, test_rng& rng)
      : pi(K), s(K), mu(d, K) {
    rng.fill_normal(mu, 2.0);
    double total = 0;
    std::vector<double> w(static_cast<std::size_t>(K));
    for (auto& x : w) total += (x = equal_weights ? 1.0 : rng.uniform(0.1, 1.0));
    for (Eigen::Index k = 0; k < K; ++k) {
      pi(k) = static_cast<Scalar>(w[static_cast<std::size_t>(k)] / total);
      s(k) = static_cast<Scalar>(equal_stds ? 0.3 : rng.uniform(0.05, 0.8));
    }
  }
};

}  // namespace kinflow_test
