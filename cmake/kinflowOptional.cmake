# The optional companions of kinflow::kinflow, shared by kinflow's own build and by the
# installed package (kinflowConfig.cmake includes this file):
#
#   kinflow::native  compile for the host CPU's vector instructions (-march=native), when
#                    the compiler takes the flag; an empty target otherwise.
#   kinflow::blas    route kinflow's large matrix products through BLAS (OpenBLAS
#                    preferred; see kinflow/detail/gemm.hpp).
#
# Both are interface targets a consumer links next to kinflow::kinflow; the library target
# itself carries no flags.

include_guard(GLOBAL)
include(CheckCXXCompilerFlag)

# kinflow_native_flags(<out-var>): the host-CPU flag this C++ compiler takes, or nothing
# (cross-compiling, MSVC, or a compiler that rejects -march=native).
function(kinflow_native_flags out)
  set(_flags "")
  if(NOT CMAKE_CROSSCOMPILING AND CMAKE_CXX_COMPILER_LOADED
     AND CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang|IntelLLVM")
    check_cxx_compiler_flag("-march=native" KINFLOW_CXX_ACCEPTS_MARCH_NATIVE)
    if(KINFLOW_CXX_ACCEPTS_MARCH_NATIVE)
      set(_flags -march=native)
    endif()
  endif()
  set(${out} "${_flags}" PARENT_SCOPE)
endfunction()

# An interface target: imported (the installed package's) or not (kinflow's own build).
macro(_kinflow_interface_target name imported)
  if(${imported})
    add_library(${name} INTERFACE IMPORTED)
  else()
    add_library(${name} INTERFACE)
  endif()
endmacro()

# kinflow_add_native_target(<name> <kinflow-include-dir> [IMPORTED])
# With GCC < 13 the target also force-includes kinflow/detail/gcc12_intrinsics.hpp, which
# silences that compiler's false uninitialized warnings inside its AVX-512 intrinsics
# header, and only there.
function(kinflow_add_native_target name include_dir)
  cmake_parse_arguments(PARSE_ARGV 2 arg "IMPORTED" "" "")
  if(TARGET ${name})
    return()
  endif()
  _kinflow_interface_target(${name} ${arg_IMPORTED})
  kinflow_native_flags(_flags)
  if(_flags)
    if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
      list(APPEND _flags "SHELL:-include ${include_dir}/kinflow/detail/gcc12_intrinsics.hpp")
    endif()
    set_property(TARGET ${name} PROPERTY INTERFACE_COMPILE_OPTIONS ${_flags})
  else()
    message(STATUS "kinflow: the C++ compiler has no -march=native here; ${name} adds no flags")
  endif()
endfunction()

# kinflow_find_blas(<found-var> <openblas-var>): finds BLAS with CMake's FindBLAS, OpenBLAS
# first unless BLA_VENDOR is set. <openblas-var> is TRUE when the library found is
# OpenBLAS (kinflow then keeps OpenBLAS single-threaded inside its own worker threads).
macro(kinflow_find_blas _found_var _openblas_var)
  set(${_openblas_var} FALSE)
  if(NOT DEFINED BLA_VENDOR)
    set(BLA_VENDOR OpenBLAS)
    find_package(BLAS QUIET)
    unset(BLA_VENDOR)
    if(BLAS_FOUND)
      set(${_openblas_var} TRUE)
    else()
      find_package(BLAS QUIET)
    endif()
  else()
    find_package(BLAS QUIET)
    if(BLAS_FOUND AND BLA_VENDOR MATCHES "^OpenBLAS")
      set(${_openblas_var} TRUE)
    endif()
  endif()
  set(${_found_var} ${BLAS_FOUND})
endmacro()

# kinflow_add_blas_target(<name> <kinflow-target> [IMPORTED]): the target when BLAS is
# found; nothing (and no error) otherwise: check with if(TARGET <name>).
function(kinflow_add_blas_target name kinflow_target)
  cmake_parse_arguments(PARSE_ARGV 2 arg "IMPORTED" "" "")
  if(TARGET ${name})
    return()
  endif()
  kinflow_find_blas(_found _openblas)
  if(NOT _found)
    return()
  endif()
  _kinflow_interface_target(${name} ${arg_IMPORTED})
  set(_defs KINFLOW_USE_BLAS=1)
  if(_openblas)
    list(APPEND _defs KINFLOW_BLAS_OPENBLAS=1)
  endif()
  set_property(TARGET ${name} PROPERTY INTERFACE_COMPILE_DEFINITIONS ${_defs})
  if(TARGET BLAS::BLAS)
    set(_link BLAS::BLAS)
    # A parent project that adds kinflow with add_subdirectory links kinflow_blas from its
    # own directories, where FindBLAS's directory-scoped target would not be seen.
    if(NOT arg_IMPORTED)
      get_target_property(_global BLAS::BLAS IMPORTED_GLOBAL)
      if(NOT _global)
        set_target_properties(BLAS::BLAS PROPERTIES IMPORTED_GLOBAL TRUE)
      endif()
    endif()
  else()  # FindBLAS before CMake 3.18 makes no target
    set(_link ${BLAS_LIBRARIES} ${BLAS_LINKER_FLAGS})
  endif()
  set_property(TARGET ${name} PROPERTY INTERFACE_LINK_LIBRARIES ${kinflow_target} ${_link})
  list(JOIN BLAS_LIBRARIES " " _libs)
  message(STATUS "kinflow: BLAS products through ${_libs}")
endfunction()
