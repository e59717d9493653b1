#pragma once
/// @file
/// @brief Classifier-free guidance as a field: `ṽ = v_u + w(t) (v_c − v_u)` from a
/// conditional field with one class bound per sample, with a guidance window, CFG-Zero*,
/// a user's `w(t)`, the exact divergence of the guided field, and the energy guidance
/// spends (docs/math.md, "Guidance and its energy").
///
/// With `v_u` the unconditional velocity (class -1) and `v_c` the velocity of the sample's
/// class, the guided velocity is
///
///     ṽ = b + w Δ,   b = s v_u,   Δ = v_c − b,
///
/// with `s = 1` (classifier-free guidance) or, with CFG-Zero*'s optimized scale,
/// `s* = ⟨v_c, v_u⟩ / ‖v_u‖²` per sample; `ṽ = 0` before `zero_until` (CFG-Zero*'s zero
/// start). The weight is `w(t) = scale` inside the window `[window_start, window_end]` and
/// 1 (the plain conditional field) outside it, or the user's `schedule(t)`. So `w = 0` is
/// the unconditional field and `w = 1` the conditional one, bit for bit.
///
/// **Energy.** `½‖ṽ‖² = ½‖b‖² + w⟨b, Δ⟩ + ½ w² ‖Δ‖²`: the kinetic path energy of a guided
/// solve is the sum of the three integrals `kinflow::guidance_energy(field)` carries beside
/// the state (kinflow/integrators/guidance_energy.hpp), from the stage values the solve
/// already has (no extra evaluation).
///
/// **Divergence.** Where the conditional field gives exact divergences of both velocities
/// (kinflow::class_conditional_field), `div ṽ = (1 − w) div v_u + w div v_c`, and a solve's
/// log-likelihood is exact. The optimized scale depends on x, so its field has no exact
/// divergence: a likelihood then needs Hutchinson's estimate.
///
/// @code
///   kinflow::guidance_options g{.scale = 4.0, .window_start = 0.2, .window_end = 0.8};
///   auto field = kinflow::guided(exact, classes, g);
///   auto r = kinflow::integrate(field, kinflow::rk4, grid, X, {}, kinflow::guidance_energy(field));
///   // r.kpe.total == r.integrals[0] + r.integrals[1] + r.integrals[2] (to rounding)
/// @endcode

#include <cmath>
#include <concepts>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <utility>

#include <Eigen/Core>

#include "kinflow/core/batch.hpp"
#include "kinflow/core/conditions.hpp"
#include "kinflow/core/errors.hpp"

namespace kinflow {

/// Options of classifier-free guidance (see the file comment).
struct guidance_options {
  /// The guidance scale w inside the window (finite). 1 is the conditional field, 0 the
  /// unconditional one. Default 1.
  double scale = 1.0;
  /// Start of the guidance window (0 ≤ window_start ≤ window_end ≤ 1); w = 1 before it.
  double window_start = 0.0;
  /// End of the guidance window; w = 1 after it.
  double window_end = 1.0;
  /// A user's weight `w(t)`, replacing scale and window when set (it must return finite
  /// values).
  std::function<double(double)> schedule{};
  /// CFG-Zero*: the guided velocity is 0 for t < zero_until (in [0, 1]; 0: never). For the
  /// first K steps of a grid, the grid's time after K steps (kinflow::zero_start_time).
  double zero_until = 0.0;
  /// CFG-Zero*: scale the unconditional velocity by `s* = ⟨v_c, v_u⟩ / ‖v_u‖²`, per sample.
  bool optimized_scale = false;

  /// The weight at time @p t (see the file comment).
  [[nodiscard]] double weight(double t) const {
    if (schedule) {
      const double w = schedule(t);
      detail::require(std::isfinite(w), "guidance schedule w(t)", w,
                      "expected a finite weight (at t = " + detail::to_text(t) + ")");
      return w;
    }
    return t >= window_start && t <= window_end ? scale : 1.0;
  }

