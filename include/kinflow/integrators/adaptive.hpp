#pragma once
/// @file
/// @brief Adaptive embedded Runge–Kutta integration (Dormand–Prince 5(4) by default) with
/// one step size, status and counter set per sample.
///
/// Each sample keeps its own time, step size and counters: a hard sample never shrinks
/// an easy sample's steps. Every round, all unfinished samples attempt one step of their
/// own size; the field is called once per stage on the batch of unfinished samples (with
/// one time per column when the field offers `velocity_at_times`, see concepts.hpp,
/// and column by column otherwise).
///
/// Error control (per sample i, over its d coordinates):
///     err_i = sqrt( mean_r ( e_r / (atol + rtol·max(|x_r|, |x̃_r|)) )² )
/// with `e = h Σ (b_j - b̂_j) k_j`; the step is accepted when `err_i <= 1`. The next step
/// is `h·clamp(safety·err^(-1/(q̂+1)), factor_min, factor_max)` (q̂ the embedded order),
/// capped at 1 after a rejection and at `dt_max`. The first step follows Hairer, Nørsett
/// & Wanner, Solving ODEs I, §II.4 (one extra evaluation per sample).
///
/// Failure is a per-sample solve_status, never an exception mid-solve.

#include <Eigen/Core>
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "kinflow/core/batch.hpp"
#include "kinflow/core/concepts.hpp"
#include "kinflow/core/errors.hpp"
#include "kinflow/core/field_evaluator.hpp"
#include "kinflow/detail/rk_combine.hpp"
#include "kinflow/energy/kpe.hpp"
#include "kinflow/integrators/explicit_rk.hpp"
#include "kinflow/integrators/result.hpp"
#include "kinflow/integrators/tableau.hpp"

namespace kinflow {

/// Options of adaptive integration. Defaults follow the reference sampler's RK45 path.
struct adaptive_options {
  double rtol = 1e-5;  ///< relative tolerance, > 0
  double atol = 1e-5;  ///< absolute tolerance, >= 0
  /// Smallest step; a sample whose step falls below it stops with dt_underflow.
  /// 0 means automatic: 16 ulps of the current time.
  double dt_min = 0;
  double dt_max = std::numeric_limits<double>::infinity();  ///< largest step, > 0
  double dt_initial = 0;  ///< first step; 0 means Hairer's heuristic per sample
  std::int64_t max_steps = 100000;  ///< attempted (accepted + rejected) steps per sample
  /// Times strictly between t0 and t1 where every sample's step must end exactly, e.g.
  /// the τ of a KTS gain (where η' jumps): steps never straddle a kink of the field.
  /// Times outside (t0, t1) are ignored; order does not matter.
  std::vector<double> breakpoints{};
  double safety = 0.9;              ///< step-size controller safety factor, in (0, 1]
  double factor_min = 0.2;          ///< smallest step-size ratio, in (0, 1)
  double factor_max = 10.0;         ///< largest step-size ratio, > 1
  kpe_options kpe{};                ///< kinetic path energy (profiles are fixed-step only)
};

/// What an observer of an adaptive solve sees after each accepted step of one sample.
template <class Scalar, int Dim, std::size_t S>
struct adaptive_step_view {
  Eigen::Index sample;  ///< the sample's column in the batch
  Scalar t;             ///< start of the step
  Scalar dt;            ///< signed step size
  const batch<Scalar, Dim>& state;               ///< the whole batch (this sample updated)
  const std::array<batch<Scalar, Dim>, S>& stages;  ///< stage velocities of unfinished samples
  Eigen::Index column;                           ///< this sample's column within `stages`
  const embedded_tableau<S>& method;             ///< the method (weights `b`, nodes `c`)

