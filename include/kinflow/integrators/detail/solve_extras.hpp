#pragma once
/// @file
/// @brief Private: sorting the optional trailing arguments of the solve front doors (a
/// step-size controller, integrals along the path, an observer) by what they are.

#include <cstddef>
#include <tuple>
#include <type_traits>
#include <utility>

#include "kinflow/detail/function_ref.hpp"
#include "kinflow/integrators/controller.hpp"
#include "kinflow/integrators/quadrature.hpp"
#include "kinflow/integrators/result.hpp"

namespace kinflow::detail {

/// The kinds of trailing arguments.
enum class extra_kind { controller, integrals, observer };

template <class E>
inline constexpr extra_kind kind_of = step_size_controller<std::remove_cvref_t<E>> ? extra_kind::controller
                                      : path_integral_bundle<E>                    ? extra_kind::integrals
                                                                                   : extra_kind::observer;

/// Number of trailing arguments of kind K.
template <extra_kind K, class... E>
inline constexpr std::size_t count_kind = ((kind_of<E> == K ? 1 : 0) + ... + 0);

/// Index of the first trailing argument of kind K (sizeof...(E) when none).
template <extra_kind K, class... E>
constexpr std::size_t index_of_kind() {
  constexpr bool match[] = {kind_of<E> == K..., false};
  for (std::size_t i = 0; i < sizeof...(E); ++i)
    if (match[i]) return i;
  return sizeof...(E);
}

/// The trailing argument of kind K, or `fallback` when there is none.
template <extra_kind K, class Fallback, class... E>
decltype(auto) extra_or(Fallback&& fallback, E&&... e) {
  constexpr std::size_t i = index_of_kind<K, E...>();
  if constexpr (i == sizeof...(E))
    return std::forward<Fallback>(fallback);
  else
    return std::get<i>(std::forward_as_tuple(std::forward<E>(e)...));
}

/// True when the observer is not kinflow::no_observer (then observing costs nothing).
template <class Obs>
inline constexpr bool is_active_observer = !std::is_same_v<std::remove_cvref_t<Obs>, no_observer>;

/// The observer as the step loops take it, one type per view whatever the observer's: a
/// reference to it, or to nothing for kinflow::no_observer.
template <class View, class Obs>
[[nodiscard]] function_ref<void(const View&)> observer_ref(Obs& observer) noexcept {
  if constexpr (is_active_observer<Obs>)
    return function_ref<void(const View&)>(observer);
  else
    return {};
}

/// An observer of views of type View (or no_observer).
template <class Obs, class View>
concept observer_of = std::is_same_v<std::remove_cvref_t<Obs>, no_observer> ||
                      std::invocable<Obs&, const View&>;

}  // namespace kinflow::detail