  /// Throws kinflow::invalid_argument naming the first invalid option.
  void validate() const {
    detail::require(std::isfinite(scale), "guidance scale", scale, "expected a finite value");
    detail::require(window_start >= 0 && window_start <= 1, "guidance window_start", window_start,
                    "expected 0 <= window_start <= 1");
    detail::require(window_end >= window_start && window_end <= 1, "guidance window_end", window_end,
                    "expected window_start <= window_end <= 1 (window_start = " + detail::to_text(window_start) + ")");
    detail::require(zero_until >= 0 && zero_until <= 1, "guidance zero_until", zero_until,
                    "expected 0 <= zero_until <= 1");
  }
};

/// CFG-Zero*'s zero start of K steps: the time of node K of @p grid (a time_grid or any
/// sequence with `operator[]` and `steps()`), for guidance_options::zero_until.
/// @throws kinflow::invalid_argument unless 0 ≤ K ≤ grid.steps().
template <class Grid>
[[nodiscard]] double zero_start_time(const Grid& grid, long long K) {
  detail::require(K >= 0 && K <= static_cast<long long>(grid.steps()), "zero-init steps K", K,
                  "expected 0 <= K <= " + std::to_string(grid.steps()) + " (the grid's steps)");
  return static_cast<double>(grid[static_cast<std::size_t>(K)]);
}

/// A conditional field that gives `v_u` and `v_c` from one evaluation:
/// `f.velocity_pair(t, X, C, U, Vc)` and `f.velocity_pair_at_times(T, X, C, U, Vc)`.
template <class F, class Scalar, int Dim>
concept conditional_pair_field =
    requires(F& f, Scalar t, const sample_times<Scalar>& T, const batch<Scalar, Dim>& X, const class_labels& C,
             batch<Scalar, Dim>& U) {
      f.velocity_pair(t, X, C, U, U);
      f.velocity_pair_at_times(T, X, C, U, U);
    };

/// A conditional field that gives both velocities and their exact divergences from one
/// evaluation: `f.velocity_pair_and_divergence(t, X, C, U, Vc, Du, Dc)` and `…_at_times`.
template <class F, class Scalar, int Dim>
concept conditional_pair_divergence_field =
    requires(F& f, Scalar t, const sample_times<Scalar>& T, const batch<Scalar, Dim>& X, const class_labels& C,
             batch<Scalar, Dim>& U, per_sample<Scalar>& D) {
      f.velocity_pair_and_divergence(t, X, C, U, U, D, D);
      f.velocity_pair_and_divergence_at_times(T, X, C, U, U, D, D);
    };

namespace detail {

/// The energy parts of the last evaluations of a guided field, looked up by the stage
/// (times and states) the integrands see (kinflow::guidance_energy). Shared by copies.
struct guidance_memo {
  std::mutex lock;
  bool enabled = false;                                          // set by guidance_energy
  Eigen::Matrix<double, 1, Eigen::Dynamic> times;                // one per column
  Eigen::MatrixXd states;                                        // d x n
  Eigen::Matrix<double, 3, Eigen::Dynamic> parts;                // ½‖b‖², w⟨b,Δ⟩, ½w²‖Δ‖²
  std::uint64_t misses = 0;                                      // evaluations the lookups cost
};

}  // namespace detail

/// Classifier-free guidance of a conditional field with one class bound per sample: a
/// plain batched field (see the file comment). `Field` is held as kinflow::shaped holds its
/// field: by reference for an lvalue, by value for an rvalue.
template <class Field>
class guided_field {
public:
  using inner_type = std::remove_reference_t<Field>;  ///< the conditional field's type

  /// Guides @p field for the samples' @p classes (one per sample; -1: unconditional, which
  /// guidance leaves unconditional) with @p options.
  /// @throws kinflow::invalid_argument for invalid options or classes.
  template <class F>
    requires std::constructible_from<Field, F&&>
  guided_field(F&& field, class_labels classes, guidance_options options)
      : field_(std::forward<F>(field)), classes_(std::move(classes)), opt_(std::move(options)) {
    opt_.validate();
    detail::require_classes_of(std::as_const(field_), classes_, "classes");
  }

  /// Guided velocity at time t of every column of X (V may be X).
  template <std::floating_point Scalar, int Dim>
    requires conditional_field<const inner_type, Scalar, Dim>
  void operator()(Scalar t, const batch<Scalar, Dim>& X, batch<Scalar, Dim>& V) const {
    run(t, nullptr, X, V, nullptr);
  }
  /// Guided velocity with one time per column.
  template <std::floating_point Scalar, int Dim>
    requires conditional_field<const inner_type, Scalar, Dim>
  void velocity_at_times(const sample_times<Scalar>& T, const batch<Scalar, Dim>& X, batch<Scalar, Dim>& V) const {
    detail::require_dimension("number of times T (one per column of X)", T.size(), X.cols());
    run(Scalar(0), &T, X, V, nullptr);
  }

