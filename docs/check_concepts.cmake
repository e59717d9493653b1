# Part of the `docs` target: every C++20 concept of the public headers has a `///` comment.
# Doxygen documents concepts but does not warn about undocumented ones, so this check does.
#
#   cmake -DINCLUDE_DIR=<source>/include/kinflow -P docs/check_concepts.cmake
#
# A concept counts as documented when the line before its `template <...>` (and any
# `requires` lines) starts with `///`. Headers under detail/ are private and not checked.

cmake_minimum_required(VERSION 3.25)

if(NOT INCLUDE_DIR)
  message(FATAL_ERROR "check_concepts.cmake: pass -DINCLUDE_DIR=<source>/include/kinflow")
endif()

file(GLOB_RECURSE _headers "${INCLUDE_DIR}/*.hpp")
set(_undocumented "")
set(_count 0)
foreach(_header IN LISTS _headers)
  if(_header MATCHES "/detail/")
    continue()
  endif()
  # One list element per line; `;` and brackets, which CMake lists treat specially, become
  # harmless characters first.
  file(READ "${_header}" _text)
  string(REPLACE ";" "," _text "${_text}")
  string(REPLACE "[" "(" _text "${_text}")
  string(REPLACE "]" ")" _text "${_text}")
  string(REPLACE "\n" ";" _lines "${_text}")
  set(_number 0)
  set(_before "")
  foreach(_line IN LISTS _lines)
    math(EXPR _number "${_number} + 1")
    if(_line MATCHES "^[ \t]*concept [A-Za-z_][A-Za-z_0-9]*")
      if(NOT _before MATCHES "^[ \t]*///")
        string(STRIP "${_line}" _stripped)
        string(APPEND _undocumented "${_header}:${_number}: undocumented concept: ${_stripped}\n")
        math(EXPR _count "${_count} + 1")
      endif()
    endif()
    if(NOT _line MATCHES "^[ \t]*(template[ \t]*<|requires[ \t(])")
      set(_before "${_line}")
    endif()
  endforeach()
endforeach()

if(_count GREATER 0)
  message(FATAL_ERROR "${_undocumented}${_count} undocumented concept(s) in the public headers")
endif()
