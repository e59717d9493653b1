#pragma once
/// @file
/// @brief Integrals carried along every sample's path from the stage values the integrator
/// already has (the kinetic path energy, the log-likelihood, and a user's own).
///
/// An integral `Q = ∫_{t0}^{t1} g(t, x(t), ṽ(x(t), t)) dt` is the extra component `Q' = g`
/// of the augmented system `(x, Q)`, integrated by the same Runge–Kutta method: after the
/// stage `j` of a step (time `t + c_j h`, stage state `x_j`, stage velocity `k_j`) the
/// integrand is evaluated once, `g_j = g(t + c_j h, x_j, k_j)`, and an accepted step adds
///
///     Q += Σ_j (b_j h) g_j
///
/// (the propagated weights `b`). This costs no field evaluation, converges at the
/// integrator's order for smooth integrands, and gets exactly the accepted steps of the
/// state in adaptive solves. With an FSAL pair the first stage of a step is the last of the
/// previous one, so its integrand value is reused, not recomputed.
///
/// @code
///   // ∫ ‖x‖² dt per sample, beside the kinetic path energy, at zero extra evaluations:
///   auto r = kinflow::integrate(field, kinflow::rk4, grid, X, {},
///                               kinflow::along([](double, const auto& x, const auto&) {
///                                 return x.squaredNorm();
///                               }));
///   r.integrals[0];   // one value per sample
/// @endcode
///
/// An integrand takes one of two forms:
///  - per sample: `g(t, x, v) -> Scalar`, with `x` and `v` the sample's stage state and
///    stage velocity (Eigen column expressions; a `const kinflow::point<Scalar, Dim>&`
///    parameter works too);
///  - batched: `g(T, X, V, G)` writing `G(m) = g(T(m), X.col(m), V.col(m))` into a
///    `per_sample<Scalar>&` already sized to the batch (`T` a `sample_times<Scalar>`). The
///    columns are those the solver is stepping, not necessarily the whole batch in order
///    (tiles of a fixed-grid solve; the unfinished samples of an adaptive one): an integrand
///    must depend on (t, x, v) only, not on a column's position.
///
/// A `std::vector` of integrands of one type given to kinflow::along is one integral per
/// element, for a number of integrals known only at run time (e.g. a Python list of
/// callables behind one type-erased integrand): `along(std::vector<G>{g1, g2})` carries the
/// same integrals as `along(g1, g2)`, in one compiled solve whatever the count.

#include <Eigen/Core>
#include <concepts>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "kinflow/core/batch.hpp"
#include "kinflow/energy/kpe.hpp"
#include "kinflow/integrators/result.hpp"

namespace kinflow {

/// Per-sample integrand `g(t, x, v) -> Scalar` (see the file comment).
template <class G, class Scalar, int Dim>
concept sample_path_integrand =
    requires(G& g, Scalar t, const batch<Scalar, Dim>& X) {
      { g(t, X.col(0), X.col(0)) } -> std::convertible_to<Scalar>;
    };

/// Batched integrand `g(T, X, V, G)` (see the file comment).
template <class G, class Scalar, int Dim>
concept batched_path_integrand =
    requires(G& g, const sample_times<Scalar>& T, const batch<Scalar, Dim>& X, per_sample<Scalar>& out) {
      g(T, X, X, out);
    };

/// An integrand in either form.
template <class G, class Scalar, int Dim>
concept path_integrand = sample_path_integrand<G, Scalar, Dim> || batched_path_integrand<G, Scalar, Dim>;

namespace detail {
template <class T>
struct is_std_vector : std::false_type {};
template <class T, class A>
struct is_std_vector<std::vector<T, A>> : std::true_type {};
/// The element type of a std::vector; T itself otherwise.
template <class T>
struct element_of {
  using type = T;
};
template <class T, class A>
struct element_of<std::vector<T, A>> {
  using type = T;
};
}  // namespace detail

/// The integrands a solve carries beside the state (built by kinflow::along). Their
/// integrals are returned in `solve_result::integrals`, in the order given (a std::vector
/// element: one integral per entry, in its order).
template <class... G>
struct path_integrals {
  std::tuple<G...> integrands;  ///< the integrands, held by value
};

/// Integrals carried along the path: `kinflow::along(g1, g2, …)` (see the file comment).
/// Lvalue integrands are copied, rvalues moved; wrap a stateful one in `std::ref` to keep
/// it shared.
template <class... G>
[[nodiscard]] path_integrals<std::decay_t<G>...> along(G&&... g) {
  return {std::tuple<std::decay_t<G>...>(std::forward<G>(g)...)};
}

namespace detail {

template <class T>
struct is_path_integrals : std::false_type {};
template <class... G>
struct is_path_integrals<path_integrals<G...>> : std::true_type {};

/// True for the bundles kinflow::along returns.
template <class T>
concept path_integral_bundle = is_path_integrals<std::remove_cvref_t<T>>::value;

/// True when every integrand of the bundle has one of the two forms.
template <class Bundle, class Scalar, int Dim>
inline constexpr bool integrands_of = false;
template <class... G, class Scalar, int Dim>
inline constexpr bool integrands_of<path_integrals<G...>, Scalar, Dim> =
    (path_integrand<std::unwrap_reference_t<typename element_of<G>::type>, Scalar, Dim> && ...);

/// Evaluates an integrand of either form on a batch: `G(m) = g(T(m), X.col(m), V.col(m))`.
template <class Integrand, class Scalar, int Dim>
void evaluate_integrand(Integrand& g, const sample_times<Scalar>& T, const batch<Scalar, Dim>& X,
                        const batch<Scalar, Dim>& V, per_sample<Scalar>& G) {
  G.resize(X.cols());
  auto& f = static_cast<std::unwrap_reference_t<Integrand>&>(g);
  using F = std::unwrap_reference_t<Integrand>;
  if constexpr (batched_path_integrand<F, Scalar, Dim>) {
    f(T, X, V, G);
  } else {
    for (Eigen::Index m = 0; m < X.cols(); ++m)
      G(m) = static_cast<Scalar>(f(T(m), X.col(m), V.col(m)));
  }
}

/// The stage sums `Σ_j (w_j h) g_j` of one integral over the columns of one step.
///
/// `add` is called once per stage with that stage's integrand values; `h` is the step,
/// a scalar (every column) or a `sample_times` (one per column). The coefficient `w_j h`
/// is formed first and then multiplies `g_j`, so a scalar and a per-column step give the
/// same rounding. Both the propagated sum (weights `b`) and, for error control, the
/// error sum (weights `b - b̂`) are kept when asked.
template <class Scalar>
class stage_sum {
public:
  /// Starts a step over `n` columns; `with_error` also accumulates the error sum.
  void start(Eigen::Index n, bool with_error) {
    sum_.setZero(n);
    with_error_ = with_error;
    if (with_error) err_.setZero(n);
  }

