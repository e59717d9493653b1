# Drives the consumer checks (cmake -P):
#
#   -DMODE=install   -DKINFLOW_BUILD_DIR=<dir> -DPREFIX=<dir>
#       installs kinflow from its build tree into a fresh PREFIX;
#   -DMODE=consumer  -DSOURCE=<dir> -DBINARY=<dir> [-DPREFIX=<dir>] [-DKINFLOW_SOURCE_DIR=<dir>]
#       configures, builds and runs a consumer project from scratch and checks that it
#       prints "kinflow consumer: version <EXPECT_VERSION>".
#
# Common: KINFLOW_CMAKE_GENERATOR, KINFLOW_CXX_COMPILER, KINFLOW_CONFIG, KINFLOW_EIGEN_DIR,
# KINFLOW_EXPECT_BLAS (the consumer must then get kinflow::blas).

function(run_step what)
  list(JOIN ARGN " " _line)
  message("-- ${what}: ${_line}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE _result
                  OUTPUT_VARIABLE _output ERROR_VARIABLE _output)
  message("${_output}")
  if(NOT _result EQUAL 0)
    message(FATAL_ERROR "kinflow consumer check: ${what} failed (${_result})")
  endif()
  set(step_output "${_output}" PARENT_SCOPE)
endfunction()

set(_config_args "")
if(KINFLOW_CONFIG)
  set(_config_args --config "${KINFLOW_CONFIG}")
endif()

if(MODE STREQUAL "install")
  file(REMOVE_RECURSE "${PREFIX}")
  run_step("install" "${CMAKE_COMMAND}" --install "${KINFLOW_BUILD_DIR}" --prefix "${PREFIX}" ${_config_args})
  if(NOT EXISTS "${PREFIX}/include/kinflow/kinflow.hpp")
    message(FATAL_ERROR "kinflow consumer check: ${PREFIX}/include/kinflow/kinflow.hpp was not installed")
  endif()
elseif(MODE STREQUAL "consumer")
  file(REMOVE_RECURSE "${BINARY}")
  set(_configure "${CMAKE_COMMAND}" -S "${SOURCE}" -B "${BINARY}")
  if(KINFLOW_CMAKE_GENERATOR)
    list(APPEND _configure -G "${KINFLOW_CMAKE_GENERATOR}")
  endif()
  if(KINFLOW_CXX_COMPILER)
    list(APPEND _configure "-DCMAKE_CXX_COMPILER=${KINFLOW_CXX_COMPILER}")
  endif()
  if(KINFLOW_CONFIG)
    list(APPEND _configure "-DCMAKE_BUILD_TYPE=${KINFLOW_CONFIG}")
  endif()
  if(KINFLOW_EIGEN_DIR)
    list(APPEND _configure "-DEigen3_DIR=${KINFLOW_EIGEN_DIR}")
  endif()
  if(PREFIX)
    list(APPEND _configure "-DCMAKE_PREFIX_PATH=${PREFIX}")
  endif()
  if(KINFLOW_SOURCE_DIR)
    list(APPEND _configure "-DKINFLOW_SOURCE_DIR=${KINFLOW_SOURCE_DIR}")
  endif()
  if(KINFLOW_EXPECT_BLAS)
    list(APPEND _configure "-DKINFLOW_EXPECT_BLAS=${KINFLOW_EXPECT_BLAS}")
  endif()
  run_step("configure" ${_configure})
  run_step("build" "${CMAKE_COMMAND}" --build "${BINARY}" ${_config_args})

  # Single-config generators put the program in BINARY, multi-config ones in BINARY/<config>.
  set(_exe "")
  foreach(_dir IN ITEMS "${BINARY}" "${BINARY}/${KINFLOW_CONFIG}")
    foreach(_name IN ITEMS kinflow_consumer kinflow_consumer.exe)
      if(NOT _exe AND EXISTS "${_dir}/${_name}" AND NOT IS_DIRECTORY "${_dir}/${_name}")
        set(_exe "${_dir}/${_name}")
      endif()
    endforeach()
  endforeach()
  if(NOT _exe)
    message(FATAL_ERROR "kinflow consumer check: no kinflow_consumer program found under ${BINARY}")
  endif()
  run_step("run" "${_exe}")
  if(NOT step_output MATCHES "kinflow consumer: version ${EXPECT_VERSION}")
    message(FATAL_ERROR "kinflow consumer check: expected the consumer to print version ${EXPECT_VERSION}")
  endif()
else()
  message(FATAL_ERROR "run_consumer.cmake: MODE must be install or consumer, got '${MODE}'")
endif()
