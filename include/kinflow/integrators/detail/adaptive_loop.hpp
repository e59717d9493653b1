#pragma once
/// @file
/// @brief Private: the adaptive driver (kinflow/integrators/adaptive.hpp) — statuses, counters,
/// stops, the controller and the integrals around the step kernel, compiled once per scalar
/// type, dimension, method and controller whatever the field.

#include <Eigen/Core>
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "kinflow/core/batch.hpp"
#include "kinflow/core/batch_columns.hpp"
#include "kinflow/core/concepts.hpp"
#include "kinflow/core/errors.hpp"
#include "kinflow/core/field_evaluator.hpp"
#include "kinflow/detail/batch_callable.hpp"
#include "kinflow/detail/rk_combine.hpp"
#include "kinflow/energy/kpe.hpp"
#include "kinflow/integrators/controller.hpp"
#include "kinflow/integrators/likelihood.hpp"
#include "kinflow/integrators/progress.hpp"
#include "kinflow/integrators/quadrature.hpp"
#include "kinflow/integrators/result.hpp"
#include "kinflow/integrators/kernels/rk_step.hpp"
#include "kinflow/integrators/tableau.hpp"
#include "kinflow/integrators/adaptive_options.hpp"
#include "kinflow/integrators/detail/solve_extras.hpp"

