#pragma once
/// @file
/// @brief kinflow's version number.
///
/// This header is the only place the version lives: the top-level CMakeLists.txt reads
/// the three `KINFLOW_VERSION_*` numbers from it, so the installed package version and
/// the macros below cannot disagree.

/// Major version: incremented for incompatible API changes.
#define KINFLOW_VERSION_MAJOR 0
/// Minor version: incremented for backwards-compatible additions.
#define KINFLOW_VERSION_MINOR 1
/// Patch version: incremented for backwards-compatible fixes.
#define KINFLOW_VERSION_PATCH 0

/// The version as one integer, `major * 10000 + minor * 100 + patch`, for `#if` comparisons.
#define KINFLOW_VERSION \
  (KINFLOW_VERSION_MAJOR * 10000 + KINFLOW_VERSION_MINOR * 100 + KINFLOW_VERSION_PATCH)

/// @cond KINFLOW_DETAIL
#define KINFLOW_DETAIL_STRINGIFY_IMPL(x) #x
#define KINFLOW_DETAIL_STRINGIFY(x) KINFLOW_DETAIL_STRINGIFY_IMPL(x)
/// @endcond

/// The version as a string literal, `"major.minor.patch"` (e.g. `"0.1.0"`), built from the
/// three numbers above so that it cannot drift from them.
#define KINFLOW_VERSION_STRING                        \
  KINFLOW_DETAIL_STRINGIFY(KINFLOW_VERSION_MAJOR)     \
  "." KINFLOW_DETAIL_STRINGIFY(KINFLOW_VERSION_MINOR) \
  "." KINFLOW_DETAIL_STRINGIFY(KINFLOW_VERSION_PATCH)