  /// The sample's state after the step.
  [[nodiscard]] auto x() const { return state.col(sample); }
  /// The sample's stage velocity `k_j` of this step.
  [[nodiscard]] auto k(std::size_t j) const { return stages[j].col(column); }
};

namespace detail {

inline void validate(const adaptive_options& o) {
  require(std::isfinite(o.rtol) && o.rtol > 0, "rtol", o.rtol, "expected a finite value > 0");
  require(std::isfinite(o.atol) && o.atol >= 0, "atol", o.atol, "expected a finite value >= 0");
  require(std::isfinite(o.dt_min) && o.dt_min >= 0, "dt_min", o.dt_min, "expected a finite value >= 0");
  require(o.dt_max > 0 && o.dt_max > o.dt_min, "dt_max", o.dt_max, "expected a value > 0 and > dt_min");
  require(std::isfinite(o.dt_initial) && o.dt_initial >= 0, "dt_initial", o.dt_initial,
          "expected a finite value >= 0 (0 selects the automatic initial step)");
  require(o.max_steps >= 1, "max_steps", o.max_steps, "expected at least 1");
  require(o.safety > 0 && o.safety <= 1, "safety", o.safety, "expected a value in (0, 1]");
  require(o.factor_min > 0 && o.factor_min < 1, "factor_min", o.factor_min, "expected a value in (0, 1)");
  require(std::isfinite(o.factor_max) && o.factor_max > 1, "factor_max", o.factor_max,
          "expected a finite value > 1");
  for (std::size_t i = 0; i < o.breakpoints.size(); ++i)
    require(std::isfinite(o.breakpoints[i]), "breakpoints[" + std::to_string(i) + "]",
            o.breakpoints[i], "expected a finite time");
  validate_kpe_options(o.kpe);
  require(o.kpe.profile == kpe_profile::none, "kpe.profile", "per-step profile",
          "expected kpe_profile::none: per-step profiles exist for fixed-step integration only");
}

/// `out.col(m) = x.col(m) + h(m) Σ coef k.col(m)` (h per column). `out` may alias `x`
/// (every update is coefficient-wise) but not `k`.
template <class Batch, class Scalar, std::size_t S>
void combine_per_column(Batch& out, const Batch& x, const std::array<Batch, S>& k,
                        const stage_terms<Scalar, S>& t, const sample_times<Scalar>& h) {
  const auto& c = t.coef;
  const auto& i = t.index;
  const auto H = h.asDiagonal();
  switch (t.count) {
    case 0: out = x; break;
    case 1: out = x + (c[0] * k[i[0]]) * H; break;
    case 2: out = x + (c[0] * k[i[0]] + c[1] * k[i[1]]) * H; break;
    case 3: out = x + (c[0] * k[i[0]] + c[1] * k[i[1]] + c[2] * k[i[2]]) * H; break;
    case 4: out = x + (c[0] * k[i[0]] + c[1] * k[i[1]] + c[2] * k[i[2]] + c[3] * k[i[3]]) * H; break;
    case 5:
      out = x + (c[0] * k[i[0]] + c[1] * k[i[1]] + c[2] * k[i[2]] + c[3] * k[i[3]] + c[4] * k[i[4]]) * H;
      break;
    default: {  // coefficient-wise updates only, so `out` may alias `x`
      out = x + (c[0] * k[i[0]] + c[1] * k[i[1]] + c[2] * k[i[2]] + c[3] * k[i[3]] + c[4] * k[i[4]]) * H;
      for (std::size_t m = 5; m < t.count; ++m) out += (c[m] * k[i[m]]) * H;
    }
  }
}

/// RMS over the rows of `v / (atol + rtol·|scale|)` for one column.
template <class V, class A>
auto scaled_rms(const V& v, const A& scale, double atol, double rtol) {
  using Scalar = typename V::Scalar;
  return std::sqrt((v.array() / (Scalar(atol) + Scalar(rtol) * scale.array().abs()))
                       .square()
                       .mean());
}

}  // namespace detail

/// Integrates `dx/dt = v(t, x)` from `t0` to `t1` (either direction) with an adaptive
/// embedded Runge–Kutta pair (kinflow::dopri5, kinflow::bs32), stepping the batch `X`
/// (d x B) in place with per-sample step-size control. See the file comment.
///
/// NFE per sample counts every field evaluation spent on it: the first-stage evaluation,
/// the initial-step heuristic's one, and S-1 per attempted step for FSAL methods (S
/// otherwise). The observer, when given, is called after every accepted step of every
/// sample with an adaptive_step_view.
///
/// @throws kinflow::invalid_argument for invalid options or times,
///         kinflow::dimension_mismatch when the field's output does not match `X`.
template <class Field, class Scalar, int Dim, std::size_t S, class Observer = no_observer>
  requires velocity_field<std::remove_reference_t<Field>, Scalar, Dim> &&
           detail::observer_of<Observer, adaptive_step_view<Scalar, Dim, S>>
solve_result<Scalar> integrate_adaptive(Field&& field, const embedded_tableau<S>& method,
                                        double t0, double t1, batch<Scalar, Dim>& X,
                                        const adaptive_options& options = {},
                                        Observer&& observer = {}) {
  using batch_type = batch<Scalar, Dim>;
  using field_type = std::remove_reference_t<Field>;
  detail::validate(options);
  detail::require(std::isfinite(t0), "t0", t0, "expected a finite time");
  detail::require(std::isfinite(t1) && t1 != t0, "t1", t1, "expected a finite time != t0");

  const Eigen::Index d = X.rows(), B = X.cols();
  const auto Bs = static_cast<std::size_t>(B);
  const Scalar dir = t1 > t0 ? Scalar(1) : Scalar(-1);
  const auto T0 = static_cast<Scalar>(t0), T1 = static_cast<Scalar>(t1);
  const double rtol = options.rtol, atol = options.atol;
  const Scalar expo = Scalar(-1) / Scalar(method.embedded_order + 1);
  const bool kpe_on = options.kpe.enabled;
  const bool left_kpe = options.kpe.quadrature == kpe_quadrature::left_riemann;
  const bool kpe_err = kpe_on && options.kpe.in_error_norm;

  field_evaluator<field_type, Scalar, Dim> eval(field, d);

  solve_result<Scalar> res;
  res.status.assign(Bs, solve_status::success);
  res.nfe.setZero(B);
  res.accepted.setZero(B);
  res.rejected.setZero(B);
  if (kpe_on) {
    res.kpe.tau = options.kpe.tau;
    res.kpe.total.setZero(B);
    res.kpe.early.setZero(B);
    res.kpe.late.setZero(B);
  }

  per_sample<Scalar> t = per_sample<Scalar>::Constant(B, T0), h(B);
  std::vector<char> rejected_last(Bs, 0), nonfinite_last(Bs, 0);
  batch_type k_first(d, B);  // first-stage velocity at each sample's current point

  // Samples still being integrated, as columns of X.
  std::vector<Eigen::Index> active;
  active.reserve(Bs);
  for (Eigen::Index i = 0; i < B; ++i) {
    if (X.col(i).allFinite())
      active.push_back(i);
    else
      res.status[static_cast<std::size_t>(i)] = solve_status::non_finite;
  }

  // Work buffers over the active samples, resized when their number changes.
  std::array<batch_type, S> k;
  batch_type xa, xs, xnew, err;
  sample_times<Scalar> ha, ts;
  auto resize_work = [&](Eigen::Index n) {
    if (xa.cols() == n) return;
    for (auto& kj : k) kj.resize(d, n);
    xa.resize(d, n);
    xs.resize(d, n);
    xnew.resize(d, n);
    err.resize(d, n);
    ha.resize(n);
    ts.resize(n);
  };
  auto gather = [&](const batch_type& from, batch_type& to) {
    for (std::size_t m = 0; m < active.size(); ++m)
      to.col(static_cast<Eigen::Index>(m)) = from.col(active[m]);
  };
  auto drop_finished = [&] {
    std::erase_if(active, [&](Eigen::Index i) { return res.status[static_cast<std::size_t>(i)] != solve_status::success || t(i) == T1; });
  };

  // First stage at t0 (one batched call: every sample starts at the same time).
  {
    const auto n = static_cast<Eigen::Index>(active.size());
    resize_work(n);
    gather(X, xa);
    if (n > 0) eval(T0, xa, k[0]);
    for (Eigen::Index m = 0; m < n; ++m) {
      const Eigen::Index i = active[static_cast<std::size_t>(m)];
      res.nfe(i) += 1;
      k_first.col(i) = k[0].col(m);
      if (!k[0].col(m).allFinite()) res.status[static_cast<std::size_t>(i)] = solve_status::non_finite;
    }
    drop_finished();
  }

  // Initial step sizes.
  // Stops in the direction of integration: the breakpoints inside (t0, t1), then t1.
  std::vector<Scalar> stops;
  for (double b : options.breakpoints)
    if ((b - t0) * (t1 - b) > 0) stops.push_back(static_cast<Scalar>(b));
  std::sort(stops.begin(), stops.end(), [&](Scalar a, Scalar b) { return dir * a < dir * b; });
  stops.erase(std::unique(stops.begin(), stops.end()), stops.end());
  stops.push_back(T1);
  std::vector<std::size_t> next_stop(Bs, 0);
  auto stop_of = [&](Eigen::Index i) { return stops[next_stop[static_cast<std::size_t>(i)]]; };

  const Scalar span = std::abs(T1 - T0);
  const Scalar dt_max = std::min(static_cast<Scalar>(std::min(options.dt_max, 1e300)), span);
  if (options.dt_initial > 0) {
    for (auto i : active) h(i) = std::min(static_cast<Scalar>(options.dt_initial), dt_max);
  } else if (!active.empty()) {
    const auto n = static_cast<Eigen::Index>(active.size());
    resize_work(n);
    gather(X, xa);
    gather(k_first, k[0]);
    for (Eigen::Index m = 0; m < n; ++m) {
      const auto d0 = detail::scaled_rms(xa.col(m), xa.col(m), atol, rtol);
      const auto d1 = detail::scaled_rms(k[0].col(m), xa.col(m), atol, rtol);
      Scalar h0 = (d0 < Scalar(1e-5) || d1 < Scalar(1e-5)) ? Scalar(1e-6) : Scalar(0.01) * d0 / d1;
      h0 = std::min(h0, span);
      ha(m) = dir * h0;
      ts(m) = T0 + dir * h0;
    }
    xs = xa + k[0] * ha.asDiagonal();
    eval(ts, xs, k[1 % S]);
    for (Eigen::Index m = 0; m < n; ++m) {
      const Eigen::Index i = active[static_cast<std::size_t>(m)];
      res.nfe(i) += 1;
      const Scalar h0 = std::abs(ha(m));
      const auto d1 = detail::scaled_rms(k[0].col(m), xa.col(m), atol, rtol);
      const auto d2 = detail::scaled_rms((k[1 % S].col(m) - k[0].col(m)).eval(), xa.col(m), atol, rtol) / h0;
      const Scalar dm = std::max(d1, d2);
      Scalar h1 = (!(dm > Scalar(1e-15))) ? std::max(Scalar(1e-6), h0 * Scalar(1e-3))
                                          : std::pow(Scalar(0.01) / dm, -expo);
      if (!std::isfinite(h1)) h1 = h0;
      h(i) = std::min({Scalar(100) * h0, h1, dt_max});
    }
  }

  for (auto i : active) h(i) = std::min(h(i), std::abs(stop_of(i) - t(i)));

  const auto b_terms = detail::nonzero_terms<Scalar, S>(method.b, S, Scalar(1));
  std::array<long double, S> e{};
  for (std::size_t j = 0; j < S; ++j) e[j] = method.b[j] - method.b_hat[j];
  const auto e_terms = detail::nonzero_terms<Scalar, S>(e, S, Scalar(1));
  const bool fsal = method.fsal;
  const Scalar eps = std::numeric_limits<Scalar>::epsilon();

  while (!active.empty()) {
    const auto n = static_cast<Eigen::Index>(active.size());
    resize_work(n);
    gather(X, xa);
    for (Eigen::Index m = 0; m < n; ++m) ha(m) = dir * h(active[static_cast<std::size_t>(m)]);
    if (fsal) {
      gather(k_first, k[0]);
    } else {
      for (Eigen::Index m = 0; m < n; ++m) ts(m) = t(active[static_cast<std::size_t>(m)]);
      eval(ts, xa, k[0]);
    }
    for (std::size_t j = 1; j < S; ++j) {
      const auto terms = detail::nonzero_terms<Scalar, S>(method.a[j], j, Scalar(1));
      const bool last_fsal = fsal && j == S - 1;
      detail::combine_per_column(last_fsal ? xnew : xs, xa, k, terms, ha);
      for (Eigen::Index m = 0; m < n; ++m)
        ts(m) = t(active[static_cast<std::size_t>(m)]) + static_cast<Scalar>(method.c[j]) * ha(m);
      eval(ts, last_fsal ? xnew : xs, k[j]);
    }
    if (!fsal) detail::combine_per_column(xnew, xa, k, b_terms, ha);
    err.setZero();
    detail::combine_per_column(err, err, k, e_terms, ha);

    for (Eigen::Index m = 0; m < n; ++m) {
      const Eigen::Index i = active[static_cast<std::size_t>(m)];
      const auto si = static_cast<std::size_t>(i);
      res.nfe(i) += fsal ? static_cast<std::int64_t>(S - 1) : static_cast<std::int64_t>(S);
      const Scalar hm = std::abs(ha(m));

      Scalar sum_sq = (err.col(m).array() /
                       (Scalar(atol) + Scalar(rtol) * xa.col(m).array().abs().max(xnew.col(m).array().abs())))
                          .square()
                          .sum();
      Eigen::Index comps = d;
      Scalar de = 0;
      if (kpe_on) {
        if (left_kpe) {
          de = Scalar(0.5) * hm * k[0].col(m).squaredNorm();
        } else {
          for (std::size_t q = 0; q < b_terms.count; ++q)
            de += b_terms.coef[q] * k[b_terms.index[q]].col(m).squaredNorm();
          de *= Scalar(0.5) * hm;
        }
        if (kpe_err) {
          Scalar ee = 0;
          for (std::size_t q = 0; q < e_terms.count; ++q)
            ee += e_terms.coef[q] * k[e_terms.index[q]].col(m).squaredNorm();
          ee *= Scalar(0.5) * hm;
          const Scalar E = res.kpe.total(i);
          const Scalar sc = Scalar(atol) + Scalar(rtol) * std::max(std::abs(E), std::abs(E + de));
          sum_sq += (ee / sc) * (ee / sc);
          comps += 1;
        }
      }
      const Scalar en = std::sqrt(sum_sq / static_cast<Scalar>(comps));
      const bool finite = std::isfinite(en) && xnew.col(m).allFinite() && std::isfinite(de);

      const Scalar stop = stop_of(i);
      const Scalar remaining_before = std::abs(stop - t(i));
      if (finite && en <= Scalar(1)) {
        const bool hits_stop = hm >= remaining_before;
        const bool hits_end = hits_stop && next_stop[si] + 1 == stops.size();
        const Scalar t_start = t(i);
        t(i) = hits_stop ? stop : t(i) + ha(m);
        if (hits_stop && !hits_end) ++next_stop[si];
        X.col(i) = xnew.col(m);
        if (fsal) k_first.col(i) = k[S - 1].col(m);
        res.accepted(i) += 1;
        if (kpe_on) {
          res.kpe.total(i) += de;
          if (static_cast<double>(std::min(t_start, t(i))) < options.kpe.tau)
            res.kpe.early(i) += de;
          else
            res.kpe.late(i) += de;
        }
        if constexpr (detail::is_active_observer<Observer>)
          observer(adaptive_step_view<Scalar, Dim, S>{i, t_start, ha(m), X, k, m, method});
        Scalar factor = en == Scalar(0) ? Scalar(options.factor_max)
                                        : Scalar(options.safety) * std::pow(en, expo);
        factor = std::clamp(factor, Scalar(options.factor_min), Scalar(options.factor_max));
        if (rejected_last[si]) factor = std::min(factor, Scalar(1));
        h(i) = std::min(hm * factor, dt_max);
        rejected_last[si] = 0;
        nonfinite_last[si] = 0;
        if (hits_end) continue;  // finished: t(i) == T1
      } else {
        res.rejected(i) += 1;
        const Scalar factor = finite ? std::max(Scalar(options.factor_min), Scalar(options.safety) * std::pow(en, expo))
                                     : Scalar(options.factor_min);
        h(i) = hm * factor;
        rejected_last[si] = 1;
        nonfinite_last[si] = finite ? 0 : 1;
      }
      const Scalar remaining = std::abs(stop_of(i) - t(i));
      if (h(i) >= remaining) h(i) = remaining;
      const Scalar dt_min = std::max(static_cast<Scalar>(options.dt_min),
                                     Scalar(16) * eps * std::max(std::abs(t(i)), Scalar(1)));
      if (h(i) < dt_min && h(i) < remaining) {
        res.status[si] = nonfinite_last[si] ? solve_status::non_finite : solve_status::dt_underflow;
      } else if (res.accepted(i) + res.rejected(i) >= options.max_steps) {
        res.status[si] = solve_status::max_steps_reached;
      }
    }
    drop_finished();
  }
  return res;
}

/// Readable diagnostic for a callable that is not a velocity field.
template <class Field, class Scalar, int Dim, std::size_t S, class Observer = no_observer>
  requires(!velocity_field<std::remove_reference_t<Field>, Scalar, Dim>)
solve_result<Scalar> integrate_adaptive(Field&&, const embedded_tableau<S>&, double, double,
                                        batch<Scalar, Dim>&, const adaptive_options& = {},
                                        Observer&& = {}) {
  static_assert(velocity_field<std::remove_reference_t<Field>, Scalar, Dim>,
                "kinflow::integrate_adaptive: the field is not a velocity field. It must be "
                "callable as v(t, x) -> Eigen vector (per sample) or v(t, X, V) (batched), with "
                "t the state's scalar type; see kinflow/core/concepts.hpp");
  return {};
}

}  // namespace kinflow
