#pragma once
/// @file
/// @brief Private: the step loop of the stochastic solves (kinflow/integrators/stochastic.hpp),
/// compiled once per scalar type and dimension whatever the field and the method, and the
/// sums of the stochastic path's drift and control energies.

#include <Eigen/Core>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "kinflow/core/batch.hpp"
#include "kinflow/detail/batch_callable.hpp"
#include "kinflow/detail/counter_rng.hpp"
#include "kinflow/integrators/detail/solve_extras.hpp"
#include "kinflow/integrators/diffusion.hpp"
#include "kinflow/integrators/fixed_grid.hpp"
#include "kinflow/integrators/stochastic_options.hpp"
#include "kinflow/schedules/time_grid.hpp"

namespace kinflow::detail {

/// The drift and control energies of every sample, split early/late at τ.
template <class Scalar>
class path_energy_sums {
public:
  path_energy_sums(bool enabled, double tau, Eigen::Index samples) : enabled_(enabled), tau_(tau) {
    if (!enabled) return;
    for (auto* v : {&drift_early_, &drift_late_, &control_early_, &control_late_}) v->setZero(samples);
  }
  [[nodiscard]] bool enabled() const noexcept { return enabled_; }
  /// Adds one step's increments over `[t, t1]` to the columns from `first`.
  void add(Scalar t, Scalar t1, Eigen::Index first, const per_sample<Scalar>& drift, const per_sample<Scalar>& control) {
    const bool early = kpe_step_is_early(t, t1, tau_);
    (early ? drift_early_ : drift_late_).segment(first, drift.size()) += drift;
    (early ? control_early_ : control_late_).segment(first, control.size()) += control;
  }
  /// Moves the energies into the result; a sample whose energies are not finite gets
  /// solve_status::non_finite.
  void finish(stochastic_result<Scalar>& r) {
    if (!enabled_) return;
    auto fill = [&](kinetic_energy<Scalar>& e, per_sample<Scalar>& early, per_sample<Scalar>& late) {
      e.tau = tau_;
      e.total = early + late;
      e.early = std::move(early);
      e.late = std::move(late);
    };
    fill(r.drift_energy, drift_early_, drift_late_);
    fill(r.control_energy, control_early_, control_late_);
    for (Eigen::Index i = 0; i < r.drift_energy.total.size(); ++i)
      if (!std::isfinite(r.drift_energy.total(i)) || !std::isfinite(r.control_energy.total(i)))
        r.status[static_cast<std::size_t>(i)] = solve_status::non_finite;
  }

private:
  bool enabled_;
  double tau_;
  per_sample<Scalar> drift_early_, drift_late_, control_early_, control_late_;
};

/// The SDE's drift at one point: `D = V + w ∇log p_t`, with the integrands of the drift
/// energy `Ed = ½‖D‖²` and of the control energy `Ec = ½‖½ g ∇log p_t‖² = ½ w ‖∇log p_t‖²`.
/// `off`: a step without diffusion (`D = V`).
template <class Scalar, int Dim>
void sde_drift(const batched_velocity_ref<Scalar, Dim>* score, const diffusion_coefficient& dc, bool off, Scalar t,
               const batch<Scalar, Dim>& X, const batch<Scalar, Dim>& V, batch<Scalar, Dim>& D,
               batch<Scalar, Dim>& S, per_sample<Scalar>& Ed, per_sample<Scalar>& Ec, bool energies) {
  const Eigen::Index n = X.cols();
  const double td = static_cast<double>(t);
  const double c = off ? 0.0 : dc.score_weight(td);
  if (c == 0) {
    D = V;
    if (energies) Ec.setZero(n);
  } else if (score != nullptr) {  // the field's own score, weighted by w
    const auto w = static_cast<Scalar>(dc.w(td));
    (*score)(t, X, S);
    D = V + w * S;
    if (energies) Ec.noalias() = (Scalar(0.5) * w) * S.colwise().squaredNorm().transpose();
  } else {  // w ∇log p_t = c (t v − x), ½ w ‖∇log p_t‖² = ½ c ‖t v − x‖²/(1 − t)
    S = t * V - X;
    D = V + static_cast<Scalar>(c) * S;
    if (energies) {
      if (td < 1)
        Ec.noalias() = static_cast<Scalar>(0.5 * c / (1 - td)) * S.colwise().squaredNorm().transpose();
      else
        Ec.setZero(n);  // the limit for an exact field, whose t v − x = (1 − t) ∇log p_t vanishes
    }
  }
  if (energies) Ed.noalias() = Scalar(0.5) * D.colwise().squaredNorm().transpose();
}

/// Work buffers of the stochastic step loop for one tile.
template <class Scalar, int Dim>
struct stochastic_work {
  batch<Scalar, Dim> V, D, S, Z, Xp, Vp, Dp;
  per_sample<Scalar> Ed, Ec, Ed1, Ec1;
  Eigen::ArrayXd uniforms;  // the noise's uniforms
  batch<Scalar, Dim> none;  // what an observer sees of a step without noise (empty)
};

/// The stochastic step loop (see kinflow/integrators/stochastic.hpp for the updates),
/// compiled once per scalar type and dimension whatever the field and the observer.
template <class Scalar, int Dim, class GridScalar, class Sums>
void stochastic_grid_steps(const batched_velocity_ref<Scalar, Dim>& eval, const batched_velocity_ref<Scalar, Dim>* score,
                           const stochastic_method& method, const time_grid<GridScalar>& grid, batch<Scalar, Dim>& X,
                           const stochastic_options& options, Eigen::Index cols, Sums& core,
                           path_energy_sums<Scalar>& energies,
                           function_ref<void(const stochastic_step_view<Scalar, Dim>&)> observer) {
  using batch_type = batch<Scalar, Dim>;
  const Eigen::Index d = X.rows(), B = X.cols();
  const std::size_t N = grid.steps();
  const bool rule = options.last_step != last_step_rule::method;
  const bool with_energies = energies.enabled();
  const diffusion_coefficient& dc = options.diffusion;
  constexpr std::array<long double, 2> trapezoid{0.5L, 0.5L};
  auto& channels = core.channels;
  stochastic_work<Scalar, Dim> w;

  walk_tiles(X, cols, bool(observer), [&](batch_type& Xb, Eigen::Index first) {
    const Eigen::Index n = Xb.cols();
    w.V.resize(d, n);
    // The channels' integrand at point j of a step of h: weight 1 for a one-point step,
    // the trapezoid's (or left Riemann's) for sde-heun's two points.
    auto channel_point = [&](std::size_t j, bool two_points, Scalar t, const batch_type& Xj, const batch_type& Vj,
                             Scalar h) {
      for_each_in(channels, [&](auto& c) {
        if (!c.enabled) return;
        if (j == 0) c.step.start(n, false);
        const long double b = two_points ? c.weight(trapezoid, j) : 1.0L;
        if (b == 0) return;
        c.evaluate(t, Xj, Vj);
        if (first == 0) core.extra_nfe += c.cost;
        c.accumulate(b, 0.0L, h, std::abs(h));
      });
    };
    bool noisy = false;  // this step drew noise (into w.Z)
    auto noise = [&](std::size_t step) {
      noisy = true;
      w.Z.resize(d, n);
      counter_normals(
          options.noise_seed,
          [&](Eigen::Index m) {
            const auto i = first + m;
            return options.sample_ids.empty() ? options.first_sample + static_cast<std::uint64_t>(i)
                                              : options.sample_ids[static_cast<std::size_t>(i)];
          },
          static_cast<std::uint32_t>(step), w.Z.data(), d, n, w.uniforms);
    };

    for (std::size_t step = 0; step < N; ++step) {
      const auto t = static_cast<Scalar>(grid[step]);
      const auto t1 = static_cast<Scalar>(grid[step + 1]);
      const Scalar h = t1 - t, habs = std::abs(h);
      const bool last_rule = rule && step + 1 == N;
      // A diffusion infinite at the step's start (sbdm at t = 0): no diffusion on this step.
      const bool off = !std::isfinite(dc.w(static_cast<double>(t)));
      const bool heun = method.scheme == stochastic_scheme::heun && !last_rule;
      noisy = false;
      eval(t, Xb, w.V);
      channel_point(0, heun, t, Xb, w.V, h);
      if (last_rule) {
        if (options.last_step == last_step_rule::denoise || method.scheme == stochastic_scheme::renoise_euler) {
          // The denoiser jump x + (1 − t) v; renoise-euler's euler rule is its step with
          // η = 0, the Euler step x + h v (with t' = 1 the two are one).
          if (with_energies) {
            w.Ed.noalias() = (Scalar(0.5) * habs) * w.V.colwise().squaredNorm().transpose();
            w.Ec.setZero(n);
          }
          Xb += (options.last_step == last_step_rule::denoise ? Scalar(1) - t : h) * w.V;
        } else {  // euler: the drift without noise
          sde_drift(score, dc, off, t, Xb, w.V, w.D, w.S, w.Ed, w.Ec, with_energies);
          if (with_energies) {
            w.Ed *= habs;
            w.Ec *= habs;
          }
          Xb += h * w.D;
        }
      } else if (method.scheme == stochastic_scheme::renoise_euler) {
        noise(step);
        const Scalar eta = static_cast<Scalar>(options.churn);
        const Scalar a = std::sqrt(Scalar(1) - eta * eta);
        w.Xp = Xb + (Scalar(1) - t) * w.V;  // x̂₁
        w.S = Xb - t * w.V;                // x̂₀
        if (with_energies) {
          // As an Euler–Maruyama step: x' = x + h b̄ + (1 − t')η ξ, b̄ = v − (1 − t')(1 − a) x̂₀/h;
          // the control's energy is the Kullback–Leibler divergence of the step's Gaussian
          // kernel from the one without the x̂₀ term, ½ ((1 − a)/η)² ‖x̂₀‖².
          const Scalar k = (Scalar(1) - t1) * (Scalar(1) - a) / h;
          w.D = w.V - k * w.S;
          w.Ed.noalias() = (Scalar(0.5) * habs) * w.D.colwise().squaredNorm().transpose();
          const Scalar r = eta > 0 ? (Scalar(1) - a) / eta : Scalar(0);
          w.Ec.noalias() = (Scalar(0.5) * r * r) * w.S.colwise().squaredNorm().transpose();
        }
        Xb = t1 * w.Xp + (Scalar(1) - t1) * (a * w.S + eta * w.Z);
      } else if (method.scheme == stochastic_scheme::euler_maruyama) {
        sde_drift(score, dc, off, t, Xb, w.V, w.D, w.S, w.Ed, w.Ec, with_energies);
        if (with_energies) {
          w.Ed *= habs;
          w.Ec *= habs;
        }
        const double g = off ? 0.0 : dc.g(static_cast<double>(t));
        if (g == 0) {
          Xb += h * w.D;
        } else {
          noise(step);
          Xb += h * w.D + static_cast<Scalar>(g * std::sqrt(static_cast<double>(h))) * w.Z;
        }
      } else {  // heun
        sde_drift(score, dc, off, t, Xb, w.V, w.D, w.S, w.Ed, w.Ec, with_energies);
        const double g0 = off ? 0.0 : dc.g(static_cast<double>(t));
        const double g1 = off ? 0.0 : dc.g(static_cast<double>(t1));
        const double sqrt_h = std::sqrt(static_cast<double>(h));
        w.Xp = Xb + h * w.D;
        if (g0 != 0 || g1 != 0) {
          noise(step);
          if (g0 != 0) w.Xp += static_cast<Scalar>(g0 * sqrt_h) * w.Z;
        }
        w.Vp.resize(d, n);
        eval(t1, w.Xp, w.Vp);
        channel_point(1, true, t1, w.Xp, w.Vp, h);
        sde_drift(score, dc, off, t1, w.Xp, w.Vp, w.Dp, w.S, w.Ed1, w.Ec1, with_energies);
        if (with_energies) {
          w.Ed = (Scalar(0.5) * habs) * (w.Ed + w.Ed1);
          w.Ec = (Scalar(0.5) * habs) * (w.Ec + w.Ec1);
        }
        Xb += (Scalar(0.5) * h) * (w.D + w.Dp);
        if (noisy) Xb += static_cast<Scalar>(0.5 * (g0 + g1) * sqrt_h) * w.Z;
      }
      commit_step(core.kpe, channels, step, t, t1, first, n);
      if (with_energies) energies.add(t, t1, first, w.Ed, w.Ec);
      if (observer) observer(stochastic_step_view<Scalar, Dim>{step, t, h, X, w.V, noisy ? w.Z : w.none, method, last_rule});
      report_tile_progress(options.progress, first, n, step, N, B);
    }
  });
}

}  // namespace kinflow::detail