  /// Guided velocity and its exact divergence `(1 − w) div v_u + w div v_c` (fields with
  /// exact divergences of both, kinflow::conditional_pair_divergence_field).
  /// @throws kinflow::invalid_argument with the optimized scale (no exact divergence).
  template <std::floating_point Scalar, int Dim>
    requires conditional_pair_divergence_field<const inner_type, Scalar, Dim>
  void velocity_and_divergence(Scalar t, const batch<Scalar, Dim>& X, batch<Scalar, Dim>& V,
                               per_sample<Scalar>& D) const {
    run(t, nullptr, X, V, &D);
  }
  /// velocity_and_divergence with one time per column.
  template <std::floating_point Scalar, int Dim>
    requires conditional_pair_divergence_field<const inner_type, Scalar, Dim>
  void velocity_and_divergence_at_times(const sample_times<Scalar>& T, const batch<Scalar, Dim>& X,
                                        batch<Scalar, Dim>& V, per_sample<Scalar>& D) const {
    detail::require_dimension("number of times T (one per column of X)", T.size(), X.cols());
    run(Scalar(0), &T, X, V, &D);
  }
  /// Exact divergence of the guided field (see velocity_and_divergence).
  template <std::floating_point Scalar, int Dim>
    requires conditional_pair_divergence_field<const inner_type, Scalar, Dim>
  void divergence(Scalar t, const batch<Scalar, Dim>& X, per_sample<Scalar>& D) const {
    batch<Scalar, Dim> V;
    run(t, nullptr, X, V, &D);
  }
  /// Exact divergence with one time per column.
  template <std::floating_point Scalar, int Dim>
    requires conditional_pair_divergence_field<const inner_type, Scalar, Dim>
  void divergence_at_times(const sample_times<Scalar>& T, const batch<Scalar, Dim>& X, per_sample<Scalar>& D) const {
    detail::require_dimension("number of times T (one per column of X)", T.size(), X.cols());
    batch<Scalar, Dim> V;
    run(Scalar(0), &T, X, V, &D);
  }

  /// The inner field's dimension (when it has `dim()`).
  [[nodiscard]] Eigen::Index dim() const
    requires field_with_dim<inner_type>
  {
    return static_cast<Eigen::Index>(std::as_const(field_).dim());
  }

  /// The options.
  [[nodiscard]] const guidance_options& options() const noexcept { return opt_; }
  /// The classes bound, one per sample.
  [[nodiscard]] const class_labels& classes() const noexcept { return classes_; }
  /// The conditional field.
  [[nodiscard]] const inner_type& inner() const noexcept { return field_; }
  /// Evaluations (of the pair, per column) the energy integrands had to make themselves
  /// because the stage they were given was not the field's last evaluation (0 in the
  /// solvers' stage loops).
  [[nodiscard]] std::uint64_t energy_extra_evaluations() const {
    const std::scoped_lock guard(memo_->lock);
    return memo_->misses;
  }

  /// Part @p p (0: `½‖b‖²`, 1: `w⟨b, Δ⟩`, 2: `½w²‖Δ‖²`) of `½‖ṽ‖²` at every column (T, X),
  /// from the memo of the last evaluation when it is that stage, by evaluating otherwise:
  /// the batched integrand kinflow::guidance_energy hands a solve.
  template <class Scalar, int Dim>
  void energy_part(int p, const sample_times<Scalar>& T, const batch<Scalar, Dim>& X, per_sample<Scalar>& G) const {
    {
      const std::scoped_lock guard(memo_->lock);
      detail::guidance_memo& m = *memo_;
      if (m.states.rows() == X.rows() && m.states.cols() == X.cols() && m.times == T.template cast<double>() &&
          m.states == X.template cast<double>()) {
        G = m.parts.row(p).transpose().template cast<Scalar>();
        return;
      }
      m.misses += static_cast<std::uint64_t>(X.cols());
    }
    batch<Scalar, Dim> V;
    run(Scalar(0), &T, X, V, nullptr);  // stores the parts of (T, X)
    const std::scoped_lock guard(memo_->lock);
    G = memo_->parts.row(p).transpose().template cast<Scalar>();
  }

