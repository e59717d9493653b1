#pragma once
/// @file
/// @brief The 2D toy datasets of docs/math.md §9.2 by name: 8gaussians, moons,
/// checkerboard, 2spirals, pinwheel, circles, rings, swissroll, 25gaussians.
///
/// The generators themselves, one per recipe with its options, are in namespace
/// kinflow::toy (kinflow/data/toy2d_generators.hpp and toy2d_shuffled.hpp, included here;
/// they document the recipes, their seeding, their shuffling and their labels).
///
/// `make_dataset(name, n, seed)` selects a recipe by its name with the default options;
/// `make_labelled_dataset(name, n, seed)` gives the same points with each one's natural
/// class (the recipe's component, arc, arm, ring or cell; dataset_classes(name) classes);
/// `dataset_mixture(name)` gives the exact Gaussian mixture of the recipes that are one
/// (8gaussians, 25gaussians), e.g. for a gaussian_mixture_field that samples them exactly.

#include "kinflow/core/batch.hpp"
#include "kinflow/core/errors.hpp"
#include "kinflow/data/toy2d_generators.hpp"
#include "kinflow/data/toy2d_shuffled.hpp"

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

/// Number of classes of eight_gaussians()'s labels with options @p o: components.
[[nodiscard]] inline Eigen::Index class_count(const eight_gaussians_options& o) {
  return o.components;
}
/// Number of classes of twenty_five_gaussians()'s labels with options @p o: grid².
[[nodiscard]] inline Eigen::Index class_count(const twenty_five_gaussians_options& o) {
  return Eigen::Index{o.grid} * o.grid;
}
/// Number of classes of moons()'s labels: 2 (the arcs).
[[nodiscard]] inline Eigen::Index class_count(const moons_options&) { return 2; }
/// Number of classes of checkerboard()'s labels with options @p o: the cells²/2 filled cells.
[[nodiscard]] inline Eigen::Index class_count(const checkerboard_options& o) {
  return Eigen::Index{o.cells} * o.cells / 2;
}
/// Number of classes of two_spirals()'s labels: 2 (the arms).
[[nodiscard]] inline Eigen::Index class_count(const two_spirals_options&) { return 2; }
/// Number of classes of pinwheel()'s labels with options @p o: arms.
[[nodiscard]] inline Eigen::Index class_count(const pinwheel_options& o) { return o.arms; }
/// Number of classes of circles()'s labels: 2 (the circles).
[[nodiscard]] inline Eigen::Index class_count(const circles_options&) { return 2; }
/// Number of classes of rings()'s labels with options @p o: rings.
[[nodiscard]] inline Eigen::Index class_count(const rings_options& o) { return o.rings; }
/// Number of classes of swissroll()'s labels with options @p o: classes (bins of t).
[[nodiscard]] inline Eigen::Index class_count(const swissroll_options& o) { return o.classes; }

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

namespace detail {

/// Throws kinflow::invalid_argument for the unknown dataset @p name, naming the valid ones.
[[noreturn]] inline void toy_unknown_dataset(std::string_view name) {
  std::string expected = "expected one of";
  for (std::size_t i = 0; i < dataset_names.size(); ++i) {
    expected += i == 0 ? " " : ", ";
    expected += dataset_names[i];
  }
  throw invalid_argument(detail::invalid_message("dataset", "\"" + std::string(name) + "\"",
                                                 expected));
}

/// The recipe called @p name with its default options, and its labels when @p labels is not
/// null; also the number of classes in @p classes when that is not null.
template <class Scalar>
[[nodiscard]] batch<Scalar, 2> toy_by_name(std::string_view name, Eigen::Index n,
                                           std::uint64_t seed, class_labels* labels,
                                           Eigen::Index* classes = nullptr) {
  auto run = [&](auto generate, const auto& options) {
    if (classes != nullptr) *classes = toy::class_count(options);
    return generate(n, seed, options, labels);
  };
  if (name == "8gaussians")
    return run(toy::eight_gaussians<Scalar>, toy::eight_gaussians_options{});
  if (name == "moons") return run(toy::moons<Scalar>, toy::moons_options{});
  if (name == "checkerboard") return run(toy::checkerboard<Scalar>, toy::checkerboard_options{});
  if (name == "2spirals") return run(toy::two_spirals<Scalar>, toy::two_spirals_options{});
  if (name == "pinwheel") return run(toy::pinwheel<Scalar>, toy::pinwheel_options{});
  if (name == "circles") return run(toy::circles<Scalar>, toy::circles_options{});
  if (name == "rings") return run(toy::rings<Scalar>, toy::rings_options{});
  if (name == "swissroll") return run(toy::swissroll<Scalar>, toy::swissroll_options{});
  if (name == "25gaussians")
    return run(toy::twenty_five_gaussians<Scalar>, toy::twenty_five_gaussians_options{});
  toy_unknown_dataset(name);
}

}  // namespace detail

/// `n` points of the toy dataset called @p name (one of dataset_names) with its default
/// options, seeded by @p seed: the same as calling the generator in namespace toy.
///
/// @throws kinflow::invalid_argument naming the valid names if @p name is unknown.
template <class Scalar = double>
[[nodiscard]] batch<Scalar, 2> make_dataset(std::string_view name, Eigen::Index n,
                                            std::uint64_t seed) {
  return detail::toy_by_name<Scalar>(name, n, seed, nullptr);
}

/// Points of a toy dataset with the natural class of each (make_labelled_dataset()).
template <class Scalar = double>
struct labelled_dataset {
  batch<Scalar, 2> points;  ///< 2 × n, one column per point
  class_labels labels;      ///< n entries: labels(j) is the class of column j, in [0, classes)
  Eigen::Index classes = 0; ///< the recipe's number of classes (a small n may miss some)
};

/// The points of make_dataset(name, n, seed), unchanged, with each point's natural class:
/// 8gaussians the component (8), 25gaussians the component a·5 + b (25, as in
/// dataset_mixture()), moons the arc (0 upper, 1 lower), checkerboard the filled cell (8),
/// 2spirals the arm (2), pinwheel the arm (5), circles the circle (0 outer, 1 inner), rings
/// the ring (4, 0 the outer one), swissroll the quarter of the roll parameter's range (4,
/// 0 the innermost; the roll has no natural class). The generators in namespace toy
/// document each.
///
/// @throws kinflow::invalid_argument naming the valid names if @p name is unknown.
template <class Scalar = double>
[[nodiscard]] labelled_dataset<Scalar> make_labelled_dataset(std::string_view name,
                                                             Eigen::Index n,
                                                             std::uint64_t seed) {
  labelled_dataset<Scalar> out;
  out.points = detail::toy_by_name<Scalar>(name, n, seed, &out.labels, &out.classes);
  return out;
}

/// The number of classes of the labels of the toy dataset @p name with its default options
/// (labelled_dataset::classes): 8, 2, 8, 2, 5, 2, 4, 4 and 25 in the order of dataset_names.
///
/// @throws kinflow::invalid_argument naming the valid names if @p name is unknown.
[[nodiscard]] inline Eigen::Index dataset_classes(std::string_view name) {
  Eigen::Index classes = 0;  // from the recipe's options; no point is drawn for n = 0
  (void)detail::toy_by_name<double>(name, 0, 0, nullptr, &classes);
  return classes;
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
