#pragma once
/// @file
/// @brief The 2D toy datasets of docs/math.md §9.2 by name: 8gaussians, moons,
/// checkerboard, 2spirals, pinwheel, circles, rings, swissroll, 25gaussians.
///
/// The generators themselves, one per recipe with its options, are in namespace
/// kinflow::toy (kinflow/data/toy2d_generators.hpp, included here; it documents the
/// recipes, their seeding and their shuffling).
///
/// `make_dataset(name, n, seed)` selects a recipe by its name with the default options;
/// `dataset_mixture(name)` gives the exact Gaussian mixture of the recipes that are one
/// (8gaussians, 25gaussians), e.g. for a gaussian_mixture_field that samples them exactly.

#include "kinflow/core/batch.hpp"
#include "kinflow/core/errors.hpp"
#include "kinflow/data/toy2d_generators.hpp"

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numbers>
#include <string>
#include <string_view>

namespace kinflow {

/// An isotropic Gaussian mixture in 2D, `p(x) = Σ_k w_k N(x; μ_k, s_k² I)`: the
/// parameters gaussian_mixture_field takes (weights, means, stds).
struct isotropic_gaussian_mixture {
  Eigen::VectorXd weights; ///< w_k, K weights summing to 1
  batch<double, 2> means;  ///< μ_k, one column per component (2 × K)
  Eigen::VectorXd stds;    ///< s_k, the standard deviation of component k on each axis
};

namespace toy {

/// The exact mixture eight_gaussians() draws from with options @p o: K = components equal
/// weights 1/K, means `radius·(cos 2πk/K, sin 2πk/K) / divisor`, stds `std / divisor`.
/// @throws kinflow::invalid_argument for the options eight_gaussians() rejects.
[[nodiscard]] inline isotropic_gaussian_mixture eight_gaussians_mixture(
    const eight_gaussians_options& o = {}) {
  detail::data_require_nonnegative("eight_gaussians_options::radius", o.radius);
  detail::data_require_nonnegative("eight_gaussians_options::std", o.std);
  detail::data_require_positive("eight_gaussians_options::divisor", o.divisor);
  detail::require(o.components >= 1, "eight_gaussians_options::components", o.components,
                  "expected at least 1 component");
  isotropic_gaussian_mixture m;
  m.means.resize(2, o.components);
  for (int k = 0; k < o.components; ++k) {
    const double theta = 2.0 * std::numbers::pi * static_cast<double>(k) / o.components;
    m.means(0, k) = o.radius * std::cos(theta) / o.divisor;
    m.means(1, k) = o.radius * std::sin(theta) / o.divisor;
  }
  m.weights = Eigen::VectorXd::Constant(o.components, 1.0 / o.components);
  m.stds = Eigen::VectorXd::Constant(o.components, o.std / o.divisor);
  return m;
}

/// The exact mixture twenty_five_gaussians() draws from with options @p o: K = grid²
/// equal weights 1/K, means `spacing·(a - (grid-1)/2, b - (grid-1)/2) / divisor` (component
/// `a·grid + b`), stds `std / divisor`.
/// @throws kinflow::invalid_argument for the options twenty_five_gaussians() rejects.
[[nodiscard]] inline isotropic_gaussian_mixture twenty_five_gaussians_mixture(
    const twenty_five_gaussians_options& o = {}) {
  detail::require(o.grid >= 1, "twenty_five_gaussians_options::grid", o.grid,
                  "expected a grid of at least 1 x 1 centres");
  detail::data_require_nonnegative("twenty_five_gaussians_options::spacing", o.spacing);
  detail::data_require_nonnegative("twenty_five_gaussians_options::std", o.std);
  detail::data_require_positive("twenty_five_gaussians_options::divisor", o.divisor);
  const int k = o.grid * o.grid;
  const double mid = 0.5 * (o.grid - 1);
  isotropic_gaussian_mixture m;
  m.means.resize(2, k);
  for (int a = 0; a < o.grid; ++a)
    for (int b = 0; b < o.grid; ++b) {
      m.means(0, a * o.grid + b) = o.spacing * (a - mid) / o.divisor;
      m.means(1, a * o.grid + b) = o.spacing * (b - mid) / o.divisor;
    }
  m.weights = Eigen::VectorXd::Constant(k, 1.0 / k);
  m.stds = Eigen::VectorXd::Constant(k, o.std / o.divisor);
  return m;
}

}  // namespace toy

/// The names make_dataset() accepts, in the order of docs/math.md §9.2.
inline constexpr std::array<std::string_view, 9> dataset_names{
    "8gaussians", "moons", "checkerboard", "2spirals", "pinwheel",
    "circles",    "rings", "swissroll",    "25gaussians"};

/// True when @p name is one of dataset_names.
[[nodiscard]] inline bool is_dataset_name(std::string_view name) {
  for (auto known : dataset_names)
    if (known == name) return true;
  return false;
}

/// `n` points of the toy dataset called @p name (one of dataset_names) with its default
/// options, seeded by @p seed: the same as calling the generator in namespace toy.
///
/// @throws kinflow::invalid_argument naming the valid names if @p name is unknown.
template <class Scalar = double>
[[nodiscard]] batch<Scalar, 2> make_dataset(std::string_view name, Eigen::Index n,
                                            std::uint64_t seed) {
  if (name == "8gaussians") return toy::eight_gaussians<Scalar>(n, seed);
  if (name == "moons") return toy::moons<Scalar>(n, seed);
  if (name == "checkerboard") return toy::checkerboard<Scalar>(n, seed);
  if (name == "2spirals") return toy::two_spirals<Scalar>(n, seed);
  if (name == "pinwheel") return toy::pinwheel<Scalar>(n, seed);
  if (name == "circles") return toy::circles<Scalar>(n, seed);
  if (name == "rings") return toy::rings<Scalar>(n, seed);
  if (name == "swissroll") return toy::swissroll<Scalar>(n, seed);
  if (name == "25gaussians") return toy::twenty_five_gaussians<Scalar>(n, seed);
  std::string expected = "expected one of";
  for (std::size_t i = 0; i < dataset_names.size(); ++i) {
    expected += i == 0 ? " " : ", ";
    expected += dataset_names[i];
  }
  throw invalid_argument(detail::invalid_message("dataset", "\"" + std::string(name) + "\"",
                                                 expected));
}

/// The toy datasets that are exact Gaussian mixtures (dataset_mixture() gives them).
inline constexpr std::array<std::string_view, 2> mixture_dataset_names{"8gaussians",
                                                                       "25gaussians"};

/// True when @p name is one of mixture_dataset_names.
[[nodiscard]] inline bool is_mixture_dataset(std::string_view name) {
  for (auto known : mixture_dataset_names)
    if (known == name) return true;
  return false;
}

/// The exact Gaussian mixture the toy dataset @p name is drawn from with its default
/// options (make_dataset(name, n, seed) samples it): toy::eight_gaussians_mixture() or
/// toy::twenty_five_gaussians_mixture(). Its means, weights and stds are those of
/// gaussian_mixture_field, whose flow then transports N(0, I) to the dataset's
/// distribution exactly.
///
/// @throws kinflow::invalid_argument naming the mixture datasets if @p name is not one of
///   mixture_dataset_names (the other recipes are not Gaussian mixtures).
[[nodiscard]] inline isotropic_gaussian_mixture dataset_mixture(std::string_view name) {
  if (name == "8gaussians") return toy::eight_gaussians_mixture();
  if (name == "25gaussians") return toy::twenty_five_gaussians_mixture();
  static_assert(mixture_dataset_names.size() == 2, "the message below names both");
  throw invalid_argument(detail::invalid_message(
      "dataset", "\"" + std::string(name) + "\"",
      "expected a dataset that is a Gaussian mixture: " + std::string(mixture_dataset_names[0]) +
          " or " + std::string(mixture_dataset_names[1])));
}

}  // namespace kinflow