  /// Adds stage values `g` with weight `b` (and error weight `e`), scaled by the step `h`.
  template <class Step, class Values>
  void add(long double b, long double e, const Step& h, const Values& g) {
    accumulate(sum_, static_cast<Scalar>(b), h, g);
    if (with_error_) accumulate(err_, static_cast<Scalar>(e), h, g);
  }

  /// `Σ_j (b_j h) g_j` of column `m`.
  [[nodiscard]] Scalar sum(Eigen::Index m) const { return sum_(m); }
  /// `Σ_j ((b_j - b̂_j) h) g_j` of column `m` (when started with the error sum).
  [[nodiscard]] Scalar error(Eigen::Index m) const { return err_(m); }
  /// All propagated sums.
  [[nodiscard]] const per_sample<Scalar>& sums() const noexcept { return sum_; }

private:
  template <class Step, class Values>
  static void accumulate(per_sample<Scalar>& acc, Scalar w, const Step& h, const Values& g) {
    if (w == Scalar(0)) return;
    if constexpr (std::is_arithmetic_v<Step>) {
      acc += (w * h) * g;
    } else {
      acc.array() += (w * h.transpose().array()) * g.array();
    }
  }

  per_sample<Scalar> sum_, err_;
  bool with_error_ = false;
};

/// The kinetic path energy's integrand, `g = ½‖ṽ‖²` (kinflow/energy/kpe.hpp).
struct kinetic_energy_integrand {
  template <class Scalar, int Dim>
  void operator()(const sample_times<Scalar>&, const batch<Scalar, Dim>&, const batch<Scalar, Dim>& V,
                  per_sample<Scalar>& G) const {
    G.noalias() = Scalar(0.5) * V.colwise().squaredNorm().transpose();
  }
};

/// One integral carried through a solve: its integrand, how its steps are weighted, its
/// stage sums and its per-sample value. Fixed-grid and adaptive solves drive it the same
/// way: `stage()` after every stage, then `sums()` of an accepted step.
template <class Scalar, class Integrand>
struct path_channel {
  path_channel() = default;
  /// A channel for the integrand `g`.
  explicit path_channel(Integrand g) : integrand(std::move(g)) {}

  Integrand integrand;        ///< g, in either form
  bool enabled = true;        ///< carried at all
  bool absolute = false;      ///< weight steps by |h| (an energy) instead of h
  bool split = false;         ///< also split into early/late at `tau` (the kinetic energy)
  double tau = 0;             ///< the split time
  bool left = false;          ///< left Riemann sum: only the first stage, weight 1
  bool in_error = false;      ///< also accumulate the embedded error sum
  std::int64_t cost = 0;      ///< field evaluations one evaluation of g costs per sample
  stage_sum<Scalar> step;     ///< the current step's stage sums
  per_sample<Scalar> G;       ///< scratch: integrand values of the current stage
  per_sample<Scalar> G_last;  ///< the last stage's values (FSAL: the next first stage)
  per_sample<Scalar> first;   ///< per sample: g at the sample's current point (FSAL cache)
  sample_times<Scalar> T;     ///< scratch: constant stage times of a fixed-grid step
  per_sample<Scalar> value;   ///< per sample: the integral so far
  per_sample<Scalar> early;   ///< per sample, with `split`: steps whose lower end is < tau
  per_sample<Scalar> late;    ///< per sample, with `split`: the other steps