namespace kinflow::detail {

/// Compile-time checks of the trailing arguments of kinflow::integrate_adaptive: at most
/// one step-size controller, one kinflow::along(...) bundle of valid integrands and one
/// observer of the adaptive step view.
template <class Scalar, int Dim, std::size_t S, class... Extras>
constexpr void check_adaptive_extras() {
  static_assert(count_kind<extra_kind::controller, Extras...> <= 1,
                "kinflow::integrate_adaptive: more than one step-size controller given");
  static_assert(count_kind<extra_kind::integrals, Extras...> <= 1,
                "kinflow::integrate_adaptive: more than one kinflow::along(...) given; put every "
                "integrand into one");
  static_assert(count_kind<extra_kind::observer, Extras...> <= 1,
                "kinflow::integrate_adaptive: more than one observer given (or an argument that "
                "is neither a controller, nor kinflow::along(...), nor an observer)");
  using integrals_type = std::remove_cvref_t<decltype(extra_or<extra_kind::integrals>(
      std::declval<const path_integrals<>&>(), std::declval<Extras>()...))>;
  using observer_type = std::remove_cvref_t<decltype(extra_or<extra_kind::observer>(
      std::declval<no_observer&>(), std::declval<Extras>()...))>;
  static_assert(observer_of<observer_type, adaptive_step_view<Scalar, Dim, S>>,
                "kinflow::integrate_adaptive: a trailing argument is neither a step-size "
                "controller (kinflow::step_size_controller), nor kinflow::along(...), nor an "
                "observer callable with a kinflow::adaptive_step_view");
  static_assert(integrands_of<integrals_type, Scalar, Dim>,
                "kinflow::integrate_adaptive: an integrand of kinflow::along is neither g(t, x, v) "
                "-> Scalar nor g(T, X, V, G); see kinflow/integrators/quadrature.hpp");
}

/// RMS over the rows of `v / (atol + rtol·|scale|)` for one column.
template <class V, class A>
auto scaled_rms(const V& v, const A& scale, double atol, double rtol) {
  using Scalar = typename V::Scalar;
  return std::sqrt((v.array() / (Scalar(atol) + Scalar(rtol) * scale.array().abs()))
                       .square()
                       .mean());
}

/// The adaptive driver: statuses, counters, stops, controller and integrals around the
/// step kernel. `eval` evaluates the field and `observer` observes (whatever their types,
/// so the driver is compiled once for all fields and observers); `switch_time` is the
/// field's own, if any. `channels` is a tuple of
/// path_channel: the kinetic energy first, then the log-likelihood's divergence, then the
/// user's integrands.
template <class Scalar, int Dim, std::size_t S, class Controller, class Channels>
solve_result<Scalar> adaptive_solve(const batched_velocity_ref<Scalar, Dim>& eval,
                                    std::optional<double> switch_time,
                                    const embedded_tableau<S>& method, double t0, double t1,
                                    batch<Scalar, Dim>& X, const adaptive_options& options,
                                    const Controller& controller, Channels& channels,
                                    function_ref<void(const adaptive_step_view<Scalar, Dim, S>&)> observer) {
  using batch_type = batch<Scalar, Dim>;
  const Eigen::Index d = X.rows(), B = X.cols();
  const auto Bs = static_cast<std::size_t>(B);
  const Scalar dir = t1 > t0 ? Scalar(1) : Scalar(-1);
  const auto T0 = static_cast<Scalar>(t0), T1 = static_cast<Scalar>(t1);
  const double rtol = options.rtol, atol = options.atol;
  const int error_order = method.embedded_order + 1;
  const Scalar expo = Scalar(-1) / Scalar(error_order);
  const bool fsal = method.fsal;

  solve_result<Scalar> res;
  res.status.assign(Bs, solve_status::success);
  res.nfe.setZero(B);
  res.accepted.setZero(B);
  res.rejected.setZero(B);
  for_each_in(channels, [&](auto& c) {
    c.value.setZero(B);
    if (c.split) {
      c.early.setZero(B);
      c.late.setZero(B);
    }
    if (fsal) c.first.setZero(B);
  });

  per_sample<Scalar> t = per_sample<Scalar>::Constant(B, T0), h(B);
  std::vector<typename Controller::memory> memory(Bs);
  std::vector<char> nonfinite_last(Bs, 0);
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
  // The field's columns are the active samples (the array keeps its storage: it only shrinks).
  const batch_columns::scope columns(active.data());

  // Work buffers over the active samples, resized when their number changes.
  rk_work<Scalar, Dim, S> work;
  auto& k = work.k;
  batch_type xa, xnew, err;
  sample_times<Scalar> ha, habs, ta;
  auto resize_work = [&](Eigen::Index n) {
    if (xa.cols() == n) return;
    work.resize(d, n);
    xa.resize(d, n);
    xnew.resize(d, n);
    err.resize(d, n);
    ha.resize(n);
    habs.resize(n);
    ta.resize(n);
  };
  auto gather = [&](const batch_type& from, batch_type& to) {
    for (std::size_t m = 0; m < active.size(); ++m)
      to.col(static_cast<Eigen::Index>(m)) = from.col(active[m]);
  };
  auto drop_finished = [&] {
    std::erase_if(active, [&](Eigen::Index i) { return res.status[static_cast<std::size_t>(i)] != solve_status::success || t(i) == T1; });
  };

  // First stage at t0 (one batched call: every sample starts at the same time), and with
  // an FSAL pair the integrands there (the first stage of the first step).
  {
    const auto n = static_cast<Eigen::Index>(active.size());
    resize_work(n);
    gather(X, xa);
    std::int64_t extra = 0;
    if (n > 0) {
      eval(T0, xa, k[0]);
      if (fsal)
        for_each_in(channels, [&](auto& c) {
          if (!c.enabled) return;
          c.evaluate(T0, xa, k[0]);
          extra += c.cost;
          for (Eigen::Index m = 0; m < n; ++m) c.first(active[static_cast<std::size_t>(m)]) = c.G(m);
        });
    }
    for (Eigen::Index m = 0; m < n; ++m) {
      const Eigen::Index i = active[static_cast<std::size_t>(m)];
      res.nfe(i) += 1 + extra;
      k_first.col(i) = k[0].col(m);
      if (!k[0].col(m).allFinite()) res.status[static_cast<std::size_t>(i)] = solve_status::non_finite;
    }
    drop_finished();
  }

  // Stops in the direction of integration: the breakpoints inside (t0, t1) and the field's
  // switch time, then t1.
  std::vector<Scalar> stops;
  auto add_stop = [&](double b) {
    if ((b - t0) * (t1 - b) > 0) stops.push_back(static_cast<Scalar>(b));
  };
  for (double b : options.breakpoints) add_stop(b);
  if (switch_time) add_stop(*switch_time);
  std::sort(stops.begin(), stops.end(), [&](Scalar a, Scalar b) { return dir * a < dir * b; });
  stops.erase(std::unique(stops.begin(), stops.end()), stops.end());
  stops.push_back(T1);
  std::vector<std::size_t> next_stop(Bs, 0);
  auto stop_of = [&](Eigen::Index i) { return stops[next_stop[static_cast<std::size_t>(i)]]; };

  // Initial step sizes.
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
      const auto d0 = scaled_rms(xa.col(m), xa.col(m), atol, rtol);
      const auto d1 = scaled_rms(k[0].col(m), xa.col(m), atol, rtol);
      Scalar h0 = (d0 < Scalar(1e-5) || d1 < Scalar(1e-5)) ? Scalar(1e-6) : Scalar(0.01) * d0 / d1;
      h0 = std::min(h0, span);
      ha(m) = dir * h0;
      ta(m) = T0 + dir * h0;
    }
    work.stage = xa + k[0] * ha.asDiagonal();
    eval(ta, work.stage, k[1 % S]);
    for (Eigen::Index m = 0; m < n; ++m) {
      const Eigen::Index i = active[static_cast<std::size_t>(m)];
      res.nfe(i) += 1;
      const Scalar h0 = std::abs(ha(m));
      const auto d1 = scaled_rms(k[0].col(m), xa.col(m), atol, rtol);
      const auto d2 = scaled_rms((k[1 % S].col(m) - k[0].col(m)).eval(), xa.col(m), atol, rtol) / h0;
      const Scalar dm = std::max(d1, d2);
      Scalar h1 = (!(dm > Scalar(1e-15))) ? std::max(Scalar(1e-6), h0 * Scalar(1e-3))
                                          : std::pow(Scalar(0.01) / dm, -expo);
      if (!std::isfinite(h1)) h1 = h0;
      h(i) = std::min({Scalar(100) * h0, h1, dt_max});
    }
  }

  for (auto i : active) h(i) = std::min(h(i), std::abs(stop_of(i) - t(i)));

  std::array<long double, S> e{};
  for (std::size_t j = 0; j < S; ++j) e[j] = method.b[j] - method.b_hat[j];
  const auto e_terms = nonzero_terms<Scalar, S>(e, S, Scalar(1));
  const Scalar eps = std::numeric_limits<Scalar>::epsilon();
  // The kinetic energy is the first channel.
  auto& kpe = std::get<0>(channels);
  const bool kpe_on = kpe.enabled;

  while (!active.empty()) {
    const auto n = static_cast<Eigen::Index>(active.size());
    resize_work(n);
    gather(X, xa);
    for (Eigen::Index m = 0; m < n; ++m) {
      const Eigen::Index i = active[static_cast<std::size_t>(m)];
      ha(m) = dir * h(i);
      habs(m) = h(i);
      ta(m) = t(i);
    }
    if (fsal) gather(k_first, k[0]);
    std::int64_t extra = 0;  // field evaluations the integrands cost per sample this step
    for_each_in(channels, [&](auto& c) {
      if (c.enabled) c.step.start(n, c.in_error);
    });
    rk_step(eval, method, fsal, ta, ha, xa, xnew, work,
            fsal ? first_stage::given : first_stage::evaluate,
            [&](std::size_t j, const sample_times<Scalar>& T, const batch_type& Xj, const batch_type& Kj) {
              for_each_in(channels, [&](auto& c) {
                if (!c.enabled || !c.needs(method.b, e, j, fsal)) return;
                if (fsal && j == 0) {
                  c.G.resize(n);
                  for (Eigen::Index m = 0; m < n; ++m) c.G(m) = c.first(active[static_cast<std::size_t>(m)]);
                } else {
                  c.evaluate(T, Xj, Kj);
                  extra += c.cost;
                }
                c.accumulate(c.weight(method.b, j), e[j], ha, habs);
                if (fsal && j + 1 == S) c.G_last = c.G;
              });
            });
    err.setZero();
    combine(err, err, k, e_terms, ha);

    for (Eigen::Index m = 0; m < n; ++m) {
      const Eigen::Index i = active[static_cast<std::size_t>(m)];
      const auto si = static_cast<std::size_t>(i);
      res.nfe(i) += (fsal ? static_cast<std::int64_t>(S - 1) : static_cast<std::int64_t>(S)) + extra;
      const Scalar hm = habs(m);

      Scalar sum_sq = (err.col(m).array() /
                       (Scalar(atol) + Scalar(rtol) * xa.col(m).array().abs().max(xnew.col(m).array().abs())))
                          .square()
                          .sum();
      Eigen::Index comps = d;
      // Integrals in the error norm (the energy with kpe.in_error_norm, the likelihood):
      // their local error scaled like a state component's.
      for_each_in(channels, [&](auto& c) {
        if (!c.enabled || !c.in_error) return;
        const Scalar ee = c.step.error(m), q = c.value(i), dq = c.step.sum(m);
        const Scalar sc = Scalar(atol) + Scalar(rtol) * std::max(std::abs(q), std::abs(q + dq));
        const Scalar r = ee == Scalar(0) ? Scalar(0) : ee / sc;  // no 0/0 when atol = 0 and q = 0
        sum_sq += r * r;
        comps += 1;
      });
      const Scalar de = kpe_on ? kpe.step.sum(m) : Scalar(0);
      const Scalar en = std::sqrt(sum_sq / static_cast<Scalar>(comps));
      // The step is judged on the state, the energy and the integrals in the error norm; a
      // user's integral that is not finite is reported in its value, not by the state.
      bool finite = std::isfinite(en) && xnew.col(m).allFinite() && std::isfinite(de);
      for_each_in(channels, [&](auto& c) {
        if (c.enabled && c.in_error) finite = finite && std::isfinite(c.step.sum(m));
      });

      const Scalar stop = stop_of(i);
      const Scalar remaining_before = std::abs(stop - t(i));
      const bool accepted = finite && en <= Scalar(1);
      const double factor = controller.next_factor(finite ? static_cast<double>(en)
                                                          : std::numeric_limits<double>::infinity(),
                                                   accepted, error_order, memory[si]);
      require(std::isfinite(factor) && factor > 0, "controller.next_factor", factor,
              "expected a finite step-size factor > 0 from the step-size controller");
      if (accepted) {
        const bool hits_stop = hm >= remaining_before;
        const bool hits_end = hits_stop && next_stop[si] + 1 == stops.size();
        const Scalar t_start = t(i);
        t(i) = hits_stop ? stop : t(i) + ha(m);
        if (hits_stop && !hits_end) ++next_stop[si];
        X.col(i) = xnew.col(m);
        if (fsal) k_first.col(i) = k[S - 1].col(m);
        res.accepted(i) += 1;
        for_each_in(channels, [&](auto& c) {
          if (!c.enabled) return;
          const Scalar q = c.step.sum(m);
          c.value(i) += q;
          if (c.split) (kpe_step_is_early(t_start, t(i), c.tau) ? c.early(i) : c.late(i)) += q;
          if (fsal) c.first(i) = c.G_last(m);
        });
        if (observer) observer(adaptive_step_view<Scalar, Dim, S>{i, t_start, ha(m), X, k, m, method});
        h(i) = std::min(static_cast<Scalar>(hm * factor), dt_max);
        nonfinite_last[si] = 0;
        if (hits_end) continue;  // finished: t(i) == T1
      } else {
        res.rejected(i) += 1;
        h(i) = static_cast<Scalar>(hm * factor);
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
    if (options.progress) {
      const Scalar span = std::abs(T1 - T0);
      double done = static_cast<double>(Bs - active.size());
      if (span > 0)
        for (auto i : active) done += static_cast<double>(std::abs(t(i) - T0) / span);
      detail::report_progress(options.progress, done, static_cast<double>(B));
    }
  }
  return res;
}

}  // namespace kinflow::detail
