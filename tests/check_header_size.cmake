# Usage: cmake -DINCLUDE_DIR=<repo>/include -P check_header_size.cmake
#
# Fails when a header under include/kinflow/ has more than 450 lines, naming it: a header
# that long does several things, and splitting it where it is natural keeps each readable.

file(GLOB_RECURSE _headers RELATIVE "${INCLUDE_DIR}" "${INCLUDE_DIR}/kinflow/*.hpp")
set(_long "")
foreach(_header IN LISTS _headers)
  file(READ "${INCLUDE_DIR}/${_header}" _text)
  string(REGEX MATCHALL "\n" _newlines "${_text}")
  list(LENGTH _newlines _count)
  if(_count GREATER 450)
    list(APPEND _long "${_header} (${_count} lines)")
  endif()
endforeach()
if(_long)
  list(JOIN _long "\n  " _list)
  message(FATAL_ERROR "headers over 450 lines; split them where it is natural:\n  ${_list}")
endif()
message("every header has at most 450 lines")
