#pragma once
/// @file
/// @brief Private: a non-owning reference to a callable of one signature, of one type
/// whatever the callable's.
///
/// The closed-form fields' engine takes each column's parameters and hands back each
/// column's statistics through these, and the solvers' step loops call their observers
/// through them, so that those loops are compiled once per scalar type, dimension and
/// method, not once per field method, caller or observer. They are called once per column
/// or per step, beside work over a whole batch, so the indirect call costs nothing.

#include <memory>
#include <type_traits>
#include <utility>

namespace kinflow::detail {

template <class Signature>
class function_ref;

/// Refers to a callable `f` with `f(args...)` convertible to `R` (const or not; a
/// temporary only for the full expression that creates the reference), or to nothing.
template <class R, class... Args>
class function_ref<R(Args...)> {
public:
  /// Refers to nothing; may not be called.
  function_ref() noexcept = default;

  /// Refers to @p f, which must outlive the reference.
  template <class F>
    requires(!std::is_same_v<std::remove_cvref_t<F>, function_ref> && std::is_invocable_r_v<R, F&, Args...>)
  function_ref(F&& f) noexcept  // NOLINT(google-explicit-constructor): converts, as std::function does
      : object_(const_cast<void*>(static_cast<const void*>(std::addressof(f)))),
        call_([](void* o, Args... args) -> R {
          return (*static_cast<std::remove_reference_t<F>*>(o))(std::forward<Args>(args)...);
        }) {}

  /// Whether it refers to a callable.
  explicit operator bool() const noexcept { return call_ != nullptr; }

  /// Calls the callable.
  R operator()(Args... args) const { return call_(object_, std::forward<Args>(args)...); }

private:
  void* object_ = nullptr;
  R (*call_)(void*, Args...) = nullptr;
};

}  // namespace kinflow::detail
