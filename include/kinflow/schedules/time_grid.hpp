#pragma once
/// @file
/// @brief Time grids walked by fixed-step integrators.
///
/// A grid is a strictly monotone sequence `t_0, t_1, ..., t_N` (N >= 1 steps).
/// Increasing grids integrate forward (noise to data, t = 0 to 1); decreasing grids
/// integrate backward (data to noise, e.g. for likelihoods) with the same code.

#include <cmath>
#include <cstddef>
#include <numbers>
#include <string>
#include <utility>
#include <vector>

#include "kinflow/core/errors.hpp"

namespace kinflow {

/// A validated, strictly monotone sequence of times `t_0, ..., t_N`.
template <class T = double>
class time_grid {
public:
  using value_type = T;

  /// Wraps user-given times. Throws kinflow::invalid_argument unless there are at
  /// least two finite times, strictly increasing or strictly decreasing throughout.
  explicit time_grid(std::vector<T> times) : t_(std::move(times)) { validate(); }

  /// Uniform grid `t_i = t0 + (t1 - t0) i / N`, i = 0..N (the endpoints are exact).
  [[nodiscard]] static time_grid uniform(std::size_t steps, T t0 = T(0), T t1 = T(1)) {
    return mapped(steps, t0, t1, [](T s) { return s; });
  }

  /// Cosine grid `t_i = t0 + (t1 - t0) * ½(1 - cos(π i / N))`: small steps at both ends.
  [[nodiscard]] static time_grid cosine(std::size_t steps, T t0 = T(0), T t1 = T(1)) {
    return mapped(steps, t0, t1,
                  [](T s) { return T(0.5) * (T(1) - std::cos(std::numbers::pi_v<T> * s)); });
  }

  /// Grid `t_i = t0 + (t1 - t0) * g(i / N)` for a map `g` of [0, 1] onto itself with
  /// `g(0) = 0`, `g(1) = 1`; the endpoints are set exactly. The result is validated.
  template <class Map>
  [[nodiscard]] static time_grid mapped(std::size_t steps, T t0, T t1, Map&& g) {
    detail::require(steps >= 1, "steps", steps, "expected at least 1");
    detail::require(std::isfinite(t0), "t0", t0, "expected a finite time");
    detail::require(std::isfinite(t1), "t1", t1, "expected a finite time");
    detail::require(t0 != t1, "t1", t1, "expected t1 != t0");
    std::vector<T> t(steps + 1);
    const T n = static_cast<T>(steps);
    t.front() = t0;
    for (std::size_t i = 1; i < steps; ++i) t[i] = t0 + (t1 - t0) * g(static_cast<T>(i) / n);
    t.back() = t1;
    return time_grid(std::move(t));
  }

  /// Number of steps N (one fewer than the number of times).
  [[nodiscard]] std::size_t steps() const noexcept { return t_.size() - 1; }
  /// The times `t_0 ... t_N`.
  [[nodiscard]] const std::vector<T>& times() const noexcept { return t_; }
  /// `t_i`.
  [[nodiscard]] T operator[](std::size_t i) const { return t_[i]; }
  /// First time `t_0`.
  [[nodiscard]] T front() const { return t_.front(); }
  /// Last time `t_N`.
  [[nodiscard]] T back() const { return t_.back(); }
  /// +1 for an increasing (forward) grid, -1 for a decreasing (backward) one.
  [[nodiscard]] int direction() const { return t_[1] > t_[0] ? 1 : -1; }
  /// The same times in reverse order (integrates the other way).
  [[nodiscard]] time_grid reversed() const { return time_grid(std::vector<T>(t_.rbegin(), t_.rend())); }

private:
  void validate() const {
    detail::require(t_.size() >= 2, "time grid size", t_.size(),
                    "expected at least 2 times (1 step)");
    for (std::size_t i = 0; i < t_.size(); ++i)
      if (!std::isfinite(t_[i]))
        detail::require(false, "times[" + std::to_string(i) + "]", t_[i], "expected a finite time");
    const bool up = t_[1] > t_[0];
    for (std::size_t i = 1; i < t_.size(); ++i) {
      const bool ok = up ? t_[i] > t_[i - 1] : t_[i] < t_[i - 1];
      if (!ok)
        detail::require(false, "times[" + std::to_string(i) + "]", t_[i],
                        std::string("expected strictly ") + (up ? "increasing" : "decreasing") +
                            " times (times[" + std::to_string(i - 1) +
                            "] = " + detail::to_text(t_[i - 1]) + ")");
    }
  }

  std::vector<T> t_;
};

}  // namespace kinflow