  /// Weight of stage j in the propagated sum.
  template <std::size_t S>
  [[nodiscard]] long double weight(const std::array<long double, S>& b, std::size_t j) const {
    return kpe_stage_weight(b, j, left);
  }

  /// Whether stage j's integrand value is needed at all.
  template <std::size_t S>
  [[nodiscard]] bool needs(const std::array<long double, S>& b, const std::array<long double, S>& e,
                           std::size_t j, bool last_is_next_first) const {
    return weight(b, j) != 0 || (in_error && e[j] != 0) || (last_is_next_first && j + 1 == S);
  }

  /// Evaluates g at a stage (times `t`, a scalar or per column; state X; velocity V).
  template <class Times, int Dim>
  void evaluate(const Times& t, const batch<Scalar, Dim>& X, const batch<Scalar, Dim>& V) {
    if constexpr (std::is_arithmetic_v<Times>) {
      T.setConstant(X.cols(), t);
      evaluate_integrand(integrand, T, X, V, G);
    } else {
      evaluate_integrand(integrand, t, X, V, G);
    }
  }

  /// Adds the current stage values `G` with weights (b_j, e_j); `h` is the signed step
  /// and `habs` its magnitude (a scalar, or one per column).
  template <class Step>
  void accumulate(long double b, long double e, const Step& h, const Step& habs) {
    step.add(b, e, absolute ? habs : h, G);
  }
};

/// Calls f on every element of a tuple; on every entry of an element that is a std::vector
/// (the channels of kinflow::along's vectors), in order.
template <class Tuple, class F>
void for_each_in(Tuple& t, F&& f) {
  auto each = [&](auto& e) {
    if constexpr (is_std_vector<std::remove_cvref_t<decltype(e)>>::value) {
      for (auto& entry : e) f(entry);
    } else {
      f(e);
    }
  };
  std::apply([&](auto&... e) { (each(e), ...); }, t);
}

/// The number of channels for_each_in visits.
template <class Tuple>
[[nodiscard]] std::size_t channel_count(Tuple& t) {
  std::size_t n = 0;
  for_each_in(t, [&](auto&) { ++n; });
  return n;
}

/// The channel of one integrand, or the channels of a vector of them.
template <class Scalar, class G>
auto make_user_channel(const G& g) {
  if constexpr (is_std_vector<G>::value) {
    using E = typename G::value_type;
    std::vector<path_channel<Scalar, E>> out;
    out.reserve(g.size());
    for (const E& e : g) out.emplace_back(e);
    return out;
  } else {
    return path_channel<Scalar, G>{g};
  }
}

/// The channels of a solve: the kinetic energy, the log-likelihood's divergence
/// (`Likelihood`, set up by the caller), then the user's integrands.
template <class Scalar, class Likelihood, class... G>
auto make_channels(const kpe_options& kpe, double tau, const path_integrals<G...>& integrals) {
  using energy_channel = path_channel<Scalar, kinetic_energy_integrand>;
  return std::apply(
      [&](const auto&... g) {
        std::tuple<energy_channel, path_channel<Scalar, Likelihood>, decltype(make_user_channel<Scalar>(g))...>
            channels(energy_channel{}, path_channel<Scalar, Likelihood>{}, make_user_channel<Scalar>(g)...);
        auto& energy = std::get<0>(channels);
        energy.enabled = kpe.enabled;
        energy.absolute = true;
        energy.split = true;
        energy.tau = tau;
        energy.left = kpe.quadrature == kpe_quadrature::left_riemann;
        energy.in_error = kpe.in_error_norm;
        std::get<1>(channels).enabled = false;
        return channels;
      },
      integrals.integrands);
}

/// Calls f on every user channel (after the energy and the likelihood).
template <class Channels, class F>
void for_each_user_channel(Channels& channels, F&& f) {
  std::apply(
      [&](auto&, auto&, auto&... user) {
        auto users = std::forward_as_tuple(user...);
        for_each_in(users, f);
      },
      channels);
}

/// Moves the energy's and the user channels' values into the result.
template <class Scalar, class Channels>
void finish_channels(Channels& channels, solve_result<Scalar>& res) {
  auto& energy = std::get<0>(channels);
  if (energy.enabled) {
    res.kpe.tau = energy.tau;
    res.kpe.total = std::move(energy.value);
    res.kpe.early = std::move(energy.early);
    res.kpe.late = std::move(energy.late);
  }
  for_each_user_channel(channels, [&](auto& user) { res.integrals.push_back(std::move(user.value)); });
}

}  // namespace detail
}  // namespace kinflow
