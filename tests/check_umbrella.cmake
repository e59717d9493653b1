# Usage: cmake -DINCLUDE_DIR=<repo>/include -P check_umbrella.cmake
#
# Fails when a public header (anything under kinflow/ but a detail/ or kernels/ folder) is
# not included by the umbrella header kinflow/kinflow.hpp, naming the headers to add there.

file(READ "${INCLUDE_DIR}/kinflow/kinflow.hpp" _umbrella)
file(GLOB_RECURSE _headers RELATIVE "${INCLUDE_DIR}" "${INCLUDE_DIR}/kinflow/*.hpp")
list(SORT _headers)
set(_missing "")
foreach(_header IN LISTS _headers)
  # detail/ and kernels/ folders are private; the TorchScript adapter (libtorch) and the
  # MPI layer (MPI) are included on their own.
  if(_header MATCHES "^kinflow/(.*/)?(detail|kernels)/" OR _header STREQUAL "kinflow/kinflow.hpp" OR
     _header STREQUAL "kinflow/models/torchscript.hpp" OR _header MATCHES "^kinflow/mpi/")
    continue()
  endif()
  string(FIND "${_umbrella}" "#include \"${_header}\"" _quoted)
  string(FIND "${_umbrella}" "#include <${_header}>" _angled)
  if(_quoted EQUAL -1 AND _angled EQUAL -1)
    list(APPEND _missing "${_header}")
  endif()
endforeach()
if(_missing)
  list(JOIN _missing "\n  " _list)
  message(FATAL_ERROR "public headers missing from include/kinflow/kinflow.hpp; add:\n  ${_list}")
endif()
message("kinflow.hpp includes every public header")
