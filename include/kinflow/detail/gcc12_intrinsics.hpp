#pragma once
/// @file
/// @brief Private: GCC before 13 reports false warnings inside its own AVX-512 intrinsics
/// wherever Eigen's vectorised code inlines them under `-march=native`: "may be used
/// uninitialized" for the `__m512 __Y = __Y;` idiom of avx512fintrin.h (GCC bug 105593), and
/// "array subscript is partly outside array bounds" for 64-byte loads on branches that a
/// small fixed-size vector never takes. Including the intrinsics first, with those warnings
/// off for that header alone, keeps them on for every other line of the program. `kinflow::native` force-includes this file when the
/// compiler is GCC < 13; elsewhere it is empty.

#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13 && \
    (defined(__x86_64__) || defined(__i386__))
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Warray-bounds"
#include <immintrin.h>
#pragma GCC diagnostic pop
#endif
