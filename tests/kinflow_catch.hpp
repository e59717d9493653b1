#pragma once
// The one include for Catch2 in kinflow's tests; works with Catch2 v2 and v3.
// CMake says which major version it found (KINFLOW_CATCH2_V2 / KINFLOW_CATCH2_V3); without
// that, the v3 header is used when it exists.

#if defined(KINFLOW_CATCH2_V3) || \
    (!defined(KINFLOW_CATCH2_V2) && __has_include(<catch2/catch_all.hpp>))
#include <catch2/catch_all.hpp>
#else
#include <catch2/catch.hpp>
#endif

// Names that differ between Catch2 v2 and v3, under one spelling for kinflow's tests:
// `Approx` (v3 moved it into namespace Catch) and `kinflow_test::contains` (substring
// matcher: v2 `Contains`, v3 `ContainsSubstring`).
#include <string>
#if defined(CATCH_VERSION_MAJOR) && CATCH_VERSION_MAJOR >= 3
using Catch::Approx;
namespace kinflow_test {
inline auto contains(const std::string& s) { return Catch::Matchers::ContainsSubstring(s); }
}  // namespace kinflow_test
#else
namespace kinflow_test {
inline auto contains(const std::string& s) { return Catch::Matchers::Contains(s); }
}  // namespace kinflow_test
#endif