  /// Turns on the memo of the energy parts (kinflow::guidance_energy does).
  void track_energy() const {
    const std::scoped_lock guard(memo_->lock);
    memo_->enabled = true;
  }

private:
  template <class Scalar, int Dim>
  void run(Scalar t, const std::type_identity_t<sample_times<Scalar>>* T, const batch<Scalar, Dim>& X,
           batch<Scalar, Dim>& V, std::type_identity_t<per_sample<Scalar>>* D) const {
    const Eigen::Index n = X.cols();
    class_labels C;
    detail::gather_classes(classes_, n, C, "classes");
    auto time = [&](Eigen::Index j) { return T == nullptr ? t : (*T)(j); };
    batch<Scalar, Dim> U, Vc;
    per_sample<Scalar> Du, Dc;
    if (D != nullptr) {
      detail::require(!opt_.optimized_scale, "guidance optimized_scale", "true",
                      "expected false for an exact divergence (CFG-Zero*'s scale depends on x); use "
                      "Hutchinson's estimate (likelihood.divergence.method = hutchinson)");
      if constexpr (conditional_pair_divergence_field<const inner_type, Scalar, Dim>) {
        if (T == nullptr)
          field_.velocity_pair_and_divergence(t, X, C, U, Vc, Du, Dc);
        else
          field_.velocity_pair_and_divergence_at_times(*T, X, C, U, Vc, Du, Dc);
      }
    } else if constexpr (conditional_pair_field<const inner_type, Scalar, Dim>) {
      if (T == nullptr)
        field_.velocity_pair(t, X, C, U, Vc);
      else
        field_.velocity_pair_at_times(*T, X, C, U, Vc);
    } else {
      detail::evaluate_conditional(field_, t, T, X, static_cast<const class_labels&>(C), Vc);
      const class_labels none = class_labels::Constant(n, null_class);
      detail::evaluate_conditional(field_, t, T, X, none, U);
    }

    std::unique_lock<std::mutex> memo(memo_->lock, std::defer_lock);
    bool remember = false;
    if (memo_->enabled) {
      memo.lock();
      remember = true;
      memo_->times.resize(n);
      for (Eigen::Index j = 0; j < n; ++j) memo_->times(j) = static_cast<double>(time(j));
      memo_->states = X.template cast<double>();
      memo_->parts.resize(3, n);
    }
    if (D != nullptr) D->resize(n);
    V.resize(X.rows(), n);  // after the memo has read X, which V may be
    // One time for every column: the weight once (a user's w(t) may be slow, e.g. Python).
    const bool one_time = T == nullptr && !(static_cast<double>(t) < opt_.zero_until);
    const double w_all = one_time ? opt_.weight(static_cast<double>(t)) : 0.0;
    for (Eigen::Index j = 0; j < n; ++j) {
      const Scalar tj = time(j);
      auto v = V.col(j);
      if (static_cast<double>(tj) < opt_.zero_until) {
        v.setZero();
        if (D != nullptr) (*D)(j) = 0;
        if (remember) memo_->parts.col(j).setZero();
        continue;
      }
      const auto w = static_cast<Scalar>(one_time ? w_all : opt_.weight(static_cast<double>(tj)));
      Scalar s = 1;
      if (opt_.optimized_scale) {
        const Scalar uu = U.col(j).squaredNorm();
        s = uu > 0 ? U.col(j).dot(Vc.col(j)) / uu : Scalar(1);
      }
      if (remember) {
        const Scalar bb = s * s * U.col(j).squaredNorm();
        const Scalar bd = s * U.col(j).dot(Vc.col(j) - s * U.col(j));
        const Scalar dd = (Vc.col(j) - s * U.col(j)).squaredNorm();
        memo_->parts.col(j) << double(bb / 2), double(w * bd), double(w * w * dd / 2);
      }
      if (s == Scalar(1) && w == Scalar(0))
        v = U.col(j);
      else if (s == Scalar(1) && w == Scalar(1))
        v = Vc.col(j);
      else
        v = s * U.col(j) + w * (Vc.col(j) - s * U.col(j));
      if (D != nullptr) (*D)(j) = w == Scalar(0) ? Du(j) : w == Scalar(1) ? Dc(j) : (1 - w) * Du(j) + w * Dc(j);
    }
  }

  Field field_;
  class_labels classes_;
  guidance_options opt_;
  std::shared_ptr<detail::guidance_memo> memo_ = std::make_shared<detail::guidance_memo>();
};

/// Deduction guide: lvalues are held by reference, rvalues by value.
template <class F>
guided_field(F&&, class_labels, guidance_options) -> guided_field<F>;

/// Classifier-free guidance of the conditional @p field for @p classes (see guided_field).
template <class F>
[[nodiscard]] guided_field<F> guided(F&& field, class_labels classes, guidance_options options = {}) {
  return guided_field<F>(std::forward<F>(field), std::move(classes), std::move(options));
}

}  // namespace kinflow
